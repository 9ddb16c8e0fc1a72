/**
 * structuredClone (HTML §2.7.10). The value is copied to the executor and back with V8's serializer,
 * which implements the structured serialization algorithm; values it cannot serialize are refused
 * with a DataCloneError DOMException. `transfer` is accepted for compatibility and ignored (copies).
 */
import { callHost } from "./host-calls.ts";
import { isCryptoKey } from "./subtle.ts";

export function structuredClone(value: unknown, _options?: { transfer?: unknown[] }): unknown {
  // A CryptoKey names a key held by the executor for this isolate only; as in workerd, it is not cloneable.
  if (isCryptoKey(value)) throw dataCloneError("CryptoKey could not be cloned.");
  try {
    return callHost("structuredClone", "clone", value);
  } catch (e) {
    throw dataCloneError((e as Error)?.message ?? String(e));
  }
}

function dataCloneError(message: string): Error {
  const DOMExceptionCtor = (globalThis as { DOMException?: new (m: string, n: string) => Error }).DOMException;
  return DOMExceptionCtor ? new DOMExceptionCtor(message, "DataCloneError") : new TypeError(message);
}

export function installStructuredClone(g: typeof globalThis): void {
  Object.defineProperty(g, "structuredClone", { value: structuredClone, writable: true, configurable: true });
}
