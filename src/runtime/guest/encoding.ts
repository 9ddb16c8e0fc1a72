/**
 * `TextEncoder` and `TextDecoder` (WHATWG Encoding Standard §8). UTF-8, the encoding every Worker
 * needs, is decoded here by the spec's UTF-8 decoder and encoder (utf8.ts). The legacy encodings
 * (windows-1252, utf-16le, shift_jis, ...) are decoded by the executor's "encoding" host service;
 * an unknown label is a RangeError, as the constructor's step 2 says (§8.1.3).
 */
import { DECODE_ERROR, decodeUtf8Chunk, encodeInto, newDecoderState, utf8Encode, type Utf8DecoderState } from "./utf8.ts";
import { requireArgs, toDictionary } from "./events.ts";
import { typedArrayName, viewBytes } from "./buffer-source.ts";
import { callHost } from "./host-calls.ts";

/** Names the host-side state of a legacy decoder in streaming mode. */
let nextLegacyId = 1;

/** Encoding §4.2 "get an encoding": the labels of UTF-8 (the "Encodings" table). */
const UTF8_LABELS = new Set(["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"]);

/** Web IDL AllowSharedBufferSource (an ArrayBuffer or any ArrayBufferView) as a Uint8Array over the same bytes. */
function bufferSourceBytes(input: unknown, what: string): Uint8Array {
  const bytes = viewBytes(input);
  if (bytes) return bytes;
  if (typeof SharedArrayBuffer === "function" && input instanceof SharedArrayBuffer) return new Uint8Array(input);
  throw new TypeError(`${what}: The provided value is not of type '(ArrayBuffer or ArrayBufferView)'.`);
}

// ---------------------------------------------------------------------------------------------------
// TextDecoder (§8.1)

export class TextDecoder {
  #fatal: boolean;
  #ignoreBOM: boolean;
  #state: Utf8DecoderState = newDecoderState();
  /** §8.1 "BOM seen" and "do not flush". */
  #bomSeen = false;
  #doNotFlush = false;
  /** A legacy encoding's name (decoded by the host), or undefined for UTF-8. */
  #legacy: string | undefined;
  #legacyId = 0;

  /** §8.1.3 constructor steps. */
  constructor(label: string = "utf-8", options?: { fatal?: boolean; ignoreBOM?: boolean }) {
    const l = `${label as unknown as string}`;
    // Step 1: "get an encoding" from label: strip leading and trailing ASCII whitespace, ASCII lowercase, match.
    const key = l.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "").replace(/[A-Z]+/g, (m) => m.toLowerCase());
    // Step 2: failure or replacement throws a RangeError (the host's resolver says which, for non-UTF-8).
    if (!UTF8_LABELS.has(key)) {
      try {
        this.#legacy = callHost<string>("encoding", "resolve", key);
      } catch {
        throw new RangeError(`The "${l}" encoding is not supported`);
      }
      this.#legacyId = nextLegacyId++;
    }
    const o = toDictionary(options, "Failed to construct 'TextDecoder': The provided value");
    // Steps 3-5: encoding, then fatal ("error mode" fatal) and ignore BOM.
    this.#fatal = !!o.fatal;
    this.#ignoreBOM = !!o.ignoreBOM;
  }

  get encoding(): string {
    return this.#legacy ?? "utf-8";
  }

  get fatal(): boolean {
    return this.#fatal;
  }

  get ignoreBOM(): boolean {
    return this.#ignoreBOM;
  }

  /** §8.1.3 decode(input, options). */
  decode(input?: ArrayBuffer | ArrayBufferView, options?: { stream?: boolean }): string {
    const bytes = input === undefined ? new Uint8Array(0) : bufferSourceBytes(input, "Failed to execute 'decode' on 'TextDecoder'");
    const stream = !!toDictionary(options, "Failed to execute 'decode' on 'TextDecoder': The provided value").stream;
    if (this.#legacy !== undefined) {
      // The copy crosses to the host (a view into guest memory cannot); BOM and state handled there.
      return callHost<string>("encoding", "decode", this.#legacyId, this.#legacy, this.#fatal, this.#ignoreBOM, bytes.slice(), stream);
    }
    // Step 1: if not in the middle of a stream, start with a new decoder and BOM seen false.
    if (!this.#doNotFlush) {
      this.#state = newDecoderState();
      this.#bomSeen = false;
    }
    // Step 2: set do not flush to options["stream"].
    this.#doNotFlush = stream;
    // Steps 3-5: process the input's bytes; at the end, unless streaming, process end-of-queue.
    let text: string;
    try {
      text = decodeUtf8Chunk(this.#state, bytes, !stream, this.#fatal);
    } catch (e) {
      if (e !== DECODE_ERROR) throw e;
      // Step 5.4 "error": throw a TypeError. The next call starts afresh.
      this.#state = newDecoderState();
      this.#doNotFlush = false;
      throw new TypeError("Failed to execute 'decode' on 'TextDecoder': The encoded data was not valid utf-8.");
    }
    // "Serialize I/O queue" (§8.1.1): unless ignoring it, drop a leading U+FEFF once per stream.
    if (!this.#bomSeen && text.length > 0) {
      this.#bomSeen = true;
      if (!this.#ignoreBOM && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}

// ---------------------------------------------------------------------------------------------------
// TextEncoder (§8.2)

export class TextEncoder {
  constructor() {}

  get encoding(): string {
    return "utf-8";
  }

  /** §8.2.3 encode(input = ""): the UTF-8 bytes of input as a USVString. */
  encode(input: string = ""): Uint8Array {
    return utf8Encode(`${input as unknown as string}`);
  }

  /** §8.2.3 encodeInto(source, destination): whole code points while they fit; `read` counts code units. */
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number } {
    requireArgs(arguments.length, 2, "'encodeInto' on 'TextEncoder'");
    const s = `${source as unknown as string}`;
    if (typedArrayName(destination) !== "Uint8Array") {
      throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
    }
    // A view of our own over the destination's bytes: its length is the real one, whatever the guest defined.
    return encodeInto(s, viewBytes(destination)!, 0);
  }
}

Object.defineProperty(TextDecoder.prototype, Symbol.toStringTag, { value: "TextDecoder", configurable: true });
Object.defineProperty(TextEncoder.prototype, Symbol.toStringTag, { value: "TextEncoder", configurable: true });
