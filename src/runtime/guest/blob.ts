/**
 * `Blob` and `File` (W3C File API §3, §4), held in memory. A Blob's bytes never change once made, so
 * slices, bodies and clones share them; whatever is handed to guest code is a copy.
 */
import { defineGlobals } from "./install.ts";
import { bytesStream, concatBytes, viewBytes } from "./streams.ts";
import { utf8Decode, utf8Encode } from "./utf8.ts";

type BlobPart = string | ArrayBuffer | ArrayBufferView | Blob;
interface BlobPropertyBag { type?: string; endings?: "transparent" | "native" }
interface FilePropertyBag extends BlobPropertyBag { lastModified?: number }

let bytesOf: (b: Blob) => Uint8Array;
let constructing: { bytes: Uint8Array; type: string } | undefined;

/** Web IDL dictionary conversion: undefined/null is empty, anything else must be an object. */
function dictionary(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what}: The provided value is not of type 'BlobPropertyBag'.`);
  return v as Record<string, unknown>;
}

/** File API §3.1 step 3: a type with any character outside U+0020–U+007E is "", otherwise lowercased. */
export function normalizeType(type: string): string {
  return /[^\x20-\x7e]/.test(type) ? "" : type.toLowerCase();
}

/** File API §3.1.1 "process blob parts". */
function processParts(parts: unknown, endings: string, what: string): Uint8Array {
  if (parts === undefined) return new Uint8Array(0);
  if ((typeof parts !== "object" && typeof parts !== "function") || parts === null || typeof (parts as Iterable<unknown>)[Symbol.iterator] !== "function") {
    throw new TypeError(`${what}: The provided value cannot be converted to a sequence.`);
  }
  const chunks: Uint8Array[] = [];
  for (const part of parts as Iterable<unknown>) {
    if (part instanceof Blob) {
      chunks.push(bytesOf(part));
      continue;
    }
    const bytes = viewBytes(part);
    if (bytes) {
      chunks.push(bytes.slice());
      continue;
    }
    let s = `${part as string}`;
    if (endings === "native") s = s.replace(/\r\n|\r|\n/g, "\n"); // "native" line endings are LF here
    chunks.push(utf8Encode(s));
  }
  return chunks.length === 0 ? new Uint8Array(0) : concatBytes(chunks);
}

function endingsOf(options: Record<string, unknown>): string {
  const e = options.endings === undefined ? "transparent" : `${options.endings as string}`;
  if (e !== "transparent" && e !== "native") throw new TypeError(`The provided value '${e}' is not a valid enum value of type EndingType.`);
  return e;
}

/** Web IDL [Clamp] long long, as slice() takes its positions. */
function clampLongLong(v: unknown): number {
  const n = Number(v);
  if (Number.isNaN(n)) return 0;
  return Math.trunc(Math.min(Math.max(n, -Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER));
}

export class Blob {
  #bytes: Uint8Array;
  #type: string;

  static {
    bytesOf = (b) => b.#bytes;
  }

  /** File API §3.1 constructor. */
  constructor(blobParts?: Iterable<BlobPart>, options?: BlobPropertyBag) {
    const internal = constructing;
    constructing = undefined;
    if (internal) {
      this.#bytes = internal.bytes;
      this.#type = internal.type;
      return;
    }
    const o = dictionary(options, "Failed to construct 'Blob'");
    // Dictionary members are read in lexicographic order: endings, then type.
    const endings = endingsOf(o);
    const type = o.type === undefined ? "" : `${o.type as string}`;
    this.#bytes = processParts(blobParts, endings, "Failed to construct 'Blob'");
    this.#type = normalizeType(type);
  }

  get size(): number {
    return this.#bytes.byteLength;
  }

  get type(): string {
    return this.#type;
  }

  /** File API §3.3.1 slice(): negative positions count from the end; the type is normalized. */
  slice(start?: number, end?: number, contentType?: string): Blob {
    const size = this.#bytes.byteLength;
    const rel = (v: unknown, dflt: number) => {
      if (v === undefined) return dflt;
      const n = clampLongLong(v);
      return n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
    };
    const from = rel(start, 0);
    const to = rel(end, size);
    const type = contentType === undefined ? "" : normalizeType(`${contentType as string}`);
    return blobFromBytes(this.#bytes.subarray(from, Math.max(to, from)), type);
  }

  stream(): ReadableStream<Uint8Array> {
    return bytesStream(this.#bytes);
  }

  async text(): Promise<string> {
    return utf8Decode(this.#bytes);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#bytes.slice().buffer as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return this.#bytes.slice();
  }
}

/** File API §4: a Blob with a name and a last-modified time. */
export class File extends Blob {
  #name: string;
  #lastModified: number;

  constructor(fileBits: Iterable<BlobPart>, fileName: string, options?: FilePropertyBag) {
    if (arguments.length < 2 && constructing === undefined) {
      throw new TypeError(`Failed to construct 'File': 2 arguments required, but only ${arguments.length} present.`);
    }
    const o = dictionary(options, "Failed to construct 'File'");
    super(fileBits, o as BlobPropertyBag);
    this.#name = `${fileName as string}`.toWellFormed();
    this.#lastModified = o.lastModified === undefined ? Date.now() : clampLongLong(o.lastModified);
  }

  get name(): string {
    return this.#name;
  }

  get lastModified(): number {
    return this.#lastModified;
  }

  get webkitRelativePath(): string {
    return "";
  }
}

for (const [cls, tag] of [[Blob, "Blob"], [File, "File"]] as const) {
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

/** A Blob over `bytes`, which must not change afterwards (they are shared, not copied); `type` is taken as is. */
export function blobFromBytes(bytes: Uint8Array, type: string): Blob {
  constructing = { bytes, type };
  return new Blob();
}

/** A File over `bytes` (shared, as for blobFromBytes). */
export function fileFromBytes(bytes: Uint8Array, name: string, type: string, lastModified?: number): File {
  constructing = { bytes, type: normalizeType(type) };
  return new File([], name, lastModified === undefined ? undefined : { lastModified });
}

/** A Blob's bytes, shared: callers must not modify them. */
export function blobBytes(b: Blob): Uint8Array {
  return bytesOf(b);
}

export function installBlob(g: typeof globalThis): void {
  defineGlobals(g, { Blob, File });
}
