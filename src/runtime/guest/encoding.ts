/**
 * `TextEncoder` and `TextDecoder` (WHATWG Encoding Standard §8), for UTF-8 only: the encoding every
 * Worker needs. Other labels are refused with a RangeError, as the constructor does for any label it
 * does not know (§8.1.3 step 2). The byte-level work is the spec's UTF-8 decoder and encoder, in utf8.ts.
 */
import { DECODE_ERROR, decodeUtf8Chunk, encodeInto, newDecoderState, utf8Encode, type Utf8DecoderState } from "./utf8.ts";
import { requireArgs, toDictionary } from "./events.ts";
import { typedArrayName, viewBytes } from "./buffer-source.ts";

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

  /** §8.1.3 constructor steps. */
  constructor(label: string = "utf-8", options?: { fatal?: boolean; ignoreBOM?: boolean }) {
    const l = `${label as unknown as string}`;
    // Step 1: "get an encoding" from label: strip leading and trailing ASCII whitespace, ASCII lowercase, match.
    const key = l.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "").replace(/[A-Z]+/g, (m) => m.toLowerCase());
    // Step 2: failure or replacement throws a RangeError. (Only UTF-8 is supported here.)
    if (!UTF8_LABELS.has(key)) throw new RangeError(`The "${l}" encoding is not supported`);
    const o = toDictionary(options, "Failed to construct 'TextDecoder': The provided value");
    // Steps 3-5: encoding, then fatal ("error mode" fatal) and ignore BOM.
    this.#fatal = !!o.fatal;
    this.#ignoreBOM = !!o.ignoreBOM;
  }

  get encoding(): string {
    return "utf-8";
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
