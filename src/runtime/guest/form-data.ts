/**
 * `FormData` (XHR Standard §4), its multipart/form-data serialization (HTML §4.10.21.8, RFC 7578)
 * for request and response bodies, and the parsers `formData()` uses: multipart/form-data (RFC 7578,
 * RFC 2046 §5.1.1; implemented here on buffered bytes, as no small maintained parser works without
 * Node built-ins or streaming machinery) and application/x-www-form-urlencoded (URL Standard §5.1).
 * Also the MIME type parser (MIME Sniffing §4.4) those need.
 */
import { Blob, File, blobBytes, fileFromBytes } from "./blob.ts";
import { getRandomValues } from "./crypto.ts";
import { defineGlobals } from "./install.ts";
import { concatBytes } from "./streams.ts";
import { percentDecode, parseUrlencoded as parseUrlencodedString } from "./url.ts";
import { utf8Decode, utf8Encode } from "./utf8.ts";

export type FormDataEntryValue = string | File;
type Entry = [string, FormDataEntryValue];

let entriesOf: (f: FormData) => Entry[];

function usv(v: unknown): string {
  return `${v as string}`.toWellFormed();
}

function requireArgs(given: number, needed: number, what: string): void {
  if (given < needed) throw new TypeError(`Failed to execute '${what}' on 'FormData': ${needed} arguments required, but only ${given} present.`);
}

/** XHR §4 "create an entry". */
function createEntry(name: unknown, value: unknown, filename: unknown, args: number, what: string): Entry {
  const n = usv(name);
  if (value instanceof Blob) {
    const type = value.type;
    const file = value instanceof File ? value : undefined;
    if (file && args < 3) return [n, file];
    const fname = args >= 3 ? usv(filename) : "blob";
    return [n, fileFromBytes(blobBytes(value), fname, type, file?.lastModified)];
  }
  if (args >= 3) throw new TypeError(`Failed to execute '${what}' on 'FormData': parameter 2 is not of type 'Blob'.`);
  return [n, usv(value)];
}

export class FormData {
  #entries: Entry[] = [];

  static {
    entriesOf = (f) => f.#entries;
  }

  constructor(form?: unknown) {
    // There are no form elements here: the only valid call has no argument.
    if (form !== undefined) throw new TypeError("Failed to construct 'FormData': parameter 1 is not of type 'HTMLFormElement'.");
  }

  append(name: string, value: string | Blob, filename?: string): void {
    requireArgs(arguments.length, 2, "append");
    this.#entries.push(createEntry(name, value, filename, arguments.length, "append"));
  }

  delete(name: string): void {
    requireArgs(arguments.length, 1, "delete");
    const n = usv(name);
    this.#entries = this.#entries.filter(([k]) => k !== n);
  }

  get(name: string): FormDataEntryValue | null {
    requireArgs(arguments.length, 1, "get");
    const n = usv(name);
    const e = this.#entries.find(([k]) => k === n);
    return e ? e[1] : null;
  }

  getAll(name: string): FormDataEntryValue[] {
    requireArgs(arguments.length, 1, "getAll");
    const n = usv(name);
    return this.#entries.filter(([k]) => k === n).map(([, v]) => v);
  }

  has(name: string): boolean {
    requireArgs(arguments.length, 1, "has");
    const n = usv(name);
    return this.#entries.some(([k]) => k === n);
  }

  /** Replaces the first entry named `name` and removes the others, or appends. */
  set(name: string, value: string | Blob, filename?: string): void {
    requireArgs(arguments.length, 2, "set");
    const entry = createEntry(name, value, filename, arguments.length, "set");
    const i = this.#entries.findIndex(([k]) => k === entry[0]);
    if (i < 0) {
      this.#entries.push(entry);
      return;
    }
    this.#entries[i] = entry;
    this.#entries = this.#entries.filter(([k], j) => j <= i || k !== entry[0]);
  }

  /** Web IDL pair iterator: live over the entry list, as it is when each step is taken. */
  *entries(): IterableIterator<[string, FormDataEntryValue]> {
    for (let i = 0; i < this.#entries.length; i++) {
      const [k, v] = this.#entries[i]!;
      yield [k, v];
    }
  }

  *keys(): IterableIterator<string> {
    for (let i = 0; i < this.#entries.length; i++) yield this.#entries[i]![0];
  }

  *values(): IterableIterator<FormDataEntryValue> {
    for (let i = 0; i < this.#entries.length; i++) yield this.#entries[i]![1];
  }

  forEach(callback: (value: FormDataEntryValue, key: string, parent: FormData) => void, thisArg?: unknown): void {
    if (typeof callback !== "function") throw new TypeError("Failed to execute 'forEach' on 'FormData': parameter 1 is not of type 'Function'.");
    for (let i = 0; i < this.#entries.length; i++) {
      const [k, v] = this.#entries[i]!;
      callback.call(thisArg, v, k, this);
    }
  }

  [Symbol.iterator](): IterableIterator<[string, FormDataEntryValue]> {
    return this.entries();
  }
}

Object.defineProperty(FormData.prototype, Symbol.iterator, { value: FormData.prototype.entries, writable: true, configurable: true });
Object.defineProperty(FormData.prototype, Symbol.toStringTag, { value: "FormData", configurable: true });

export function installFormData(g: typeof globalThis): void {
  defineGlobals(g, { FormData });
}

/** A FormData holding `entries` (names and values already converted). */
export function formDataOf(entries: Entry[]): FormData {
  const fd = new FormData();
  entriesOf(fd).push(...entries);
  return fd;
}

// ---------------------------------------------------------------------------------------------------
// multipart/form-data serialization (HTML §4.10.21.8 "multipart/form-data encoding algorithm")

const BOUNDARY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A boundary that content cannot anticipate: 22 random characters (the executor's CSPRNG when reachable). */
function newBoundary(): string {
  const r = new Uint8Array(22);
  try {
    getRandomValues(r);
  } catch {
    for (let i = 0; i < r.length; i++) r[i] = Math.floor(Math.random() * 256);
  }
  let s = "----MayflyFormBoundary";
  for (const b of r) s += BOUNDARY_CHARS[b % BOUNDARY_CHARS.length];
  return s;
}

/** CR not followed by LF, and LF not preceded by CR, become CRLF. */
function toCRLF(s: string): string {
  return s.replace(/\r\n|\r|\n/g, "\r\n");
}

/** Names and filenames in the Content-Disposition header: LF, CR and '"' are percent-encoded. */
function escapeName(s: string): string {
  return s.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
}

/** The multipart/form-data body of a FormData and its Content-Type. */
export function serializeFormData(fd: FormData): { bytes: Uint8Array; type: string } {
  const boundary = newBoundary();
  const chunks: Uint8Array[] = [];
  for (const [name, value] of entriesOf(fd)) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(toCRLF(name))}"`;
    if (typeof value === "string") {
      chunks.push(utf8Encode(`${head}\r\n\r\n${toCRLF(value)}\r\n`));
      continue;
    }
    head += `; filename="${escapeName(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
    chunks.push(utf8Encode(head), blobBytes(value), CRLF);
  }
  chunks.push(utf8Encode(`--${boundary}--\r\n`));
  return { bytes: concatBytes(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

const CRLF = new Uint8Array([13, 10]);

// ---------------------------------------------------------------------------------------------------
// MIME types (MIME Sniffing §4.4 "parse a MIME type")

export interface MimeType {
  /** "type/subtype", lowercased. */
  essence: string;
  /** Parameter names lowercased; the first of each name wins. */
  params: Map<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HTTP_WS = /^[\t\n\r ]+|[\t\n\r ]+$/g;

export function parseMimeType(input: string): MimeType | null {
  const s = input.replace(HTTP_WS, "");
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const type = s.slice(0, slash);
  let semi = s.indexOf(";", slash);
  if (semi < 0) semi = s.length;
  const subtype = s.slice(slash + 1, semi).replace(HTTP_WS, "");
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return null;
  const params = new Map<string, string>();
  let i = semi;
  while (i < s.length) {
    i++; // past ";"
    while (i < s.length && /[\t\n\r ]/.test(s[i]!)) i++;
    let end = i;
    while (end < s.length && s[end] !== ";" && s[end] !== "=") end++;
    const name = s.slice(i, end).toLowerCase();
    i = end;
    if (i >= s.length) break;
    if (s[i] === ";") continue;
    i++; // past "="
    let value: string;
    if (s[i] === '"') {
      // A quoted string: backslash escapes the next character; what follows up to ";" is ignored.
      value = "";
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === "\\" && i + 1 < s.length) i++;
        value += s[i];
        i++;
      }
      while (i < s.length && s[i] !== ";") i++;
    } else {
      end = s.indexOf(";", i);
      if (end < 0) end = s.length;
      value = s.slice(i, end).replace(HTTP_WS, "");
      i = end;
      if (value === "") continue;
    }
    if (name && TOKEN.test(name) && !/[^\t\x20-\x7e\x80-\xff]/.test(value) && !params.has(name)) params.set(name, value);
  }
  return { essence: `${type}/${subtype}`.toLowerCase(), params };
}

// ---------------------------------------------------------------------------------------------------
// Parsing bodies for formData()

/**
 * application/x-www-form-urlencoded parsing (URL Standard §5.1), by url.ts's parser (never the global
 * URLSearchParams, which guest code may replace). Decoding the bytes first is equivalent: invalid
 * UTF-8 becomes U+FFFD either way.
 */
export function parseUrlencoded(bytes: Uint8Array): Entry[] {
  return parseUrlencodedString(utf8Decode(bytes));
}

/** The first index of `pattern` in `bytes` at or after `from`, or -1. */
function indexOfBytes(bytes: Uint8Array, pattern: Uint8Array, from: number): number {
  const first = pattern[0]!;
  const last = bytes.length - pattern.length;
  for (let i = bytes.indexOf(first, from); i >= 0 && i <= last; i = bytes.indexOf(first, i + 1)) {
    let k = 1;
    while (k < pattern.length && bytes[i + k] === pattern[k]) k++;
    if (k === pattern.length) return i;
  }
  return -1;
}

function malformed(what: string): TypeError {
  return new TypeError(`Failed to parse the body as multipart/form-data: ${what}.`);
}

/** The value of a Content-Disposition parameter (RFC 6266 / RFC 7578 §4.2), quoted or not. */
function dispositionParams(value: string): { kind: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const semi = value.indexOf(";");
  const kind = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const name = m[1]!.toLowerCase();
    const v = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!.trim();
    if (!params.has(name)) params.set(name, v);
  }
  return { kind, params };
}

/** Undoes escapeName() (as undici does): %0A, %0D and %22, and nothing else. */
function unescapeName(s: string): string {
  return s.replace(/%0A/gi, "\n").replace(/%0D/gi, "\r").replace(/%22/g, '"');
}

/** RFC 8187 ext-value (`UTF-8''%E2%82%AC.txt`), for a `filename*` parameter. */
function decodeExtValue(v: string): string | undefined {
  const m = /^utf-8'[^']*'(.*)$/i.exec(v);
  if (!m) return undefined;
  return utf8Decode(percentDecode(utf8Encode(m[1]!.replace(/\+/g, "%2B"))));
}

/**
 * Parses a multipart/form-data body (RFC 7578, with RFC 2046 §5.1.1's delimiters): a preamble and
 * epilogue are ignored; each part needs a `Content-Disposition: form-data; name=...` header; a part
 * with a filename becomes a File (type from its Content-Type, "text/plain" when absent), others a
 * UTF-8 string. Malformed input is a TypeError.
 */
export function parseMultipart(bytes: Uint8Array, boundary: string): Entry[] {
  if (!boundary || boundary.length > 256) throw malformed("invalid boundary");
  const dashBoundary = utf8Encode(`--${boundary}`);
  const delimiter = utf8Encode(`\r\n--${boundary}`);
  const headerEnd = utf8Encode("\r\n\r\n");
  // The first boundary opens the body or follows a preamble line.
  let pos: number;
  if (indexOfBytes(bytes.subarray(0, dashBoundary.length), dashBoundary, 0) === 0) pos = dashBoundary.length;
  else {
    const at = indexOfBytes(bytes, delimiter, 0);
    if (at < 0) throw malformed("no boundary found");
    pos = at + delimiter.length;
  }
  const entries: Entry[] = [];
  for (;;) {
    if (bytes[pos] === 0x2d && bytes[pos + 1] === 0x2d) return entries; // close delimiter
    while (bytes[pos] === 0x20 || bytes[pos] === 0x09) pos++; // transport padding
    if (bytes[pos] !== 13 || bytes[pos + 1] !== 10) throw malformed("expected CRLF after a boundary");
    pos += 2;
    let headerText = "";
    let bodyStart: number;
    if (bytes[pos] === 13 && bytes[pos + 1] === 10) bodyStart = pos + 2; // a part without headers
    else {
      const end = indexOfBytes(bytes, headerEnd, pos);
      if (end < 0) throw malformed("unterminated part headers");
      headerText = utf8Decode(bytes.subarray(pos, end));
      bodyStart = end + 4;
    }
    const next = indexOfBytes(bytes, delimiter, bodyStart);
    if (next < 0) throw malformed("missing closing boundary");
    entries.push(partEntry(headerText, bytes.subarray(bodyStart, next)));
    pos = next + delimiter.length;
  }
}

function partEntry(headerText: string, body: Uint8Array): Entry {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of headerText.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("invalid part header");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).replace(HTTP_WS, "");
    if (name === "content-disposition") disposition ??= value;
    else if (name === "content-type") contentType ??= value;
  }
  if (disposition === undefined) throw malformed("a part has no Content-Disposition header");
  const { kind, params } = dispositionParams(disposition);
  const rawName = params.get("name");
  const name = rawName === undefined ? undefined : unescapeName(rawName);
  if (kind !== "form-data" || name === undefined) throw malformed("a part's Content-Disposition is not form-data with a name");
  const extName = params.has("filename*") ? decodeExtValue(params.get("filename*")!) : undefined;
  const rawFilename = params.get("filename");
  const filename = extName ?? (rawFilename === undefined ? undefined : unescapeName(rawFilename));
  if (filename === undefined) return [name, utf8Decode(body)];
  // A copy, so a small file does not keep the whole body's bytes alive.
  return [name, fileFromBytes(body.slice(), filename, contentType ?? "text/plain")];
}

/** MIME Sniffing §4.5 "serialize a MIME type". */
export function serializeMimeType(m: MimeType): string {
  let s = m.essence;
  for (const [k, v] of m.params) s += `;${k}=${v !== "" && TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, "\\$&")}"`}`;
  return s;
}
