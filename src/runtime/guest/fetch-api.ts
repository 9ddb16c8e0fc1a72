/**
 * A compact Fetch API (Headers, Request, Response) with buffered bodies: enough for handlers to read
 * requests and build responses. Streaming bodies arrive with the full Web runtime.
 */

export type HeaderList = [string, string][];
type BodyInit = string | ArrayBuffer | ArrayBufferView | null | undefined;

import { utf8Decode, utf8Encode } from "./utf8.ts";

function normalizeName(name: string): string {
  const n = String(name).toLowerCase();
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new TypeError(`Invalid header name: "${name}"`);
  return n;
}

function normalizeValue(value: string): string {
  const v = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  if (/[\0\r\n]/.test(v)) throw new TypeError(`Invalid header value: "${value}"`);
  return v;
}

export class Headers {
  #list: HeaderList = [];
  constructor(init?: Headers | HeaderList | Record<string, string>) {
    if (init instanceof Headers) this.#list = init.#list.map(([k, v]) => [k, v]);
    else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
    else if (init) for (const k of Object.keys(init)) this.append(k, init[k]!);
  }
  append(name: string, value: string): void {
    this.#list.push([normalizeName(name), normalizeValue(value)]);
  }
  set(name: string, value: string): void {
    const n = normalizeName(name);
    this.#list = this.#list.filter(([k]) => k !== n);
    this.#list.push([n, normalizeValue(value)]);
  }
  get(name: string): string | null {
    const n = normalizeName(name);
    const values = this.#list.filter(([k]) => k === n).map(([, v]) => v);
    return values.length ? values.join(", ") : null;
  }
  getSetCookie(): string[] {
    return this.#list.filter(([k]) => k === "set-cookie").map(([, v]) => v);
  }
  has(name: string): boolean {
    const n = normalizeName(name);
    return this.#list.some(([k]) => k === n);
  }
  delete(name: string): void {
    const n = normalizeName(name);
    this.#list = this.#list.filter(([k]) => k !== n);
  }
  forEach(cb: (value: string, name: string, headers: Headers) => void): void {
    for (const [k, v] of this) cb(v, k, this);
  }
  *entries(): IterableIterator<[string, string]> {
    const names = [...new Set(this.#list.map(([k]) => k))].sort();
    for (const n of names) {
      if (n === "set-cookie") for (const c of this.getSetCookie()) yield [n, c];
      else yield [n, this.get(n)!];
    }
  }
  *keys(): IterableIterator<string> { for (const [k] of this.entries()) yield k; }
  *values(): IterableIterator<string> { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator](): IterableIterator<[string, string]> { return this.entries(); }
  /** The raw list, for crossing the boundary. */
  static toList(h: Headers): HeaderList { return h.#list.map(([k, v]) => [k, v]); }
}

function toBytes(body: BodyInit): Uint8Array | null {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") return utf8Encode(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  return utf8Encode(String(body));
}

class Body {
  #bytes: Uint8Array | null;
  #used = false;
  constructor(body: BodyInit, headers: Headers) {
    this.#bytes = toBytes(body);
    if (typeof body === "string" && !headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
  }
  get bodyUsed(): boolean { return this.#used; }
  #consume(): Uint8Array {
    if (this.#used) throw new TypeError("Body has already been used. It can only be used once.");
    this.#used = true;
    return this.#bytes ?? new Uint8Array(0);
  }
  async arrayBuffer(): Promise<ArrayBuffer> { return this.#consume().slice().buffer as ArrayBuffer; }
  async bytes(): Promise<Uint8Array> { return this.#consume().slice(); }
  async text(): Promise<string> { return utf8Decode(this.#consume()); }
  async json(): Promise<unknown> { return JSON.parse(await this.text()); }
  /** The body bytes without consuming them, for crossing the boundary. */
  static peek(b: Body): Uint8Array | null { return b.#bytes; }
}

export interface RequestInit { method?: string; headers?: Headers | HeaderList | Record<string, string>; body?: BodyInit }

export class Request extends Body {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  constructor(input: string | Request, init: RequestInit = {}) {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const body = init.body ?? (input instanceof Request ? Body.peek(input) : null);
    if (body != null && (method === "GET" || method === "HEAD")) throw new TypeError("Request with a GET or HEAD method cannot have a body.");
    super(body, headers);
    this.url = input instanceof Request ? input.url : String(input);
    this.method = method;
    this.headers = headers;
  }
}

export interface ResponseInit { status?: number; statusText?: string; headers?: Headers | HeaderList | Record<string, string> }

export class Response extends Body {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  constructor(body?: BodyInit, init: ResponseInit = {}) {
    const headers = new Headers(init.headers);
    const status = init.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`Invalid status: ${status}`);
    super(body, headers);
    this.status = status;
    this.statusText = init.statusText ?? "";
    this.headers = headers;
  }
  get ok(): boolean { return this.status >= 200 && this.status < 300; }
  static json(data: unknown, init: ResponseInit = {}): Response {
    const headers = new Headers(init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new Response(JSON.stringify(data), { ...init, headers });
  }
}

export function bodyBytes(r: Request | Response): Uint8Array | null {
  return Body.peek(r);
}

export function installFetchApi(g: typeof globalThis): void {
  for (const [name, value] of Object.entries({ Headers, Request, Response })) {
    Object.defineProperty(g, name, { value, writable: true, configurable: true });
  }
}
