/**
 * The one shape every tool source produces. Guest code calls a tool as `namespace.name(input)`;
 * the host validates `input` against `inputSchema` before `invoke` runs.
 */
import { ToolSourceError } from "./errors.ts";

export type JsonSchema = Record<string, unknown>;

export interface Tool {
  /** A JavaScript identifier: the global object the tool hangs on inside the isolate. */
  namespace: string;
  /** A JavaScript identifier, unique within its namespace. */
  name: string;
  description?: string;
  /** JSON Schema of the single argument (an object), `$ref`s resolved. */
  inputSchema: JsonSchema;
  /** JSON Schema of the resolved value, where the source knows it. */
  outputSchema?: JsonSchema;
  /** Words a keyword search should also match (OpenAPI tags, method and path). */
  keywords?: string[];
  /** Validates `input` (throws ToolInputError) — a source may use its own validator (zod). */
  validate(input: unknown): unknown;
  invoke(input: unknown): Promise<unknown>;
  /**
   * A person must approve each call: durable Code Mode pauses the run at the call and resumes it on
   * `approve(runId)` or `reject(runId, reason)`. Plain execute() refuses such a call (ToolRejectedError).
   */
  requiresApproval?: boolean;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// A namespace becomes a `const` in the isolate's module: these names cannot be one.
const RESERVED = new Set(("break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
  "import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface " +
  "package private protected public await arguments eval undefined NaN Infinity globalThis WorkerEntrypoint").split(" "));

/** Tool names are properties (`ns.delete` is fine), so any identifier. */
export function isIdentifier(s: string): boolean {
  return IDENT.test(s);
}

/** Throws ToolSourceError unless `namespace` can be a global in the isolate. */
export function checkNamespace(namespace: string): void {
  if (!IDENT.test(namespace) || RESERVED.has(namespace) || namespace.startsWith("__")) {
    throw new ToolSourceError(`Namespace "${namespace}" is not a usable JavaScript identifier (letters, digits, _ and $; not a reserved word; not starting with __).`);
  }
}

/** `issues/list-for-repo` → `issuesListForRepo`: a stable identifier from any operation name. */
export function toIdentifier(raw: string): string {
  const words = raw.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const id = words.map((w, i) => (i === 0 ? w[0]!.toLowerCase() + w.slice(1) : w[0]!.toUpperCase() + w.slice(1))).join("");
  return /^[0-9]/.test(id) || id === "" ? `_${id}` : id;
}
