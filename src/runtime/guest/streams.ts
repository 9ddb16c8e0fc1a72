/**
 * The WHATWG Streams Standard classes (ReadableStream with default and byte controllers, BYOB readers,
 * WritableStream, TransformStream, the queuing strategies), from the `web-streams-polyfill` ponyfill,
 * plus the Encoding Standard's TextEncoderStream and TextDecoderStream (§8.3, §8.4).
 *
 * The polyfill is most of the runtime's code, so it is loaded lazily: the bundler wraps a `require()`d
 * module (web-streams.ts) in a function that runs on first call, and nothing calls it until guest code touches a stream
 * class (through the global, or indirectly, e.g. `new Response("x").body`). The globals are accessors
 * until then, each replacing itself (and its siblings) by a plain data property on first access.
 */
import type * as Ponyfill from "./web-streams.ts";
import { DOMException } from "./dom-exception.ts";
import { defineGlobals } from "./install.ts";
import { utf8Encode } from "./utf8.ts";

import { loadModule } from "./lazy-modules.ts";

export interface StreamClasses {
  ReadableStream: typeof globalThis.ReadableStream;
  ReadableStreamDefaultReader: typeof globalThis.ReadableStreamDefaultReader;
  ReadableStreamBYOBReader: typeof globalThis.ReadableStreamBYOBReader;
  ReadableStreamBYOBRequest: typeof globalThis.ReadableStreamBYOBRequest;
  ReadableByteStreamController: typeof globalThis.ReadableByteStreamController;
  ReadableStreamDefaultController: typeof globalThis.ReadableStreamDefaultController;
  WritableStream: typeof globalThis.WritableStream;
  WritableStreamDefaultWriter: typeof globalThis.WritableStreamDefaultWriter;
  WritableStreamDefaultController: typeof globalThis.WritableStreamDefaultController;
  TransformStream: typeof globalThis.TransformStream;
  TransformStreamDefaultController: typeof globalThis.TransformStreamDefaultController;
  ByteLengthQueuingStrategy: typeof globalThis.ByteLengthQueuingStrategy;
  CountQueuingStrategy: typeof globalThis.CountQueuingStrategy;
}

const STREAM_GLOBALS: ReadonlyArray<keyof StreamClasses> = [
  "ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamBYOBReader", "ReadableStreamBYOBRequest",
  "ReadableByteStreamController", "ReadableStreamDefaultController", "WritableStream", "WritableStreamDefaultWriter",
  "WritableStreamDefaultController", "TransformStream", "TransformStreamDefaultController",
  "ByteLengthQueuingStrategy", "CountQueuingStrategy",
];

let classes: StreamClasses | undefined;

/** The stream classes, loading the polyfill on first call. Runtime code uses this, never the globals. */
export function streams(): StreamClasses {
  return (classes ??= loadPolyfill());
}

/** Whether the polyfill has been loaded (if not, no ReadableStream can exist yet). */
export function streamsLoaded(): boolean {
  return classes !== undefined;
}

function loadPolyfill(): StreamClasses {
  // The polyfill reads globalThis.DOMException once, when it loads (for pipeTo's AbortError). By then
  // guest code may have replaced the global, so ours is put in place for the duration of the load.
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = Object.getOwnPropertyDescriptor(g, "DOMException");
  const swap = saved?.value !== DOMException;
  if (swap) Reflect.defineProperty(g, "DOMException", { value: DOMException, writable: true, configurable: true });
  try {
    const mod = loadModule<typeof Ponyfill>("web-streams");
    const out = {} as Record<string, unknown>;
    for (const name of STREAM_GLOBALS) out[name] = (mod as unknown as Record<string, unknown>)[name];
    return out as unknown as StreamClasses;
  } finally {
    if (swap) {
      if (saved) Reflect.defineProperty(g, "DOMException", saved);
      else Reflect.deleteProperty(g, "DOMException");
    }
  }
}

/** The stream globals, as accessors that load the polyfill when first read (see the top of this file). */
export function installStreams(g: typeof globalThis): void {
  const getters = new Set<unknown>();
  const materialize = () => {
    const c = streams();
    for (const name of STREAM_GLOBALS) {
      const d = Object.getOwnPropertyDescriptor(g, name);
      if (d && getters.has(d.get)) defineGlobals(g, { [name]: c[name] });
    }
    return c;
  };
  for (const name of STREAM_GLOBALS) {
    const get = () => materialize()[name];
    getters.add(get);
    Object.defineProperty(g, name, {
      get,
      // An assignment before first use behaves as on a writable data property.
      set(value: unknown) {
        Object.defineProperty(g, name, { value, writable: true, enumerable: false, configurable: true });
      },
      enumerable: false,
      configurable: true,
    });
  }
  defineGlobals(g, { TextEncoderStream, TextDecoderStream, IdentityTransformStream, FixedLengthStream });
}

// ---------------------------------------------------------------------------------------------------
// Helpers for bodies

/** Whether `v` is one of our ReadableStreams (none can exist before the polyfill is loaded). */
export function isReadableStream(v: unknown): v is ReadableStream<Uint8Array> {
  return classes !== undefined && v instanceof classes.ReadableStream;
}

/** Streams §4.2 "IsReadableStreamDisturbed" (the polyfill keeps the spec's [[disturbed]] slot as `_disturbed`). */
export function isDisturbed(stream: ReadableStream): boolean {
  return (stream as unknown as { _disturbed?: boolean })._disturbed === true;
}

/** A readable byte stream (so BYOB readers work) holding a copy of `bytes`, already closed. */
export function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const { ReadableStream: RS } = streams();
  return new RS({
    type: "bytes",
    start(controller: ReadableByteStreamController) {
      // A byte stream transfers what it is given: hand it a copy, never a shared buffer.
      if (bytes.byteLength > 0) controller.enqueue(bytes.slice());
      controller.close();
    },
  }) as ReadableStream<Uint8Array>;
}

import { copyBytes, viewBytes } from "./buffer-source.ts";

export { copyBytes, viewBytes };

/** Joins chunks into one Uint8Array (the chunk itself when there is just one). */
export function concatBytes(chunks: Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let size = total ?? 0;
  if (total === undefined) for (const c of chunks) size += c.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Fetch "fully read" a body's stream: every chunk must be bytes (Workers also take any BufferSource).
 * Locks the stream; the result is a fresh Uint8Array the caller owns.
 */
export async function readAllBytes(stream: ReadableStream): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const bytes = copyBytes(value);
    if (!bytes) {
      const error = new TypeError("This ReadableStream did not return bytes.");
      reader.cancel(error).catch(() => {});
      throw error;
    }
    if (bytes.byteLength === 0) continue;
    chunks.push(bytes);
    total += bytes.byteLength;
  }
  return chunks.length === 0 ? new Uint8Array(0) : concatBytes(chunks, total);
}

/** A TransformStream with the given transformer, behind a class's own readable/writable getters. */
export function newTransform(transformer: Transformer<unknown, unknown>): TransformStream {
  const { TransformStream: TS } = streams();
  return new TS(transformer);
}

// ---------------------------------------------------------------------------------------------------
// Encoding §8.3 TextDecoderStream and §8.4 TextEncoderStream

type DecoderLike = { decode(input?: Uint8Array, options?: { stream?: boolean }): string; encoding: string; fatal: boolean; ignoreBOM: boolean };

/** Encoding §8.4: UTF-8 encodes a stream of strings; a surrogate pair split across chunks stays one code point. */
export class TextEncoderStream {
  #transform: TransformStream;

  constructor() {
    // The global TextEncoder (if any) at construction time; the runtime's own encoder otherwise.
    const TE = (globalThis as { TextEncoder?: new () => { encode(s: string): Uint8Array } }).TextEncoder;
    const encoder = typeof TE === "function" ? new TE() : { encode: utf8Encode };
    let pendingHigh: string | null = null;
    this.#transform = newTransform({
      // §8.4.2 "encode and enqueue a chunk".
      transform(chunk, controller) {
        let s = `${chunk as string}`;
        if (pendingHigh !== null) {
          s = pendingHigh + s;
          pendingHigh = null;
        }
        const last = s.charCodeAt(s.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) {
          pendingHigh = s.slice(-1);
          s = s.slice(0, -1);
        }
        if (s.length > 0) controller.enqueue(encoder.encode(s));
      },
      // §8.4.2 "encode and flush": a lone high surrogate at the end becomes U+FFFD.
      flush(controller) {
        if (pendingHigh !== null) controller.enqueue(new Uint8Array([0xef, 0xbf, 0xbd]));
      },
    });
  }

  get encoding(): string {
    return "utf-8";
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<string> {
    return this.#transform.writable;
  }
}

/** Encoding §8.3: decodes a stream of BufferSource chunks, with a TextDecoder in streaming mode. */
export class TextDecoderStream {
  #transform: TransformStream;
  #decoder: DecoderLike;

  constructor(label: string = "utf-8", options?: { fatal?: boolean; ignoreBOM?: boolean }) {
    const TD = (globalThis as { TextDecoder?: new (label?: string, options?: object) => DecoderLike }).TextDecoder;
    if (typeof TD !== "function") throw new TypeError("TextDecoderStream needs TextDecoder, which is not available.");
    const decoder = new TD(label, options);
    this.#decoder = decoder;
    this.#transform = newTransform({
      // §8.3.2 "decode and enqueue a chunk".
      transform(chunk, controller) {
        const bytes = viewBytes(chunk);
        if (!bytes) throw new TypeError("TextDecoderStream: the chunk is not an ArrayBuffer or ArrayBufferView.");
        const text = decoder.decode(bytes, { stream: true });
        if (text.length > 0) controller.enqueue(text);
      },
      // §8.3.2 "flush and enqueue".
      flush(controller) {
        const text = decoder.decode();
        if (text.length > 0) controller.enqueue(text);
      },
    });
  }

  get encoding(): string {
    return this.#decoder.encoding;
  }

  get fatal(): boolean {
    return this.#decoder.fatal;
  }

  get ignoreBOM(): boolean {
    return this.#decoder.ignoreBOM;
  }

  get readable(): ReadableStream<string> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}

for (const [cls, tag] of [[TextEncoderStream, "TextEncoderStream"], [TextDecoderStream, "TextDecoderStream"]] as const) {
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

// ---------------------------------------------------------------------------------------------------
// Cloudflare Workers' byte transforms: IdentityTransformStream and FixedLengthStream

/** Chunks written must be bytes; each is passed on as a Uint8Array over the same memory. */
function byteChunk(chunk: unknown, who: string): Uint8Array {
  const bytes = viewBytes(chunk);
  if (!bytes) throw new TypeError(`${who}: the chunk must be an ArrayBuffer or ArrayBufferView.`);
  return bytes;
}

/** Workers' IdentityTransformStream: bytes written to `writable` come out of `readable` unchanged. */
export class IdentityTransformStream {
  #transform: TransformStream;

  constructor() {
    this.#transform = newTransform({
      transform(chunk, controller) {
        controller.enqueue(byteChunk(chunk, "IdentityTransformStream"));
      },
    });
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<ArrayBufferView | ArrayBuffer> {
    return this.#transform.writable;
  }
}

/**
 * Workers' FixedLengthStream: an identity transform that insists on exactly `expectedLength` bytes
 * (what R2 and fetch() need to know a streamed body's length up front on Cloudflare).
 */
export class FixedLengthStream {
  #transform: TransformStream;

  constructor(expectedLength: number | bigint) {
    const expected = Number(expectedLength);
    if (!Number.isSafeInteger(expected) || expected < 0) throw new TypeError("FixedLengthStream requires a non-negative integer length.");
    let seen = 0;
    this.#transform = newTransform({
      transform(chunk, controller) {
        const bytes = byteChunk(chunk, "FixedLengthStream");
        seen += bytes.byteLength;
        if (seen > expected) throw new TypeError(`FixedLengthStream: more than the expected ${expected} bytes were written.`);
        controller.enqueue(bytes);
      },
      flush() {
        if (seen < expected) throw new TypeError(`FixedLengthStream did not see all expected bytes before close() (${seen} of ${expected}).`);
      },
    });
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<ArrayBufferView | ArrayBuffer> {
    return this.#transform.writable;
  }
}
