/**
 * `DOMException`, per Web IDL §3.14 ("DOMException custom bindings") and the DOMException interface
 * (§4.3): `new DOMException(message = "", name = "Error")`, with `name`, `message` and `code` as
 * prototype getters, the legacy code table (§4.3, "error names"), the legacy `*_ERR` constants on the
 * constructor and the prototype, and `DOMException.prototype` inheriting from `Error.prototype`.
 *
 * It extends Error so instances are genuine V8 error objects: `instanceof Error`, `Error.isError`, and
 * a `stack` captured where the exception was constructed, whose first line reads "AbortError: message".
 */

/** Web IDL §4.3, "error names table": the names that have a legacy code, and that code. */
const LEGACY_CODES: Readonly<Record<string, number>> = {
  __proto__: null,
  IndexSizeError: 1,
  HierarchyRequestError: 3,
  WrongDocumentError: 4,
  InvalidCharacterError: 5,
  NoModificationAllowedError: 7,
  NotFoundError: 8,
  NotSupportedError: 9,
  InUseAttributeError: 10,
  InvalidStateError: 11,
  SyntaxError: 12,
  InvalidModificationError: 13,
  NamespaceError: 14,
  InvalidAccessError: 15,
  TypeMismatchError: 17,
  SecurityError: 18,
  NetworkError: 19,
  AbortError: 20,
  URLMismatchError: 21,
  QuotaExceededError: 22,
  TimeoutError: 23,
  InvalidNodeTypeError: 24,
  DataCloneError: 25,
} as unknown as Record<string, number>;

/** The interface's constants (including codes 2, 6 and 16, which no current name uses). */
const CONSTANTS: ReadonlyArray<readonly [string, number]> = [
  ["INDEX_SIZE_ERR", 1], ["DOMSTRING_SIZE_ERR", 2], ["HIERARCHY_REQUEST_ERR", 3], ["WRONG_DOCUMENT_ERR", 4],
  ["INVALID_CHARACTER_ERR", 5], ["NO_DATA_ALLOWED_ERR", 6], ["NO_MODIFICATION_ALLOWED_ERR", 7], ["NOT_FOUND_ERR", 8],
  ["NOT_SUPPORTED_ERR", 9], ["INUSE_ATTRIBUTE_ERR", 10], ["INVALID_STATE_ERR", 11], ["SYNTAX_ERR", 12],
  ["INVALID_MODIFICATION_ERR", 13], ["NAMESPACE_ERR", 14], ["INVALID_ACCESS_ERR", 15], ["VALIDATION_ERR", 16],
  ["TYPE_MISMATCH_ERR", 17], ["SECURITY_ERR", 18], ["NETWORK_ERR", 19], ["ABORT_ERR", 20], ["URL_MISMATCH_ERR", 21],
  ["QUOTA_EXCEEDED_ERR", 22], ["TIMEOUT_ERR", 23], ["INVALID_NODE_TYPE_ERR", 24], ["DATA_CLONE_ERR", 25],
];

export class DOMException extends Error {
  #name: string;
  #message: string;

  // §4.3 constructor steps: set this's name to `name` and this's message to `message`
  // (both DOMString: converted with ToString, which throws on a Symbol).
  constructor(message: unknown = "", name: unknown = "Error") {
    const m = `${message as string}`;
    const n = `${name as string}`;
    // The message goes to Error as well: V8 (as embedded by isolated-vm) writes the stack's first line
    // from the message given to the constructor. The own `message` property that leaves is removed, so
    // the prototype getter below is the only one, as for any Web IDL attribute.
    super(m);
    delete (this as { message?: string }).message;
    this.#message = m;
    this.#name = n;
  }

  override get name(): string {
    return this.#name;
  }

  override get message(): string {
    return this.#message;
  }

  /** §4.3: the legacy code of this's name in the error names table, or 0. */
  get code(): number {
    return LEGACY_CODES[this.#name] ?? 0;
  }
}

// The legacy constants, on the interface object and its prototype; the attributes enumerable (Web IDL §3.7).
for (const [key, value] of CONSTANTS) {
  const desc = { value, writable: false, enumerable: true, configurable: false };
  Object.defineProperty(DOMException, key, desc);
  Object.defineProperty(DOMException.prototype, key, desc);
}
for (const key of ["name", "message", "code"]) {
  Object.defineProperty(DOMException.prototype, key, { ...Object.getOwnPropertyDescriptor(DOMException.prototype, key), enumerable: true });
}
Object.defineProperty(DOMException.prototype, Symbol.toStringTag, { value: "DOMException", configurable: true });
