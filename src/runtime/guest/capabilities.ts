/**
 * Stubs for the worker's capabilities (bindings in env, globalOutbound). The host replaced each
 * binding by a descriptor naming it in the worker's own capability table; here each becomes a stub
 * whose calls cross back to the host by copy (the "cap" host service). Nothing of the host is here.
 */
import { startHostTask } from "./host-calls.ts";
import { capabilityBody, sendToCapability } from "./body-bridge.ts";
import { isReadableStream } from "./streams.ts";
import { Request, Response, takeBodySource } from "./fetch-api.ts";
import { copyBytes } from "./buffer-source.ts";
import { utf8Decode } from "./utf8.ts";
import { workspaceStub } from "./workspace.ts";
import { namespaceStub, rememberCapability, setFetchVia } from "./actor.ts";
import { browserStub } from "./browser.ts";

interface Descriptor {
  __mayflyCapability: number;
  kind: "rpc" | "fetcher" | "service" | "kv" | "d1" | "r2" | "workspace" | "browser" | "sandbox" | "actors";
  meta?: Record<string, string>;
}

type WireResponse = { status: number; statusText: string; headers: [string, string][]; body: Uint8Array | { __mayflyStream: number } | null };

function isDescriptor(v: unknown): v is Descriptor {
  return typeof v === "object" && v !== null && typeof (v as Descriptor).__mayflyCapability === "number";
}

function callCapability(id: number, method: string, args: unknown[]): Promise<unknown> {
  return startHostTask<unknown>("cap", "call", id, method, args).promise;
}

/** The env the worker sees: data as it came, each binding replaced by its stub. */
export function materializeEnv(env: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(env)) {
    const value = env[key];
    // Remembered, so an actor can pass its own bindings on to a facet (actor.ts facetEnv).
    out[key] = isDescriptor(value) ? rememberCapability(stubFor(value) as object, value.__mayflyCapability) : value;
  }
  return out;
}

function stubFor(d: Descriptor): unknown {
  const id = d.__mayflyCapability;
  if (d.kind === "fetcher") return Object.freeze({ fetch: (input: unknown, init?: unknown) => fetchThrough(id, input, init) });
  if (d.kind === "kv") return kvStub(id);
  if (d.kind === "d1") return d1Stub(id);
  if (d.kind === "r2") return r2Stub(id);
  if (d.kind === "workspace") return workspaceStub(id, callCapability);
  if (d.kind === "actors") return namespaceStub(id, d.meta?.namespace ?? "");
  if (d.kind === "browser") return browserStub(id, callCapability);
  // The OS sandbox: one method; the command runs on the host, in bubblewrap (bindings/sandbox).
  if (d.kind === "sandbox") return sandboxStub(id);
  // rpc (an object's methods, or a function called directly) and service (fetch plus RPC methods).
  return new Proxy(function binding() {}, {
    apply: (_t, _this, args: unknown[]) => callCapability(id, "call", args),
    get: (_t, prop) => {
      if (typeof prop !== "string" || prop === "then") return undefined; // not thenable
      if (prop === "fetch" && d.kind === "service") return (input: unknown, init?: unknown) => fetchThrough(id, input, init);
      return (...args: unknown[]) => callCapability(id, prop, args);
    },
  });
}

setFetchVia(fetchThrough);

/** The OS sandbox: exec() answers when the command is done; spawn() gives its stdout as it comes, and `exited`. */
function sandboxStub(id: number): object {
  return Object.freeze({
    exec: (command: string, args?: string[], options?: unknown) => callCapability(id, "exec", [command, args ?? [], options ?? {}]),
    async spawn(command: string, args?: string[], options?: unknown) {
      const r = (await callCapability(id, "spawn", [command, args ?? [], options ?? {}])) as { run: number; body: { __mayflyStream: number } };
      const exited = callCapability(id, "wait", [r.run]);
      exited.catch(() => {}); // handled by whoever awaits it; not an unhandled rejection if nobody does
      return Object.freeze({ stdout: capabilityBody(r.body.__mayflyStream), exited });
    },
  });
}

/** A fetch() through a fetcher capability: the request crosses by copy, the response comes back. */
export async function fetchThrough(id: number, input: unknown, init?: unknown, method = "fetch", lead: unknown[] = []): Promise<Response> {
  const request = new Request(input as string, init as ConstructorParameters<typeof Request>[1]);
  const source = request.body === null ? null : takeBodySource(request);
  const headers = [...request.headers] as [string, string][];
  const fetchWith = (body: unknown) => callCapability(id, method, [...lead, { url: request.url, method: request.method, headers, body }]);
  const r = (source === null || source instanceof Uint8Array ? await fetchWith(source) : await sendStreamed(id, source, fetchWith)) as WireResponse;
  // Fetch §2.2.3: a null body status has no body.
  const nullBody = r.status === 101 || r.status === 103 || r.status === 204 || r.status === 205 || r.status === 304;
  const body = r.body && !(r.body instanceof Uint8Array) ? capabilityBody(r.body.__mayflyStream) : r.body;
  if (nullBody && body && !(body instanceof Uint8Array)) void (body as ReadableStream).cancel();
  return new Response(nullBody ? null : body, { status: r.status, statusText: r.statusText, headers: r.headers });
}

/**
 * Calls `send` with a reference to a sink the host reads `stream` from, while the stream is written
 * into it a chunk at a time (see CapabilityTable.addSink). If the call fails before the host has read
 * the body, the writing stops.
 */
async function sendStreamed<T>(id: number, stream: ReadableStream<unknown>, send: (sink: { __mayflySink: number }) => Promise<T>): Promise<T> {
  const sinkId = (await callCapability(id, SINK, [])) as number;
  void sendToCapability(stream, sinkId);
  return send({ __mayflySink: sinkId }).catch((e: unknown) => {
    void callCapability(sinkId, "abort", ["The call the body was for failed."]).catch(() => {});
    throw e;
  });
}

/** The method the host's capability router answers with a new body sink (engine/capability-router.ts SINK). */
const SINK = "mayfly:sink";

type KvType = "text" | "json" | "arrayBuffer" | "stream";

/** KV's bulk reads: up to 100 keys at once, answered as a Map in the keys' order. */
async function many<T>(keys: string[], one: (key: string) => Promise<T>): Promise<Map<string, T>> {
  if (keys.length > 100) throw new TypeError("KV bulk reads take at most 100 keys.");
  const values = await Promise.all(keys.map((k) => one(String(k))));
  return new Map(keys.map((k, i) => [String(k), values[i]!]));
}

/** Cloudflare's KVNamespace in the guest: values cross as bytes or strings; types are decoded here. */
function kvStub(id: number): object {
  const call = (method: string, ...args: unknown[]) => callCapability(id, method, args);
  const typeOf = (t: unknown): KvType => (typeof t === "string" ? t : ((t as { type?: KvType } | undefined)?.type ?? "text")) as KvType;
  const decode = (bytes: Uint8Array | null, type: KvType): unknown => {
    if (bytes === null) return null;
    switch (type) {
      case "text": return utf8Decode(bytes);
      case "json": return JSON.parse(utf8Decode(bytes));
      case "arrayBuffer": return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      case "stream": return new Response(bytes).body;
      default: throw new TypeError(`Unknown KV value type "${type as string}".`);
    }
  };
  return Object.freeze({
    async get(key: string | string[], type?: unknown) {
      if (Array.isArray(key)) return many(key, async (k) => decode((await call("get", k)) as Uint8Array | null, typeOf(type)));
      return decode((await call("get", key)) as Uint8Array | null, typeOf(type));
    },
    async getWithMetadata(key: string | string[], type?: unknown) {
      const one = async (k: string) => {
        const r = (await call("getWithMetadata", k)) as { value: Uint8Array | null; metadata: unknown };
        return { value: decode(r.value, typeOf(type)), metadata: r.metadata };
      };
      return Array.isArray(key) ? many(key, one) : one(key);
    },
    async put(key: string, value: unknown, options?: unknown) {
      // Strings and bytes cross as they are; streams and other bodies are read here first.
      const v = typeof value === "string" ? value : copyBytes(value) ?? new Uint8Array(await new Response(value as ConstructorParameters<typeof Response>[0]).arrayBuffer());
      await call("put", key, v, options ?? {});
    },
    async delete(key: string) {
      await call("delete", key);
    },
    list(options?: unknown) {
      return call("list", options ?? {});
    },
  });
}

/**
 * Cloudflare D1 in the guest: prepare() and bind() build statements here (synchronously, as D1 does);
 * running them crosses to the host database.
 */
function d1Stub(id: number): object {
  const call = (method: string, ...args: unknown[]) => callCapability(id, method, args);
  const statements = new WeakMap<object, { sql: string; params: unknown[] }>();
  type Track = <T>(work: Promise<T>) => Promise<T>;
  const untracked: Track = (work) => work;
  class D1PreparedStatement {
    #track: Track;
    constructor(sql: string, params: unknown[], track: Track) {
      statements.set(this, { sql, params });
      this.#track = track;
    }
    bind(...values: unknown[]): D1PreparedStatement {
      return new D1PreparedStatement(statements.get(this)!.sql, values, this.#track);
    }
    async first(column?: string): Promise<unknown> {
      const row = (await this.#track(call("query", statements.get(this), "first"))) as Record<string, unknown> | null;
      if (column === undefined || row === null) return row;
      if (!(column in row)) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
      return row[column];
    }
    all(): Promise<unknown> {
      return this.#track(call("query", statements.get(this), "all"));
    }
    run(): Promise<unknown> {
      return this.#track(call("query", statements.get(this), "run"));
    }
    raw(options?: { columnNames?: boolean }): Promise<unknown> {
      return this.#track(call("query", statements.get(this), "raw", { columnNames: !!options?.columnNames }));
    }
  }
  const batch = (list: unknown[]) => {
    const queries = Array.from(list, (s) => {
      const q = statements.get(s as object);
      if (!q) throw new TypeError("batch() takes statements made by prepare().");
      return q;
    });
    return call("batch", queries);
  };
  return Object.freeze({
    prepare: (sql: string) => new D1PreparedStatement(String(sql), [], untracked),
    batch,
    exec: (sql: string) => call("exec", String(sql)),
    /**
     * D1 Sessions: the same database (one file is sequentially consistent by itself); getBookmark()
     * gives the position after the session's last query, to pass to a later withSession().
     */
    withSession(_constraintOrBookmark?: string) {
      let bookmark: string | null = null;
      const track: Track = async (work) => {
        const out = await work;
        bookmark = (await call("bookmark")) as string;
        return out;
      };
      return Object.freeze({
        prepare: (sql: string) => new D1PreparedStatement(String(sql), [], track),
        batch: (list: unknown[]) => track(batch(list)),
        getBookmark: () => bookmark,
      });
    },
  });
}

/** R2's `onlyIf` may be request Headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since). */
function withConditional(options: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const c = options?.onlyIf as { get?: (name: string) => string | null } | undefined;
  if (typeof c?.get !== "function") return options;
  const header = (name: string) => c.get!(name) ?? undefined;
  const date = (name: string) => (header(name) === undefined ? undefined : new Date(header(name)!));
  const onlyIf = { etagMatches: header("if-match"), etagDoesNotMatch: header("if-none-match"), uploadedBefore: date("if-unmodified-since"), uploadedAfter: date("if-modified-since") };
  return { ...options, onlyIf: Object.fromEntries(Object.entries(onlyIf).filter(([, v]) => v !== undefined)) };
}

/** Cloudflare R2 in the guest: values cross as bytes; a got object's body is read like a Response's. */
function r2Stub(id: number): object {
  const call = (method: string, ...args: unknown[]) => callCapability(id, method, args);
  const toBytes = async (value: unknown): Promise<Uint8Array | string> =>
    typeof value === "string" ? value : copyBytes(value) ?? new Uint8Array(await new Response(value as ConstructorParameters<typeof Response>[0]).arrayBuffer());
  /** Bytes and text cross with the call; a stream is written a chunk at a time into a sink the host reads. */
  const sendValue = async (value: unknown, send: (v: unknown) => Promise<unknown>): Promise<unknown> =>
    isReadableStream(value) ? sendStreamed(id, value, send) : send(await toBytes(value));
  /** R2MultipartUpload: parts stored by the host, joined on complete(). */
  const multipart = (key: string, uploadId: string) => Object.freeze({
    key,
    uploadId,
    uploadPart: (partNumber: number, value: unknown) => sendValue(value, (v) => call("uploadPart", key, uploadId, partNumber, v)),
    abort: async () => void (await call("abortMultipartUpload", key, uploadId)),
    complete: (parts: unknown[]) => call("completeMultipartUpload", key, uploadId, Array.from(parts ?? [], (p) => ({ partNumber: (p as { partNumber: number }).partNumber, etag: (p as { etag: string }).etag }))),
  });
  return Object.freeze({
    put: (key: string, value: unknown, options?: Record<string, unknown>) => sendValue(value, (v) => call("put", key, v, withConditional(options) ?? {})),
    createMultipartUpload: async (key: string, options?: unknown) => {
      const { uploadId } = (await call("createMultipartUpload", key, options ?? {})) as { uploadId: string };
      return multipart(String(key), uploadId);
    },
    resumeMultipartUpload: (key: string, uploadId: string) => multipart(String(key), String(uploadId)),
    async get(key: string, options?: Record<string, unknown>) {
      const r = (await call("get", key, withConditional(options) ?? {})) as (Record<string, unknown> & { body: Uint8Array | { __mayflyStream: number } }) | null;
      if (r === null) return null;
      if (!("body" in r)) return r; // onlyIf did not hold: the object without its body
      const { body, ...object } = r;
      const response = new Response(body instanceof Uint8Array ? body : capabilityBody(body.__mayflyStream));
      return Object.assign(object, {
        get body() { return response.body; },
        get bodyUsed() { return response.bodyUsed; },
        arrayBuffer: () => response.arrayBuffer(),
        bytes: () => response.bytes(),
        text: () => response.text(),
        json: () => response.json(),
        blob: () => response.blob(),
      });
    },
    head: (key: string) => call("head", key),
    async delete(keys: string | string[]) {
      await call("delete", keys);
    },
    list: (options?: unknown) => call("list", options ?? {}),
  });
}
