/**
 * The `crypto` global (WebCrypto §10): randomness comes from the executor's CSPRNG through the random
 * host service; `crypto.subtle` is added by subtle.ts.
 */
import { callHost } from "./host-calls.ts";

const INTEGER_ARRAYS = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];

/** WebCrypto §10.1.1 getRandomValues: integer typed arrays only, at most 65536 bytes. */
export function getRandomValues<T extends ArrayBufferView>(array: T): T {
  const tag = Object.prototype.toString.call(array).slice(8, -1);
  if (!ArrayBuffer.isView(array) || !INTEGER_ARRAYS.includes(tag)) {
    throw new TypeError("The data argument must be an integer-type TypedArray");
  }
  const bytes = callHost<Uint8Array>("random", "bytes", array.byteLength);
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
  return array;
}

export function randomUUID(): string {
  return callHost<string>("random", "uuid");
}

export const crypto: Record<string, unknown> = { getRandomValues, randomUUID };

export function installCrypto(g: typeof globalThis): void {
  Object.defineProperty(g, "crypto", { value: crypto, writable: true, configurable: true });
}
