/**
 * Web IDL BufferSource handling for the whole runtime: ArrayBuffers and views read through the
 * intrinsic getters captured here, before guest code runs, so a guest that redefines `byteLength` or
 * `Function.prototype.call` cannot make the runtime misread a buffer's extent.
 */
const apply = Reflect.apply;
const isView = ArrayBuffer.isView;
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const getter = (o: object, k: PropertyKey) => Object.getOwnPropertyDescriptor(o, k)!.get!;
const arrayBufferByteLength = getter(ArrayBuffer.prototype, "byteLength");
const viewBuffer = getter(TypedArrayPrototype, "buffer");
const viewByteOffset = getter(TypedArrayPrototype, "byteOffset");
const viewByteLength = getter(TypedArrayPrototype, "byteLength");
const typedArrayTag = getter(TypedArrayPrototype, Symbol.toStringTag);
const dataViewBuffer = getter(DataView.prototype, "buffer");
const dataViewByteOffset = getter(DataView.prototype, "byteOffset");
const dataViewByteLength = getter(DataView.prototype, "byteLength");
const slice = Uint8Array.prototype.slice;

/** A real ArrayBuffer (the brand check of its byteLength getter), not a look-alike. */
export function isArrayBuffer(v: unknown): v is ArrayBuffer {
  try {
    apply(arrayBufferByteLength, v, []);
    return true;
  } catch {
    return false;
  }
}

/**
 * A BufferSource as a Uint8Array over the same memory (no copy), or undefined if `v` is not one.
 * A view on a detached buffer gives an empty array ("get a copy of the bytes" of nothing).
 */
export function viewBytes(v: unknown): Uint8Array | undefined {
  if (isView(v)) {
    // A typed array has a [Symbol.toStringTag] (from %TypedArray%.prototype); a DataView does not.
    if (apply(typedArrayTag, v, []) !== undefined) {
      const length = apply(viewByteLength, v, []) as number;
      return length === 0 ? new Uint8Array(0) : new Uint8Array(apply(viewBuffer, v, []) as ArrayBuffer, apply(viewByteOffset, v, []) as number, length);
    }
    let length: number;
    try {
      length = apply(dataViewByteLength, v, []) as number;
    } catch {
      return new Uint8Array(0); // DataView's byteLength throws once its buffer is detached
    }
    return length === 0 ? new Uint8Array(0) : new Uint8Array(apply(dataViewBuffer, v, []) as ArrayBuffer, apply(dataViewByteOffset, v, []) as number, length);
  }
  if (isArrayBuffer(v)) return apply(arrayBufferByteLength, v, []) === 0 ? new Uint8Array(0) : new Uint8Array(v);
  return undefined;
}

/** A copy of a BufferSource's bytes ("get a copy of the bytes held by the buffer source"), or undefined. */
export function copyBytes(v: unknown): Uint8Array | undefined {
  const view = viewBytes(v);
  return view && (apply(slice, view, []) as Uint8Array);
}

/** The kind of typed array `v` is ("Uint8Array", ...), read by the intrinsic getter; undefined otherwise. */
export function typedArrayName(v: unknown): string | undefined {
  return isView(v) ? (apply(typedArrayTag, v, []) as string | undefined) : undefined;
}
