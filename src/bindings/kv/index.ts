/**
 * A KV namespace with Cloudflare's KV API (get text/json/arrayBuffer/stream, getWithMetadata, put with
 * expiration/expirationTtl/metadata, delete, list with prefix/cursor/limit), stored in its own SQLite
 * file, or in PostgreSQL with `backend` (shared by every host on that database). Usable from the host
 * directly, or placed in a worker's env: `env: { CACHE: kv({ name: "cache" }) }`. This file is the
 * surface (validation, Cloudflare's shapes); storage is behind the KvStore interface (store.ts).
 */
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import type { PostgresBackend } from "../storage/postgres.ts";
import { PostgresKvStore } from "./postgres-store.ts";
import { SqliteKvStore } from "./sqlite-store.ts";
import type { KvStore } from "./store.ts";

export interface KvOptions {
  /** The namespace's name: its data lives in <dataDir>/kv/<name>.sqlite, apart from every other. */
  name: string;
  /** Directory for storage bindings (default ".mayfly/data" under the working directory). */
  dataDir?: string;
  /** Store in PostgreSQL instead of a SQLite file: every host given the same database sees the same data. */
  backend?: PostgresBackend;
  quota?: { bytes?: number; keys?: number };
}

type ValueType = "text" | "json" | "arrayBuffer" | "stream";
export interface KvPutOptions { expiration?: number; expirationTtl?: number; metadata?: unknown }
export interface KvListOptions { prefix?: string; limit?: number; cursor?: string }
export interface KvListResult { keys: { name: string; expiration?: number; metadata?: unknown }[]; list_complete: boolean; cursor?: string }

const MAX_KEY_BYTES = 512;
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
const MAX_METADATA_BYTES = 1024;

export class KvNamespace implements Bindable {
  private readonly store: KvStore;
  private readonly quota: { bytes: number; keys: number };

  constructor(options: KvOptions) {
    this.store = options.backend ? new PostgresKvStore(options.backend, options.name) : new SqliteKvStore(options.dataDir ?? ".mayfly/data", options.name);
    this.quota = { bytes: options.quota?.bytes ?? Infinity, keys: options.quota?.keys ?? Infinity };
  }

  [BINDING](): Capability {
    return {
      kind: "kv",
      call: async (method, args) => {
        switch (method) {
          case "get": return this.get(args[0] as string, "arrayBuffer").then(toBytes);
          case "getWithMetadata": {
            const r = await this.getWithMetadata(args[0] as string, "arrayBuffer");
            return { value: toBytes(r.value), metadata: r.metadata };
          }
          case "put": return this.put(args[0] as string, args[1] as string | Uint8Array, args[2] as KvPutOptions);
          case "delete": return this.delete(args[0] as string);
          case "list": return this.list(args[0] as KvListOptions);
          default: throw new TypeError(`KV namespaces have no method ${method}().`);
        }
      },
    };
  }

  async get(key: string, type: ValueType | { type?: ValueType } = "text"): Promise<unknown> {
    return (await this.getWithMetadata(key, type)).value;
  }

  async getWithMetadata(key: string, type: ValueType | { type?: ValueType } = "text"): Promise<{ value: unknown; metadata: unknown }> {
    checkKey(key);
    const row = await this.store.get(key);
    if (!row || expired(row.expiration)) return { value: null, metadata: null };
    return { value: decode(row.value, typeof type === "string" ? type : type?.type ?? "text"), metadata: row.metadata === null ? null : JSON.parse(row.metadata) };
  }

  async put(key: string, value: string | ArrayBuffer | ArrayBufferView, options: KvPutOptions = {}): Promise<void> {
    checkKey(key);
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
    if (!bytes) throw new TypeError("KV put() requires a string, ArrayBuffer, ArrayBufferView or ReadableStream value.");
    if (bytes.byteLength > MAX_VALUE_BYTES) throw new RangeError(`Values are limited to ${MAX_VALUE_BYTES} bytes.`);
    const metadata = options.metadata === undefined ? null : JSON.stringify(options.metadata);
    if (metadata !== null && Buffer.byteLength(metadata) > MAX_METADATA_BYTES) throw new RangeError(`Metadata is limited to ${MAX_METADATA_BYTES} bytes of JSON.`);
    const expiration = expirationOf(options);
    await this.store.put({ key, value: bytes, metadata, expiration }, this.quota);
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.store.delete(key);
  }

  /** Keys in lexicographic (byte) order; the cursor is the last key returned. */
  async list(options: KvListOptions = {}): Promise<KvListResult> {
    const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 1000)), 1000);
    const prefix = options.prefix ?? "";
    const after = options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : "";
    const rows = await this.store.list(after, prefix, Math.floor(Date.now() / 1000), limit + 1);
    const page = rows.slice(0, limit);
    const keys = page.map((r) => ({
      name: r.key,
      ...(r.expiration !== null ? { expiration: r.expiration } : {}),
      ...(r.metadata !== null ? { metadata: JSON.parse(r.metadata) } : {}),
    }));
    const complete = rows.length <= limit;
    return complete ? { keys, list_complete: true } : { keys, list_complete: false, cursor: Buffer.from(page.at(-1)!.key, "utf8").toString("base64url") };
  }

  /** Closes its SQLite file; a PostgreSQL backend is shared, and closed by whoever made it. */
  close(): Promise<void> {
    return this.store.close();
  }
}

/** A KV namespace for a worker's env (or for the host's own use). */
export function kv(options: KvOptions): KvNamespace {
  return new KvNamespace(options);
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key === "" || key === "." || key === "..") throw new TypeError("KV keys must be non-empty strings other than \".\" and \"..\".");
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new RangeError(`KV keys are limited to ${MAX_KEY_BYTES} bytes.`);
}

function expired(expiration: number | null): boolean {
  return expiration !== null && expiration <= Date.now() / 1000;
}

/** Cloudflare: expiration is seconds since the epoch; expirationTtl seconds from now, at least 60. */
function expirationOf(o: KvPutOptions): number | null {
  if (o.expirationTtl !== undefined) {
    if (!(o.expirationTtl >= 60)) throw new RangeError("expirationTtl must be at least 60 seconds.");
    return Math.floor(Date.now() / 1000 + o.expirationTtl);
  }
  if (o.expiration !== undefined) {
    if (!(o.expiration >= Date.now() / 1000 + 60)) throw new RangeError("expiration must be at least 60 seconds in the future.");
    return Math.floor(o.expiration);
  }
  return null;
}

function decode(bytes: Uint8Array, type: ValueType): unknown {
  switch (type) {
    case "text": return Buffer.from(bytes).toString("utf8");
    case "json": return JSON.parse(Buffer.from(bytes).toString("utf8"));
    case "arrayBuffer": return new Uint8Array(bytes).buffer;
    case "stream": return new Response(new Uint8Array(bytes)).body;
    default: throw new TypeError(`Unknown KV value type "${type as string}".`);
  }
}

function toBytes(v: unknown): Uint8Array | null {
  return v === null ? null : new Uint8Array(v as ArrayBuffer);
}
