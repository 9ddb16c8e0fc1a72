/**
 * The Fetch Standard's `Headers` (§5.1), bodies (§5.2 BodyInit, §5.3 Body mixin), `Request` (§5.4) and `Response` (§5.5),
 * as on Cloudflare Workers. A body is held as bytes until something asks for its stream (`.body`, a
 * clone of a streamed body), so the common request path never loads the streams polyfill; a body
 * given as a ReadableStream stays one. Bytes held here never change once set: they are shared by
 * clones and Blobs, and copied whenever guest code gets them.
 *
 * `installFetchApi()` also installs the globals of the modules Fetch builds on: Blob and File,
 * FormData, the Streams classes (lazily) and the compression streams.
 */
import { AbortController, AbortSignal } from "./abort.ts";
import { Blob, blobBytes, blobFromBytes, installBlob } from "./blob.ts";
import { installCompression } from "./compression.ts";
import { defineGlobals } from "./install.ts";
import { FormData, formDataOf, installFormData, parseMimeType, parseMultipart, parseUrlencoded, serializeFormData, serializeMimeType } from "./form-data.ts";
import { bytesStream, copyBytes, installStreams, isDisturbed, isReadableStream, readAllBytes, streams } from "./streams.ts";
import { utf8Decode, utf8Encode } from "./utf8.ts";

export type HeaderList = [string, string][];
type HeadersInit = Headers | Iterable<Iterable<string>> | Record<string, string>;
type BodyInit = string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | ReadableStream | null;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const EMPTY = new Uint8Array(0);
const USED = "Body has already been used. It can only be used once. Use tee() first if you need to read it twice.";

/** Web IDL dictionary conversion: undefined/null is empty, anything else must be an object. */
function dictionary(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what}: The provided value is not an object.`);
  return v as Record<string, unknown>;
}

function requireArgs(given: number, needed: number, what: string): void {
  if (given < needed) throw new TypeError(`Failed to execute ${what}: ${needed} argument${needed === 1 ? "" : "s"} required, but only ${given} present.`);
}

// ---------------------------------------------------------------------------------------------------
// Headers (§5.1)

/** A header name: a token, lowercased (Fetch keeps names byte-case-insensitive). */
function normalizeName(name: unknown): string {
  const n = `${name as string}`;
  if (!TOKEN.test(n)) throw new TypeError(`Invalid header name: "${n}"`);
  return n.toLowerCase();
}

/** A header value (a ByteString): leading and trailing HTTP whitespace removed; no NUL, CR or LF. */
function normalizeValue(value: unknown): string {
  const v = `${value as string}`.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (/[\0\r\n\u0100-\uffff]/.test(v)) throw new TypeError(`Invalid header value: "${v}"`);
  return v;
}

type Guard = "none" | "immutable";

let headerListOf: (h: Headers) => HeaderList;
let guardOf: (h: Headers) => Guard;
let setGuard: (h: Headers, guard: Guard) => void;

export class Headers {
  #list: HeaderList = [];
  #guard: Guard = "none";
  /** The "sort and combine" result, until the list changes. */
  #sorted: HeaderList | null = null;

  static {
    headerListOf = (h) => h.#list;
    guardOf = (h) => h.#guard;
    setGuard = (h, guard) => {
      h.#guard = guard;
    };
  }

  /** §5.1 constructor: "fill" from a sequence of pairs or a record. */
  constructor(init?: HeadersInit) {
    if (init === undefined || init === null) return;
    if (typeof init !== "object" && typeof init !== "function") {
      throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
    }
    if (#list in init) {
      this.#list = init.#list.map(([k, v]) => [k, v]);
      return;
    }
    const iterator = (init as Iterable<unknown>)[Symbol.iterator];
    if (iterator !== undefined && iterator !== null) {
      if (typeof iterator !== "function") throw new TypeError("Failed to construct 'Headers': The object must have a callable @@iterator property.");
      for (const pair of init as Iterable<unknown>) {
        if ((typeof pair !== "object" && typeof pair !== "function") || pair === null || typeof (pair as Iterable<unknown>)[Symbol.iterator] !== "function") {
          throw new TypeError("Failed to construct 'Headers': The provided value cannot be converted to a sequence.");
        }
        const items = [...(pair as Iterable<unknown>)];
        if (items.length !== 2) throw new TypeError("Failed to construct 'Headers': Invalid value: each header must be a [name, value] pair.");
        this.#list.push([normalizeName(items[0]), normalizeValue(items[1])]);
      }
      return;
    }
    for (const key of Reflect.ownKeys(init)) {
      const desc = Reflect.getOwnPropertyDescriptor(init, key);
      if (!desc?.enumerable) continue;
      if (typeof key === "symbol") throw new TypeError("Failed to construct 'Headers': Cannot convert a Symbol to a ByteString.");
      this.#list.push([normalizeName(key), normalizeValue((init as Record<string, unknown>)[key])]);
    }
  }

  #mutable(): void {
    if (this.#guard === "immutable") throw new TypeError("Can't modify immutable headers.");
    this.#sorted = null;
  }

  append(name: string, value: string): void {
    requireArgs(arguments.length, 2, "'append' on 'Headers'");
    const entry: [string, string] = [normalizeName(name), normalizeValue(value)];
    this.#mutable();
    this.#list.push(entry);
  }

  delete(name: string): void {
    requireArgs(arguments.length, 1, "'delete' on 'Headers'");
    const n = normalizeName(name);
    this.#mutable();
    this.#list = this.#list.filter(([k]) => k !== n);
  }

  /** The values of `name` combined with ", " (set-cookie too: getSetCookie() keeps them apart). */
  get(name: string): string | null {
    requireArgs(arguments.length, 1, "'get' on 'Headers'");
    return this.#get(normalizeName(name));
  }

  #get(n: string): string | null {
    let out: string | null = null;
    for (const [k, v] of this.#list) if (k === n) out = out === null ? v : `${out}, ${v}`;
    return out;
  }

  getSetCookie(): string[] {
    return this.#list.filter(([k]) => k === "set-cookie").map(([, v]) => v);
  }

  has(name: string): boolean {
    requireArgs(arguments.length, 1, "'has' on 'Headers'");
    const n = normalizeName(name);
    return this.#list.some(([k]) => k === n);
  }

  /** Replaces the first `name` header's value and removes the rest, or appends. */
  set(name: string, value: string): void {
    requireArgs(arguments.length, 2, "'set' on 'Headers'");
    const n = normalizeName(name);
    const v = normalizeValue(value);
    this.#mutable();
    const i = this.#list.findIndex(([k]) => k === n);
    if (i < 0) this.#list.push([n, v]);
    else this.#list = this.#list.filter(([k], j) => k !== n || j === i).map((e, j) => (j === i ? [n, v] : e));
  }

  /** §5.1 / §2.2.2 "sort and combine": names in byte order, values combined, each set-cookie value on its own. */
  #pairs(): HeaderList {
    if (this.#sorted) return this.#sorted;
    const names = [...new Set(this.#list.map(([k]) => k))].sort();
    const out: HeaderList = [];
    for (const n of names) {
      if (n === "set-cookie") for (const [k, v] of this.#list) if (k === n) out.push([n, v]);
      if (n !== "set-cookie") out.push([n, this.#get(n)!]);
    }
    return (this.#sorted = out);
  }

  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    if (typeof callback !== "function") throw new TypeError("Failed to execute 'forEach' on 'Headers': parameter 1 is not of type 'Function'.");
    for (let i = 0; ; i++) {
      const pairs = this.#pairs();
      if (i >= pairs.length) return;
      callback.call(thisArg, pairs[i]![1], pairs[i]![0], this);
    }
  }

  /** Web IDL pair iterator over "sort and combine", taken afresh at each step. */
  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; ; i++) {
      const pairs = this.#pairs();
      if (i >= pairs.length) return;
      yield [pairs[i]![0], pairs[i]![1]];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

Object.defineProperty(Headers.prototype, Symbol.iterator, { value: Headers.prototype.entries, writable: true, configurable: true });

/** The header list as it crosses the boundary (a copy). */
export function headerList(h: Headers): HeaderList {
  return headerListOf(h).map(([k, v]) => [k, v]);
}

// ---------------------------------------------------------------------------------------------------
// Bodies (§5.2 BodyInit unions, §5.3 Body mixin)

/** An extracted body: bytes, or a stream; and the Content-Type it implies, if any. */
interface Extracted {
  bytes: Uint8Array | null;
  stream: ReadableStream<Uint8Array> | null;
  type: string | null;
}

function streamUnusable(s: ReadableStream): boolean {
  return s.locked || isDisturbed(s);
}

/** §5.2 "extract a body" (keepalive aside). The bytes are the body's own (copied from the init). */
function extractBody(init: unknown): Extracted {
  if (typeof init === "string") return { bytes: utf8Encode(init), stream: null, type: "text/plain;charset=UTF-8" };
  if (init instanceof Blob) return { bytes: blobBytes(init), stream: null, type: init.type || null };
  const bytes = copyBytes(init);
  if (bytes) return { bytes, stream: null, type: null };
  if (init instanceof FormData) {
    const form = serializeFormData(init);
    return { bytes: form.bytes, stream: null, type: form.type };
  }
  const USP = (globalThis as { URLSearchParams?: new () => object }).URLSearchParams;
  if (typeof USP === "function" && init instanceof USP) {
    return { bytes: utf8Encode(`${init as unknown as string}`), stream: null, type: "application/x-www-form-urlencoded;charset=UTF-8" };
  }
  if (isReadableStream(init)) {
    if (streamUnusable(init)) throw new TypeError("This ReadableStream is disturbed or locked to a reader, so it cannot be used as a body.");
    return { bytes: null, stream: init, type: null };
  }
  return { bytes: utf8Encode(`${init as string}`), stream: null, type: "text/plain;charset=UTF-8" };
}

/** Strips a leading byte order mark, as "UTF-8 decode" does. */
function decodeText(bytes: Uint8Array): string {
  const s = utf8Decode(bytes);
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

let cloneBody: (b: Body) => Extracted | null;
let takeBody: (b: Body) => Extracted;
let readBody: (b: Body) => Promise<Uint8Array> | Uint8Array | null;
let hasBody: (b: Body) => boolean;
let bodySource: (b: Body) => Uint8Array | ReadableStream<Uint8Array> | null;

/** The body mixin (§5.3), shared by Request and Response (as Workers do, through a `Body` base class). */
class Body {
  /** Buffered bytes, until a stream is asked for (null with no stream: a null body). */
  #bytes: Uint8Array | null;
  #stream: ReadableStream<Uint8Array> | null;
  /** A buffered body has been read (or handed on); its stream, if asked for, is then disturbed. */
  #used = false;
  #headers: Headers;

  static {
    cloneBody = (b) => {
      if (b.#unusable()) throw new TypeError(USED);
      if (b.#stream === null) return b.#bytes === null ? null : { bytes: b.#bytes, stream: null, type: null };
      const [mine, theirs] = b.#stream.tee();
      b.#stream = mine;
      return { bytes: null, stream: theirs, type: null };
    };
    takeBody = (b) => {
      if (b.#unusable()) throw new TypeError(USED);
      b.#used = true;
      if (b.#stream === null) {
        const bytes = b.#bytes;
        b.#bytes = EMPTY;
        return { bytes, stream: null, type: null };
      }
      // §5.4 step 41: the new body is a proxy for the old, which the pipe locks and disturbs.
      const { readable, writable } = new (streams().TransformStream)();
      b.#stream.pipeTo(writable).catch(() => {});
      return { bytes: null, stream: readable as ReadableStream<Uint8Array>, type: null };
    };
    hasBody = (b) => b.#bytes !== null || b.#stream !== null;
    bodySource = (b) => {
      if (!hasBody(b)) return null;
      if (b.#unusable()) throw new TypeError(USED);
      if (b.#stream !== null) return b.#stream;
      const bytes = b.#bytes!;
      b.#used = true;
      b.#bytes = EMPTY;
      return bytes;
    };
    readBody = (b) => (hasBody(b) ? b.#consume() : null);
  }

  constructor(headers: Headers, body: Extracted | null) {
    this.#headers = headers;
    this.#bytes = body?.bytes ?? null;
    this.#stream = body?.stream ?? null;
  }

  #unusable(): boolean {
    return this.#used || (this.#stream !== null && streamUnusable(this.#stream));
  }

  /** The body's stream (null for a null body); a buffered body becomes a byte stream now. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream !== null) return this.#stream;
    if (this.#bytes === null) return null;
    const stream = bytesStream(this.#bytes);
    if (this.#used) {
      // Read already: the stream is as reading it whole would have left it, disturbed and locked.
      stream.getReader().read().catch(() => {});
    }
    this.#stream = stream;
    this.#bytes = null;
    return stream;
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#stream !== null && isDisturbed(this.#stream));
  }

  /** §5.3 "consume body": the bytes, shared (buffered) or fresh (read from the stream). */
  #consume(): Promise<Uint8Array> | Uint8Array {
    if (this.#unusable()) throw new TypeError(USED);
    if (this.#stream !== null) return readAllBytes(this.#stream);
    const bytes = this.#bytes;
    if (bytes === null) return EMPTY;
    this.#used = true;
    this.#bytes = EMPTY;
    return bytes;
  }

  /** A copy the caller owns. */
  async #owned(): Promise<Uint8Array> {
    const r = this.#consume();
    return r instanceof Uint8Array ? r.slice() : await r;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.#owned();
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
  }

  async bytes(): Promise<Uint8Array> {
    return this.#owned();
  }

  async text(): Promise<string> {
    return decodeText(await this.#consume());
  }

  async json(): Promise<unknown> {
    return JSON.parse(decodeText(await this.#consume()));
  }

  async blob(): Promise<Blob> {
    const bytes = await this.#consume();
    const type = this.#headers.get("content-type");
    const mime = type === null ? null : parseMimeType(type);
    return blobFromBytes(bytes, mime ? serializeMimeType(mime) : "");
  }

  /** multipart/form-data or application/x-www-form-urlencoded, by the body's Content-Type. */
  async formData(): Promise<FormData> {
    const bytes = await this.#consume();
    const type = this.#headers.get("content-type");
    const mime = type === null ? null : parseMimeType(type);
    if (mime?.essence === "multipart/form-data") {
      const boundary = mime.params.get("boundary");
      if (boundary === undefined) throw new TypeError("The multipart/form-data Content-Type has no boundary.");
      return formDataOf(parseMultipart(bytes, boundary));
    }
    if (mime?.essence === "application/x-www-form-urlencoded") return formDataOf(parseUrlencoded(bytes));
    throw new TypeError("Unrecognized Content-Type header value. FormData can only parse the following MIME types: multipart/form-data, application/x-www-form-urlencoded");
  }
}

/** Sets the extracted body's Content-Type unless the headers have one (§5.4 step 37, §5.5 "initialize a response"). */
function defaultContentType(headers: Headers, body: Extracted | null): void {
  if (body?.type && !headerListOf(headers).some(([k]) => k === "content-type")) headerListOf(headers).push(["content-type", body.type]);
}

// ---------------------------------------------------------------------------------------------------
// Request (§5.4)

export interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit;
  redirect?: string;
  signal?: AbortSignal | null;
  cf?: unknown;
  duplex?: string;
}

const REDIRECTS = new Set(["follow", "error", "manual"]);

/** §2.2.1 methods: a token; CONNECT, TRACE and TRACK are forbidden; uppercased (as Workers do for every method). */
function normalizeMethod(m: unknown): string {
  const s = `${m as string}`;
  if (!TOKEN.test(s)) throw new TypeError(`Invalid HTTP method string: ${s}`);
  const upper = s.toUpperCase();
  if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") throw new TypeError(`'${s}' HTTP method is unsupported.`);
  return upper;
}

/** An absolute URL, parsed and serialized by the global URL when there is one (no base: relative is an error). */
function parseUrl(input: unknown): string {
  const s = `${input as string}`;
  const URLClass = (globalThis as { URL?: new (url: string) => { href: string } }).URL;
  if (typeof URLClass !== "function") return s;
  try {
    return new URLClass(s).href;
  } catch {
    throw new TypeError(`Invalid URL: ${s}`);
  }
}

/** A request's state, given to the constructor directly by incomingRequest() and clone(). */
interface RequestState {
  url: string;
  method: string;
  headers: Headers;
  body: Extracted | null;
  redirect: string;
  source: AbortSignal | null;
  cf: unknown;
}

let pendingRequest: RequestState | undefined;
let requestState: (args: number, input: unknown, init: unknown) => RequestState;

export class Request extends Body {
  #url: string;
  #method: string;
  #headers: Headers;
  #redirect: string;
  /** The signal this request's signal follows (§5.4 step 30), if any; its own is made on first read. */
  #source: AbortSignal | null;
  #signal: AbortSignal | undefined;
  #cf: unknown;

  constructor(input: Request | string | { href: string }, init?: RequestInit) {
    const state = pendingRequest ?? requestState(arguments.length, input, init);
    pendingRequest = undefined;
    super(state.headers, state.body);
    this.#url = state.url;
    this.#method = state.method;
    this.#headers = state.headers;
    this.#redirect = state.redirect;
    this.#source = state.source;
    this.#cf = state.cf;
  }

  static {
    requestState = (args, input, init) => {
      pendingRequest = undefined;
      requireArgs(args, 1, "'Request' constructor");
      const from = typeof input === "object" && input !== null && #url in input ? input : null;
      const url = from ? from.#url : parseUrl(input);
      const o = dictionary(init, "Failed to construct 'Request'");
      // Members in Web IDL's (lexicographic) order.
      const initBody = o.body;
      const cf = "cf" in o ? o.cf : from ? from.#cf : undefined;
      if (o.duplex !== undefined && `${o.duplex as string}` !== "half") throw new TypeError(`Failed to construct 'Request': '${o.duplex as string}' is not a valid duplex value.`);
      const headersInit = o.headers;
      const method = o.method !== undefined ? normalizeMethod(o.method) : (from ? from.#method : "GET");
      let redirect = from ? from.#redirect : "follow";
      if (o.redirect !== undefined) {
        redirect = `${o.redirect as string}`;
        if (!REDIRECTS.has(redirect)) throw new TypeError(`Failed to construct 'Request': '${redirect}' is not a valid redirect mode.`);
      }
      let source: AbortSignal | null = from ? from.signal : null;
      if (o.signal !== undefined) {
        if (o.signal !== null && !(o.signal instanceof AbortSignal)) throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
        source = o.signal;
      }
      const headers = new Headers(headersInit !== undefined ? (headersInit as HeadersInit) : from ? from.#headers : undefined);
      // Step 34: a GET or HEAD request has no body, given or inherited.
      const inputHasBody = from !== null && hasBody(from);
      if (((initBody !== undefined && initBody !== null) || inputHasBody) && (method === "GET" || method === "HEAD")) {
        throw new TypeError("Request with a GET or HEAD method cannot have a body.");
      }
      let body: Extracted | null = null;
      if (initBody !== undefined && initBody !== null) {
        body = extractBody(initBody);
        defaultContentType(headers, body);
      } else if (from !== null && inputHasBody) {
        // Steps 40-41: the input's body moves to the new request; the input is then used.
        body = takeBody(from);
      }
      return { url, method, headers, body, redirect, source, cf };
    };
  }

  get url(): string {
    return this.#url;
  }

  get method(): string {
    return this.#method;
  }

  get headers(): Headers {
    return this.#headers;
  }

  get redirect(): string {
    return this.#redirect;
  }

  get signal(): AbortSignal {
    return (this.#signal ??= this.#source ? AbortSignal.any([this.#source]) : new AbortController().signal);
  }

  get cf(): unknown {
    return this.#cf;
  }

  get duplex(): string {
    return "half";
  }

  get integrity(): string {
    return "";
  }

  get keepalive(): boolean {
    return false;
  }

  /** §5.4 clone(): the same request with a tee of its body; the clone's signal follows this one's. */
  clone(): Request {
    const headers = new Headers(this.#headers);
    setGuard(headers, guardOf(this.#headers));
    const body = cloneBody(this);
    pendingRequest = { url: this.#url, method: this.#method, headers, body, redirect: this.#redirect, source: this.signal, cf: this.#cf };
    return new Request(this.#url);
  }
}

/**
 * The Request handed to a fetch handler: its URL already serialized by the host, its headers
 * immutable (as on Workers). The body is adopted as is (bytes nothing else holds, or a stream).
 */
export function incomingRequest(url: string, method: string, headers: HeaderList, body: Uint8Array | ReadableStream<Uint8Array> | null): Request {
  const h = new Headers(headers);
  setGuard(h, "immutable");
  const extracted = body === null ? null : body instanceof Uint8Array ? { bytes: body, stream: null, type: null } : { bytes: null, stream: body, type: null };
  pendingRequest = { url, method, headers: h, body: extracted, redirect: "follow", source: null, cf: undefined };
  return new Request(url);
}

// ---------------------------------------------------------------------------------------------------
// Response (§5.5)

export interface ResponseInit {
  status?: number;
  statusText?: string;
  headers?: HeadersInit;
}

/** §2.2.3: a null body status admits no body. */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/** A response's state beyond what the constructor takes, for the static factories and clone(). */
interface InternalResponse {
  body: Extracted | null;
  type: "default" | "error";
  immutable: boolean;
  /** Set: taken as is (0 for an error, a redirect status), bypassing the 200–599 check. */
  status?: number;
}

let internal: InternalResponse | undefined;
let responseHeadOf: (r: Response) => { status: number; statusText: string; headers: HeaderList; isError: boolean };

export class Response extends Body {
  #status: number;
  #statusText: string;
  #headers: Headers;
  #type: "default" | "error";

  static {
    responseHeadOf = (r) => ({ status: r.#status, statusText: r.#statusText, headers: headerList(r.#headers), isError: r.#type === "error" });
  }

  constructor(body?: BodyInit, init?: ResponseInit) {
    const own = internal;
    internal = undefined;
    const o = dictionary(init, "Failed to construct 'Response'");
    const headersInit = o.headers;
    const status = own?.status ?? (o.status === undefined ? 200 : Math.trunc(Number(o.status)));
    const statusText = o.statusText === undefined ? "" : `${o.statusText as string}`;
    // §5.5 "initialize a response".
    if (own?.status === undefined && !(status >= 200 && status <= 599)) {
      throw new RangeError("Responses may only be constructed with status codes in the range 200 to 599, inclusive.");
    }
    if (/[^\t\x20-\x7e\x80-\xff]/.test(statusText)) throw new TypeError("Invalid statusText");
    const headers = new Headers(headersInit as HeadersInit | undefined);
    const extracted = own ? own.body : body === undefined || body === null ? null : extractBody(body);
    if (extracted && NULL_BODY_STATUS.has(status)) throw new TypeError("Response with null body status (101, 204, 205, or 304) cannot have a body.");
    defaultContentType(headers, extracted);
    if (own?.immutable) setGuard(headers, "immutable");
    super(headers, extracted);
    this.#status = status;
    this.#statusText = statusText;
    this.#headers = headers;
    this.#type = own?.type ?? "default";
  }

  /** §5.5 error(): a network error, with immutable headers; not a valid reply from a handler. */
  static error(): Response {
    internal = { body: null, type: "error", immutable: true, status: 0 };
    return new Response();
  }

  /** §5.5 redirect(url, status = 302): a Location header (immutable), no body. */
  static redirect(url: string | { href: string }, status: number = 302): Response {
    requireArgs(arguments.length, 1, "'redirect' on 'Response'");
    let location: string;
    try {
      location = parseUrl(url);
    } catch {
      throw new TypeError(`Unable to parse URL: ${url as string}`);
    }
    const s = Math.trunc(Number(status));
    if (!REDIRECT_STATUS.has(s)) throw new RangeError(`${s} is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308.`);
    internal = { body: null, type: "default", immutable: true, status: s };
    return new Response(null, { headers: [["location", location]] });
  }

  /** §5.5 json(data, init): data's JSON serialization, typed application/json unless init's headers say otherwise. */
  static json(data: unknown, init?: ResponseInit): Response {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Value is not JSON serializable.");
    internal = { body: { bytes: utf8Encode(text), stream: null, type: "application/json" }, type: "default", immutable: false };
    return new Response(null, init);
  }

  get type(): string {
    return this.#type;
  }

  get url(): string {
    return "";
  }

  get redirected(): boolean {
    return false;
  }

  get status(): number {
    return this.#status;
  }

  get ok(): boolean {
    return this.#status >= 200 && this.#status <= 299;
  }

  get statusText(): string {
    return this.#statusText;
  }

  get headers(): Headers {
    return this.#headers;
  }

  /** Workers' WebSocket member: always null here. */
  get webSocket(): null {
    return null;
  }

  get cf(): undefined {
    return undefined;
  }

  /** §5.5 clone(): the same response with a tee of its body (TypeError once the body is used). */
  clone(): Response {
    const headers = new Headers(this.#headers);
    const body = cloneBody(this);
    internal = { body, type: this.#type, immutable: guardOf(this.#headers) === "immutable", status: this.#status };
    return new Response(null, { statusText: this.#statusText, headers });
  }
}

/** What the boundary needs of a handler's Response, read from its internal state (never through getters guest code can replace). */
export function responseHead(r: Response): { status: number; statusText: string; headers: HeaderList; isError: boolean } {
  return responseHeadOf(r);
}

/** The whole body of a Request or Response as one Uint8Array (null for a null body); reads a stream to its end. */
export async function bodyBytes(r: Request | Response): Promise<Uint8Array | null> {
  const bytes = await readBody(r);
  if (bytes === null) return null;
  // A whole-buffer view crosses the boundary as exactly these bytes.
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * The body as it is held, for a boundary that streams: buffered bytes (shared: do not modify; the
 * body is then used), or the stream itself (for the caller to read), or null for a null body.
 */
export function takeBodySource(r: Request | Response): Uint8Array | ReadableStream<Uint8Array> | null {
  return bodySource(r);
}

for (const [cls, tag] of [[Headers, "Headers"], [Request, "Request"], [Response, "Response"]] as const) {
  Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: tag, configurable: true });
}

export function installFetchApi(g: typeof globalThis): void {
  defineGlobals(g, { Headers, Request, Response });
  installBlob(g);
  installFormData(g);
  installStreams(g);
  installCompression(g);
}
