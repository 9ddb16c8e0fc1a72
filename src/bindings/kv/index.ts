/**
 * A KV namespace with Cloudflare's KV API (get text/json/arrayBuffer/stream, getWithMetadata, put with
 * expiration/expirationTtl/metadata, delete, list with prefix/cursor/limit), stored in its own SQLite
 * file. Usable from the host directly, or placed in a worker's env: `env: { CACHE: kv({ name: "cache" }) }`.
 */
import type { DatabaseSync } from "node:sqlite";
import { QuotaExceededError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import { inWriteTransaction, openStore } from "../storage/sqlite-file.ts";

export interface KvOptions {
  /** The namespace's name: its data lives in <dataDir>/kv/<name>.sqlite, apart from every other. */
  name: string;
  /** Directory for storage bindings (default ".mayfly/data" under the working directory). */
  dataDir?: string;
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
  private readonly db: DatabaseSync;
  private readonly quota: { bytes: number; keys: number };

  constructor(options: KvOptions) {
    this.db = openStore(options.dataDir ?? ".mayfly/data", "kv", options.name);
    this.db.exec(`CREATE TABLE IF NOT EXISTS kv (
      key TEXT PRIMARY KEY, value BLOB NOT NULL, metadata TEXT, expiration INTEGER) WITHOUT ROWID`);
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
    const row = this.db.prepare("SELECT value, metadata, expiration FROM kv WHERE key = ?").get(key) as { value: Uint8Array; metadata: string | null; expiration: number | null } | undefined;
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
    this.transaction(() => {
      this.purgeExpired();
      const old = this.db.prepare("SELECT length(key) + length(value) + coalesce(length(metadata), 0) AS size FROM kv WHERE key = ?").get(key) as { size: number } | undefined;
      const totals = this.db.prepare("SELECT count(*) AS keys, coalesce(sum(length(key) + length(value) + coalesce(length(metadata), 0)), 0) AS bytes FROM kv").get() as { keys: number; bytes: number };
      const size = Buffer.byteLength(key) + bytes.byteLength + (metadata ? Buffer.byteLength(metadata) : 0);
      if (!old && totals.keys + 1 > this.quota.keys) throw new QuotaExceededError(`KV namespace is limited to ${this.quota.keys} keys.`);
      if (totals.bytes - (old?.size ?? 0) + size > this.quota.bytes) throw new QuotaExceededError(`KV namespace is limited to ${this.quota.bytes} bytes.`);
      this.db.prepare("INSERT INTO kv (key, value, metadata, expiration) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration")
        .run(key, bytes, metadata, expiration);
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    this.db.prepare("DELETE FROM kv WHERE key = ?").run(key);
  }

  /** Keys in lexicographic (byte) order; the cursor is the last key returned. */
  async list(options: KvListOptions = {}): Promise<KvListResult> {
    const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 1000)), 1000);
    const prefix = options.prefix ?? "";
    const after = options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : "";
    const rows = this.db.prepare(
      "SELECT key, metadata, expiration FROM kv WHERE key > ? AND substr(key, 1, ?) = ? AND (expiration IS NULL OR expiration > ?) ORDER BY key LIMIT ?",
    ).all(after, prefix.length, prefix, Math.floor(Date.now() / 1000), limit + 1) as { key: string; metadata: string | null; expiration: number | null }[];
    const page = rows.slice(0, limit);
    const keys = page.map((r) => ({
      name: r.key,
      ...(r.expiration !== null ? { expiration: r.expiration } : {}),
      ...(r.metadata !== null ? { metadata: JSON.parse(r.metadata) } : {}),
    }));
    const complete = rows.length <= limit;
    return complete ? { keys, list_complete: true } : { keys, list_complete: false, cursor: Buffer.from(page.at(-1)!.key, "utf8").toString("base64url") };
  }

  close(): void {
    this.db.close();
  }

  private purgeExpired(): void {
    this.db.prepare("DELETE FROM kv WHERE expiration IS NOT NULL AND expiration <= ?").run(Math.floor(Date.now() / 1000));
  }

  private transaction(fn: () => void): void {
    inWriteTransaction(this.db, fn);
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
