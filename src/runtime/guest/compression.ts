/**
 * Compression Streams (WICG Compression Streams Standard §5, §6): `CompressionStream` and
 * `DecompressionStream` for "gzip" (RFC 1952), "deflate" (zlib, RFC 1950) and "deflate-raw" (RFC 1951),
 * on `fflate`'s streaming DEFLATE, loaded on first use.
 *
 * Compression is fflate's Gzip/Zlib/Deflate as they are. Decompression runs fflate's raw Inflate and
 * does the framing here (header, then the trailer's CRC-32 or Adler-32 and length), so that corrupt,
 * truncated or trailing input errors the stream with a TypeError, as §6 requires: fflate's own Gunzip
 * and Unzlib check neither trailer.
 */
import type * as Codecs from "./fflate.ts";
import { defineGlobals } from "./install.ts";
import { newTransform, viewBytes } from "./streams.ts";

import { loadModule } from "./lazy-modules.ts";

let codecs: typeof Codecs | undefined;

/** fflate's codecs, loaded on first use (a lazy module, see lazy-modules.ts). */
function fflate(): typeof Codecs {
  return (codecs ??= loadModule<typeof Codecs>("fflate"));
}

type Format = "gzip" | "deflate" | "deflate-raw";

/** Web IDL enum CompressionFormat: anything else is a TypeError. */
function toFormat(args: number, v: unknown, what: string): Format {
  if (args < 1) throw new TypeError(`Failed to construct '${what}': 1 argument required, but only 0 present.`);
  const s = `${v as string}`;
  if (s === "gzip" || s === "deflate" || s === "deflate-raw") return s;
  throw new TypeError(`Failed to construct '${what}': Unsupported compression format: '${s}'.`);
}

function chunkBytes(chunk: unknown): Uint8Array {
  const bytes = viewBytes(chunk);
  if (!bytes) throw new TypeError("The chunk is not an ArrayBuffer or ArrayBufferView.");
  return bytes;
}

/** §5: compresses a stream of BufferSource chunks into Uint8Array chunks. */
export class CompressionStream {
  #transform: TransformStream;

  constructor(format: "gzip" | "deflate" | "deflate-raw") {
    const f = toFormat(arguments.length, format, "CompressionStream");
    const { Deflate, Gzip, Zlib } = fflate();
    let controller!: TransformStreamDefaultController<Uint8Array>;
    const ondata = (data: Uint8Array) => {
      if (data.length > 0) controller.enqueue(data);
    };
    // mtime 0: no timestamp in the gzip header (as browsers write it), so output is deterministic.
    const codec = f === "gzip" ? new Gzip({ mtime: 0 }, ondata) : f === "deflate" ? new Zlib({}, ondata) : new Deflate({}, ondata);
    this.#transform = newTransform({
      start(c) {
        controller = c as TransformStreamDefaultController<Uint8Array>;
      },
      // §5 "compress and enqueue a chunk" (fflate copies the input into its own window).
      transform(chunk) {
        codec.push(chunkBytes(chunk), false);
      },
      // §5 "compress flush and enqueue".
      flush() {
        codec.push(new Uint8Array(0), true);
      },
    });
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}

/** §6: decompresses a stream of BufferSource chunks; malformed, truncated or trailing input is a TypeError. */
export class DecompressionStream {
  #transform: TransformStream;

  constructor(format: "gzip" | "deflate" | "deflate-raw") {
    const f = toFormat(arguments.length, format, "DecompressionStream");
    let controller!: TransformStreamDefaultController<Uint8Array>;
    const inflater = new Inflater(f, (data) => controller.enqueue(data));
    this.#transform = newTransform({
      start(c) {
        controller = c as TransformStreamDefaultController<Uint8Array>;
      },
      // §6 "decompress and enqueue a chunk". The bytes are copied: fflate keeps unconsumed input.
      transform(chunk) {
        asTypeError(() => inflater.push(chunkBytes(chunk).slice()));
      },
      // §6 "decompress flush and enqueue": the end of input must be the end of the compressed data.
      flush() {
        asTypeError(() => inflater.finish());
      },
    });
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#transform.readable;
  }

  get writable(): WritableStream<BufferSource> {
    return this.#transform.writable;
  }
}

for (const [cls, tag] of [[CompressionStream, "CompressionStream"], [DecompressionStream, "DecompressionStream"]] as const) {
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

export function installCompression(g: typeof globalThis): void {
  defineGlobals(g, { CompressionStream, DecompressionStream });
}

function asTypeError(run: () => void): void {
  try {
    run();
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw new TypeError(`Decompression failed: ${(e as Error)?.message ?? String(e)}`);
  }
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** fflate's Inflate state, read to find where the DEFLATE data ends (as fflate's own Gunzip does). */
interface InflateInternals {
  /** Unconsumed input, starting at the byte that holds bit `s.p`. */
  p: Uint8Array;
  /** `f`: the final block has begun; `l`: a block is in progress; `p`: bit position within `p`. */
  s: { f?: number; l?: unknown; p?: number };
}

/** One decompression: header, raw DEFLATE through fflate, trailer (checked once complete). */
class Inflater {
  #format: Format;
  #inflate: Codecs.Inflate;
  /** Input held while the header is incomplete; null once it has been parsed. */
  #head: Uint8Array | null;
  #ended = false;
  /** The bytes after the DEFLATE data: the trailer, and anything after it. */
  #tail: Uint8Array = EMPTY;
  #check: number;
  #size = 0;

  constructor(format: Format, emit: (data: Uint8Array) => void) {
    this.#format = format;
    this.#head = format === "deflate-raw" ? null : EMPTY;
    this.#check = format === "deflate" ? 1 : 0;
    this.#inflate = new (fflate().Inflate)((data: Uint8Array) => {
      if (data.length === 0) return;
      if (format === "gzip") this.#check = crc32(this.#check, data);
      else if (format === "deflate") this.#check = adler32(this.#check, data);
      this.#size = (this.#size + data.length) >>> 0;
      emit(data);
    });
  }

  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.#head !== null) {
      data = concat(this.#head, data);
      const n = this.#format === "gzip" ? gzipHeaderLength(data) : zlibHeaderLength(data);
      if (n < 0) {
        this.#head = data;
        return;
      }
      this.#head = null;
      data = data.subarray(n);
    }
    if (this.#ended) {
      this.#tail = concat(this.#tail, data);
      this.#checkTail(false);
      return;
    }
    this.#inflate.push(data, false);
    const { p, s } = this.#inflate as unknown as InflateInternals;
    if (s.f && !s.l) {
      this.#ended = true;
      this.#tail = p.subarray(((s.p ?? 0) + 7) >> 3);
      this.#checkTail(false);
    }
  }

  finish(): void {
    if (this.#head !== null || !this.#ended) throw new TypeError("Decompression failed: unexpected end of compressed data.");
    this.#checkTail(true);
  }

  #checkTail(final: boolean): void {
    const t = this.#tail;
    const need = this.#format === "gzip" ? 8 : this.#format === "deflate" ? 4 : 0;
    if (t.length > need) throw new TypeError("Decompression failed: junk found after the end of the compressed data.");
    if (t.length < need) {
      if (final) throw new TypeError("Decompression failed: unexpected end of compressed data.");
      return;
    }
    if (this.#format === "gzip") {
      const crc = (t[0]! | (t[1]! << 8) | (t[2]! << 16) | (t[3]! << 24)) >>> 0;
      const size = (t[4]! | (t[5]! << 8) | (t[6]! << 16) | (t[7]! << 24)) >>> 0;
      if (crc !== this.#check) throw new TypeError("Decompression failed: incorrect data check (CRC-32).");
      if (size !== this.#size) throw new TypeError("Decompression failed: incorrect length check.");
    } else if (this.#format === "deflate") {
      const adler = ((t[0]! << 24) | (t[1]! << 16) | (t[2]! << 8) | t[3]!) >>> 0;
      if (adler !== this.#check) throw new TypeError("Decompression failed: incorrect data check (Adler-32).");
    }
  }
}

/** RFC 1952 §2.3: the member header's length, -1 if more bytes are needed; TypeError if invalid. */
function gzipHeaderLength(d: Uint8Array): number {
  if (d.length >= 1 && d[0] !== 0x1f) throw new TypeError("Decompression failed: incorrect gzip header.");
  if (d.length >= 2 && d[1] !== 0x8b) throw new TypeError("Decompression failed: incorrect gzip header.");
  if (d.length >= 3 && d[2] !== 8) throw new TypeError("Decompression failed: unknown compression method.");
  if (d.length < 10) return -1;
  const flags = d[3]!;
  if (flags & 0xe0) throw new TypeError("Decompression failed: reserved gzip header flags are set.");
  let at = 10;
  if (flags & 4) {
    // FEXTRA: a two-byte length, then that many bytes.
    if (d.length < at + 2) return -1;
    at += 2 + (d[at]! | (d[at + 1]! << 8));
  }
  for (const bit of [8, 16]) {
    // FNAME, FCOMMENT: zero-terminated strings.
    if (!(flags & bit)) continue;
    const end = d.indexOf(0, at);
    if (end < 0) return -1;
    at = end + 1;
  }
  if (flags & 2) at += 2; // FHCRC
  return d.length < at ? -1 : at;
}

/** RFC 1950 §2.2: the two-byte zlib header; TypeError if invalid or if it asks for a preset dictionary. */
function zlibHeaderLength(d: Uint8Array): number {
  if (d.length < 2) return -1;
  const cmf = d[0]!;
  const flg = d[1]!;
  if ((cmf & 15) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) throw new TypeError("Decompression failed: incorrect zlib header.");
  if (flg & 0x20) throw new TypeError("Decompression failed: a preset dictionary is not supported.");
  return 2;
}

let crcTable: Int32Array | undefined;

function crc32(crc: number, data: Uint8Array): number {
  const table = (crcTable ??= makeCrcTable());
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 255]! ^ (c >>> 8);
  return ~c >>> 0;
}

function makeCrcTable(): Int32Array {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
}

function adler32(adler: number, data: Uint8Array): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  for (let i = 0; i < data.length; ) {
    // 5552 is the most bytes before b can overflow 2^32 (zlib's NMAX).
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
