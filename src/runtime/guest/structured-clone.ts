/**
 * structuredClone (HTML §2.7.10). The value is copied to the executor and back with V8's serializer,
 * which implements the structured serialization algorithm; values it cannot serialize are refused
 * with a DataCloneError DOMException. `transfer` is accepted for compatibility and ignored (copies).
 */
import { callHost } from "./host-calls.ts";

export function structuredClone(value: unknown, _options?: { transfer?: unknown[] }): unknown {
  try {
    return callHost("structuredClone", "clone", value);
  } catch (e) {
    const DOMExceptionCtor = (globalThis as { DOMException?: new (m: string, n: string) => Error }).DOMException;
    const message = (e as Error)?.message ?? String(e);
    throw DOMExceptionCtor ? new DOMExceptionCtor(message, "DataCloneError") : e;
  }
}

export function installStructuredClone(g: typeof globalThis): void {
  Object.defineProperty(g, "structuredClone", { value: structuredClone, writable: true, configurable: true });
}
