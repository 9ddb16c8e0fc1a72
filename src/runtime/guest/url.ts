/**
 * `URL` and `URLSearchParams` (URL Standard §6) and `URLPattern` (URL Pattern Standard).
 *
 * Parsing and the URL setters are done by the executor's `url` host service, i.e. by Node's own WHATWG
 * URL, so a worker parses exactly as Node does; a URL here keeps the copied record of its getters, and
 * each setter sends the current href and gets the new record back. URLSearchParams and the
 * application/x-www-form-urlencoded parser and serializer (§5) are plain JS. URLPattern is the
 * urlpattern-polyfill package, which works on top of this URL (it reads the global `URL` when called).
 */
import { callHost } from "./host-calls.ts";
import { loadModule } from "./lazy-modules.ts";
import { utf8Decode, utf8Encode } from "./utf8.ts";
// The record the executor's url service returns: the guest keeps it as its URL's state.
import type { UrlRecord } from "../../engine/executor/services/url.ts";


type Pair = [string, string];

/** WebIDL USVString conversion: ToString (a Symbol throws TypeError), then lone surrogates → U+FFFD. */
function usv(value: unknown): string {
  return (typeof value === "string" ? value : `${value as string}`).toWellFormed();
}

/** WebIDL: too few arguments to an operation is a TypeError. */
function need(count: number, required: number, what: string): void {
  if (count < required) {
    throw new TypeError(`Failed to execute '${what}': ${required} argument${required > 1 ? "s" : ""} required, but only ${count} present.`);
  }
}

function invalidUrl(): TypeError {
  return new TypeError("Invalid URL");
}

// ---------------------------------------------------------------------------------------------------
// application/x-www-form-urlencoded (URL Standard §5)

/** §5.1 parser, on a string (whose UTF-8 bytes are the spec's input): "+" is a space, then percent-decode. */
export function parseUrlencoded(input: string): Pair[] {
  const out: Pair[] = [];
  if (input === "") return out;
  for (const sequence of input.split("&")) {
    if (sequence === "") continue;
    const eq = sequence.indexOf("=");
    const name = eq === -1 ? sequence : sequence.slice(0, eq);
    const value = eq === -1 ? "" : sequence.slice(eq + 1);
    out.push([decodeComponent(name), decodeComponent(value)]);
  }
  return out;
}

/** Replaces "+" by space, percent-decodes (§1.3) and decodes UTF-8 without BOM (invalid bytes → U+FFFD). */
function decodeComponent(s: string): string {
  if (s.includes("+")) s = s.replaceAll("+", " ");
  if (!s.includes("%")) return s;
  try {
    // Agrees with the spec whenever it succeeds: every %XX is well-formed and the bytes are valid UTF-8.
    return decodeURIComponent(s);
  } catch {
    return utf8Decode(percentDecode(utf8Encode(s)));
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

/** URL Standard §1.3 percent-decode: "%" and two hex digits is a byte; anything else stays as it is. */
export function percentDecode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x25 && i + 2 < bytes.length) {
      const hi = hexValue(bytes[i + 1]!);
      const lo = hexValue(bytes[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

const FORM_EXTRA: Record<string, string> = { "%20": "+", "!": "%21", "'": "%27", "(": "%28", ")": "%29", "~": "%7E" };

/**
 * §5.2 serializer's percent-encoding: UTF-8, then everything but ASCII alphanumerics and *-._ is
 * percent-encoded (upper-case hex) and space becomes "+". encodeURIComponent leaves !'()~ as well,
 * so those are encoded after it. The input is a USVString, so encodeURIComponent cannot throw.
 */
function encodeComponent(s: string): string {
  return encodeURIComponent(s).replace(/%20|[!'()~]/g, (c) => FORM_EXTRA[c]!);
}

/** §5.2 application/x-www-form-urlencoded serializer. */
export function serializeUrlencoded(list: readonly Pair[]): string {
  let out = "";
  for (let i = 0; i < list.length; i++) {
    if (i > 0) out += "&";
    out += encodeComponent(list[i]![0]) + "=" + encodeComponent(list[i]![1]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// URL (§6.1)

/** Passed as the first constructor argument to build a URL from a record already parsed. Never exported. */
const FROM_RECORD: object = {};

/** Set in URLSearchParams' static block: the list, the linking to a URL, and replacing the list. */
let paramsList: (params: URLSearchParams) => Pair[];
let linkedParams: (url: URL, query: string) => URLSearchParams;
let resetParams: (params: URLSearchParams, query: string) => void;
/** Set in URL's static block: the "update steps" of a URL's query object (§6.2). */
let updateQuery: (url: URL, serialized: string) => void;

/** The query (without "?") for URLSearchParams: `search` is "" for both an empty and a null query. */
function queryOf(record: UrlRecord): string {
  return record.search === "" ? "" : record.search.slice(1);
}

export class URL {
  #record: UrlRecord;
  /** Made on the first read of `searchParams` (unobservable: it reflects the query at that time). */
  #params: URLSearchParams | null = null;

  static {
    updateQuery = (url, serialized) => {
      url.#record = set(url.#record.href, "search", serialized);
    };
  }

  constructor(url: unknown, base: unknown = undefined) {
    if (url === FROM_RECORD) {
      this.#record = base as UrlRecord;
      return;
    }
    need(arguments.length, 1, "URL");
    const record = parse(usv(url), base === undefined ? undefined : usv(base));
    if (!record) throw invalidUrl();
    this.#record = record;
  }

  /** §6.1 URL.parse: the URL, or null on failure. */
  static parse(url: unknown, base: unknown = undefined): URL | null {
    need(arguments.length, 1, "URL.parse");
    const record = parse(usv(url), base === undefined ? undefined : usv(base));
    return record ? new URL(FROM_RECORD, record) : null;
  }

  /** §6.1 URL.canParse. */
  static canParse(url: unknown, base: unknown = undefined): boolean {
    need(arguments.length, 1, "URL.canParse");
    return parse(usv(url), base === undefined ? undefined : usv(base)) !== null;
  }

  get href(): string {
    return this.#record.href;
  }

  set href(value: unknown) {
    const record = parse(usv(value), undefined);
    if (!record) throw invalidUrl();
    this.#record = record;
    if (this.#params) resetParams(this.#params, queryOf(record));
  }

  get origin(): string {
    return this.#record.origin;
  }

  get protocol(): string {
    return this.#record.protocol;
  }

  set protocol(value: unknown) {
    this.#set("protocol", value);
  }

  get username(): string {
    return this.#record.username;
  }

  set username(value: unknown) {
    this.#set("username", value);
  }

  get password(): string {
    return this.#record.password;
  }

  set password(value: unknown) {
    this.#set("password", value);
  }

  get host(): string {
    return this.#record.host;
  }

  set host(value: unknown) {
    this.#set("host", value);
  }

  get hostname(): string {
    return this.#record.hostname;
  }

  set hostname(value: unknown) {
    this.#set("hostname", value);
  }

  get port(): string {
    return this.#record.port;
  }

  set port(value: unknown) {
    this.#set("port", value);
  }

  get pathname(): string {
    return this.#record.pathname;
  }

  set pathname(value: unknown) {
    this.#set("pathname", value);
  }

  get search(): string {
    return this.#record.search;
  }

  /** §6.1 search setter: the query object's list is parsed from the given value (without its "?"). */
  set search(value: unknown) {
    const input = usv(value);
    this.#set("search", input);
    if (this.#params) resetParams(this.#params, input.startsWith("?") ? input.slice(1) : input);
  }

  get searchParams(): URLSearchParams {
    return (this.#params ??= linkedParams(this, queryOf(this.#record)));
  }

  get hash(): string {
    return this.#record.hash;
  }

  set hash(value: unknown) {
    this.#set("hash", value);
  }

  toString(): string {
    return this.#record.href;
  }

  toJSON(): string {
    return this.#record.href;
  }

  #set(property: string, value: unknown): void {
    this.#record = set(this.#record.href, property, usv(value));
  }
}

// A host call costs tens of microseconds (a thread hop while a request runs), and parsing is a pure
// function of its strings, so recent results are kept: URLPattern, for one, parses the same few URLs
// over and over. Records are never mutated, so URLs may share them. Bounded in entries and key size.
const CACHE_ENTRIES = 128;
const CACHE_KEY_CHARS = 1024;
const cache = new Map<string, UrlRecord | null>();

function cached(key: string, compute: () => UrlRecord | null): UrlRecord | null {
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key); // most recently used goes last
    cache.set(key, hit);
    return hit;
  }
  const value = compute();
  if (key.length <= CACHE_KEY_CHARS) {
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, value);
  }
  return value;
}

/** The record of the basic URL parser's result (§4.4) for input against base, or null on failure. */
function parse(input: string, base: string | undefined): UrlRecord | null {
  if (base === undefined) return cached("P" + input, () => callHost<UrlRecord | null>("url", "parse", input));
  return cached(`B${base.length}:${base}${input}`, () => callHost<UrlRecord | null>("url", "parse", input, base));
}

/** The record after one §6.1 setter on the URL `href` serializes. */
function set(href: string, property: string, value: string): UrlRecord {
  return cached(`S${property}:${href.length}:${href}${value}`, () => callHost<UrlRecord>("url", "set", href, property, value))!;
}

// ---------------------------------------------------------------------------------------------------
// URLSearchParams (§6.2)

type Init = Iterable<Iterable<unknown>> | Record<string, unknown> | string;

export class URLSearchParams {
  #list: Pair[];
  #url: URL | null = null;

  static {
    paramsList = (params) => params.#list;
    linkedParams = (url, query) => {
      const params = new URLSearchParams();
      params.#list = parseUrlencoded(query); // the query as is: a second leading "?" is data
      params.#url = url;
      return params;
    };
    resetParams = (params, query) => {
      params.#list = parseUrlencoded(query);
    };
  }

  /** §6.2 constructor: a sequence of pairs, a record, or a string (a leading "?" is dropped). */
  constructor(init: Init | undefined = undefined) {
    if (init === undefined) {
      this.#list = [];
    } else if ((typeof init === "object" && init !== null) || typeof init === "function") {
      const iteratorMethod = (init as { [Symbol.iterator]?: unknown })[Symbol.iterator];
      if (iteratorMethod !== undefined && iteratorMethod !== null) {
        if (typeof iteratorMethod !== "function") throw new TypeError("Failed to construct 'URLSearchParams': The object's @@iterator is not callable.");
        this.#list = fromSequence(init, iteratorMethod as () => Iterator<unknown>);
      } else {
        this.#list = fromRecord(init as object);
      }
    } else {
      const s = usv(init);
      this.#list = parseUrlencoded(s.startsWith("?") ? s.slice(1) : s);
    }
  }

  get size(): number {
    return this.#list.length;
  }

  append(name: unknown, value: unknown): void {
    need(arguments.length, 2, "URLSearchParams.append");
    this.#list.push([usv(name), usv(value)]);
    this.#update();
  }

  /** Removes every pair with this name (and, when given, this value). */
  delete(name: unknown, value: unknown = undefined): void {
    need(arguments.length, 1, "URLSearchParams.delete");
    const n = usv(name);
    if (value === undefined) {
      this.#list = this.#list.filter((p) => p[0] !== n);
    } else {
      const v = usv(value);
      this.#list = this.#list.filter((p) => p[0] !== n || p[1] !== v);
    }
    this.#update();
  }

  get(name: unknown): string | null {
    need(arguments.length, 1, "URLSearchParams.get");
    const n = usv(name);
    for (const p of this.#list) if (p[0] === n) return p[1];
    return null;
  }

  getAll(name: unknown): string[] {
    need(arguments.length, 1, "URLSearchParams.getAll");
    const n = usv(name);
    const out: string[] = [];
    for (const p of this.#list) if (p[0] === n) out.push(p[1]);
    return out;
  }

  has(name: unknown, value: unknown = undefined): boolean {
    need(arguments.length, 1, "URLSearchParams.has");
    const n = usv(name);
    if (value === undefined) return this.#list.some((p) => p[0] === n);
    const v = usv(value);
    return this.#list.some((p) => p[0] === n && p[1] === v);
  }

  /** Sets the first pair with this name to the value and removes the others; appends when there is none. */
  set(name: unknown, value: unknown): void {
    need(arguments.length, 2, "URLSearchParams.set");
    const n = usv(name);
    const v = usv(value);
    const index = this.#list.findIndex((p) => p[0] === n);
    if (index === -1) {
      this.#list.push([n, v]);
    } else {
      this.#list[index] = [n, v];
      this.#list = this.#list.filter((p, i) => i <= index || p[0] !== n);
    }
    this.#update();
  }

  /** Stable sort by name, comparing code units (JS string order). */
  sort(): void {
    this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#update();
  }

  forEach(callback: (value: string, key: string, parent: URLSearchParams) => void, thisArg: unknown = undefined): void {
    need(arguments.length, 1, "URLSearchParams.forEach");
    if (typeof callback !== "function") throw new TypeError("Failed to execute 'forEach' on 'URLSearchParams': The callback provided as parameter 1 is not a function.");
    // WebIDL iterable: the list is read live, so pairs added during the loop are visited.
    for (let i = 0; i < this.#list.length; i++) {
      const pair = this.#list[i]!;
      callback.call(thisArg, pair[1], pair[0], this);
    }
  }

  entries(): IterableIterator<[string, string]> {
    return new ParamsIterator(this, "entries") as unknown as IterableIterator<[string, string]>;
  }

  keys(): IterableIterator<string> {
    return new ParamsIterator(this, "keys") as unknown as IterableIterator<string>;
  }

  values(): IterableIterator<string> {
    return new ParamsIterator(this, "values") as unknown as IterableIterator<string>;
  }

  declare [Symbol.iterator]: () => IterableIterator<[string, string]>;

  toString(): string {
    return serializeUrlencoded(this.#list);
  }

  /** The "update steps": a linked URL's query becomes the serialization (null when empty). */
  #update(): void {
    if (this.#url) updateQuery(this.#url, serializeUrlencoded(this.#list));
  }
}

function fromSequence(init: object, iteratorMethod: () => Iterator<unknown>): Pair[] {
  const list: Pair[] = [];
  const pairs: string[][] = [];
  for (const inner of { [Symbol.iterator]: () => iteratorMethod.call(init) }) {
    if ((typeof inner !== "object" || inner === null) && typeof inner !== "function") {
      throw new TypeError("Failed to construct 'URLSearchParams': The provided value cannot be converted to a sequence.");
    }
    const innerMethod = (inner as { [Symbol.iterator]?: unknown })[Symbol.iterator];
    if (typeof innerMethod !== "function") {
      throw new TypeError("Failed to construct 'URLSearchParams': The provided value cannot be converted to a sequence.");
    }
    const strings: string[] = [];
    for (const item of { [Symbol.iterator]: () => (innerMethod as () => Iterator<unknown>).call(inner) }) strings.push(usv(item));
    pairs.push(strings);
  }
  for (const pair of pairs) {
    if (pair.length !== 2) throw new TypeError("Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements");
    list.push([pair[0]!, pair[1]!]);
  }
  return list;
}

/** WebIDL record<USVString, USVString>: own enumerable keys in order; a repeated converted key keeps its place. */
function fromRecord(init: object): Pair[] {
  const map = new Map<string, string>();
  for (const key of Reflect.ownKeys(init)) {
    const desc = Reflect.getOwnPropertyDescriptor(init, key);
    if (!desc || !desc.enumerable) continue;
    if (typeof key === "symbol") throw new TypeError("Failed to construct 'URLSearchParams': Cannot convert a Symbol value to a string");
    const name = usv(key);
    map.set(name, usv((init as Record<string, unknown>)[key]));
  }
  return [...map];
}

/** The "URLSearchParams Iterator" of the WebIDL pair iterator: live over the list, by index. */
class ParamsIterator {
  #params: URLSearchParams;
  #kind: "entries" | "keys" | "values";
  #index = 0;

  constructor(params: URLSearchParams, kind: "entries" | "keys" | "values") {
    this.#params = params;
    this.#kind = kind;
  }

  next(): IteratorResult<unknown> {
    const list = paramsList(this.#params);
    if (this.#index >= list.length) return { value: undefined, done: true };
    const pair = list[this.#index++]!;
    const value = this.#kind === "keys" ? pair[0] : this.#kind === "values" ? pair[1] : [pair[0], pair[1]];
    return { value, done: false };
  }
}

// ---------------------------------------------------------------------------------------------------
// WebIDL shape: attributes and operations are enumerable, each interface has its @@toStringTag.

function webIdl(ctor: { prototype: object }, tag: string): void {
  // The bundler may rename a class that shadows a global (URL → _URL); the interface keeps its name.
  Object.defineProperty(ctor, "name", { value: tag, configurable: true });
  const proto = ctor.prototype;
  for (const key of Reflect.ownKeys(proto)) {
    if (key === "constructor") continue;
    const desc = Reflect.getOwnPropertyDescriptor(proto, key)!;
    Object.defineProperty(proto, key, { ...desc, enumerable: true });
  }
  Object.defineProperty(proto, Symbol.toStringTag, { value: tag, configurable: true });
}

webIdl(URL, "URL");
for (const key of ["parse", "canParse"]) {
  Object.defineProperty(URL, key, { enumerable: true });
}
webIdl(URLSearchParams, "URLSearchParams");
// WebIDL iterable<USVString, USVString>: @@iterator is entries, and not enumerable.
Object.defineProperty(URLSearchParams.prototype, Symbol.iterator, {
  value: URLSearchParams.prototype.entries,
  writable: true,
  configurable: true,
});
// The iterator's prototype inherits %IteratorPrototype% (so it is iterable itself) and has no constructor.
Object.setPrototypeOf(ParamsIterator.prototype, Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())));
delete (ParamsIterator.prototype as { constructor?: unknown }).constructor;
Object.defineProperty(ParamsIterator.prototype, "next", { enumerable: true });
Object.defineProperty(ParamsIterator.prototype, Symbol.toStringTag, { value: "URLSearchParams Iterator", configurable: true });

/**
 * Loads urlpattern-polyfill (~27 kB of source) as a lazy module (see lazy-modules.ts): its code only
 * exists, and runs, in isolates that use URLPattern.
 */
function loadURLPattern(): unknown {
  return loadModule<{ URLPattern: unknown }>("urlpattern").URLPattern;
}

/**
 * Installs URL, URLSearchParams and URLPattern as globals (writable, configurable, not enumerable).
 * URLPattern starts as an accessor that, on first use, loads the class and becomes a data property
 * (an assignment first also just makes it a data property with the assigned value).
 */
export function installUrl(g: typeof globalThis): void {
  const define = (name: string, value: unknown) => Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
  Object.defineProperty(g, "URLPattern", {
    get() {
      const value = loadURLPattern();
      define("URLPattern", value);
      return value;
    },
    set(value: unknown) {
      define("URLPattern", value);
    },
    enumerable: false,
    configurable: true,
  });
}
