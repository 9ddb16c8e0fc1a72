/**
 * A blob bucket with R2's core API (put, get with ranges, head, delete, list with prefix and delimiter,
 * customMetadata, httpMetadata, etag). Object bytes are files named by the SHA-256 of the key, so no
 * key, whatever it contains, can name a path outside its bucket; an SQLite index keeps the metadata.
 * A put is durable when it returns: the file is fsynced and renamed into place before the index commits.
 */
import { createHash, randomUUID } from "node:crypto";
import { closeSync, createReadStream, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { Readable } from "node:stream";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { QuotaExceededError } from "../../errors.ts";
import { BINDING, STREAM_BODIES_OVER, type Bindable, type Capability } from "../capability.ts";
import { fileNameFor, openStore } from "../storage/sqlite-file.ts";

export interface BlobBucketOptions {
  name: string;
  dataDir?: string;
  quota?: { bytes?: number; objects?: number };
}

export interface R2Object {
  key: string;
  version: string;
  size: number;
  etag: string;
  httpEtag: string;
  uploaded: Date;
  httpMetadata: Record<string, string>;
  customMetadata: Record<string, string>;
  /** The range served, for a ranged get. */
  range?: { offset: number; length: number };
}

export type R2Range = { offset: number; length?: number } | { offset?: number; length: number } | { suffix: number };
/** R2's conditional operations: etags (quoted or not, comma lists, "*") and upload times. */
export interface R2Conditional { etagMatches?: string; etagDoesNotMatch?: string; uploadedBefore?: Date; uploadedAfter?: Date }
export interface R2PutOptions { httpMetadata?: Record<string, string>; customMetadata?: Record<string, string>; onlyIf?: R2Conditional }
export interface R2GetOptions { range?: R2Range; onlyIf?: R2Conditional }
export interface R2ListOptions { prefix?: string; delimiter?: string; cursor?: string; limit?: number }

interface Row { key: string; version: string; size: number; etag: string; uploaded: number; http: string; custom: string }

export class BlobBucket implements Bindable {
  private readonly db: DatabaseSync;
  private readonly dir: string;
  private readonly quota: { bytes: number; objects: number };

  constructor(options: BlobBucketOptions) {
    const dataDir = options.dataDir ?? ".mayfly/data";
    this.db = openStore(dataDir, "blob", options.name);
    this.dir = join(resolve(dataDir, "blob"), `${fileNameFor(options.name)}.objects`);
    mkdirSync(this.dir, { recursive: true });
    this.db.exec(`CREATE TABLE IF NOT EXISTS objects (
      key TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
      uploaded INTEGER NOT NULL, http TEXT NOT NULL, custom TEXT NOT NULL) WITHOUT ROWID`);
    this.quota = { bytes: options.quota?.bytes ?? Infinity, objects: options.quota?.objects ?? Infinity };
  }

  [BINDING](): Capability {
    return {
      kind: "r2",
      call: async (method, args) => {
        switch (method) {
          case "put": return this.put(args[0] as string, args[1] as Uint8Array | string | ReadableStream<Uint8Array>, args[2] as R2PutOptions);
          case "get": {
            const options = args[1] as R2GetOptions | undefined;
            const row = this.row(args[0] as string);
            // A failed condition answers the object's metadata without its body, as R2 does.
            if (row && options?.onlyIf && !conditionHolds(row, options.onlyIf)) return toObject(row);
            const r = this.open(args[0] as string, options);
            // A small object crosses whole; a large one streams from its file as the worker reads it.
            return r && { ...r.object, body: r.length <= STREAM_BODIES_OVER ? r.readAll() : r.stream() };
          }
          case "head": return this.head(args[0] as string);
          case "delete": return this.delete(args[0] as string | string[]);
          case "list": return this.list(args[0] as R2ListOptions);
          default: throw new TypeError(`Buckets have no method ${method}().`);
        }
      },
    };
  }

  /** Stores an object; a stream is written to the file as it arrives, the quota checked on the way. */
  async put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>, options: R2PutOptions = {}): Promise<R2Object | null> {
    checkKey(key);
    const old = this.row(key);
    // R2: a put whose condition fails stores nothing and answers null.
    if (options.onlyIf && !(old ? conditionHolds(old, options.onlyIf) : options.onlyIf.etagMatches === undefined && options.onlyIf.uploadedBefore === undefined)) {
      if (value instanceof ReadableStream) await value.cancel().catch(() => {});
      return null;
    }
    const totals = this.db.prepare("SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM objects").get() as { n: number; bytes: number };
    if (!old && totals.n + 1 > this.quota.objects) throw new QuotaExceededError(`Bucket is limited to ${this.quota.objects} objects.`);
    const room = this.quota.bytes - (totals.bytes - (old?.size ?? 0));
    // Write aside, fsync, rename into place: a reader sees the old object or the new one, never half.
    const path = this.pathOf(key);
    const tmp = `${path}.${randomUUID()}.tmp`;
    const md5 = createHash("md5");
    let size = 0;
    const fd = openSync(tmp, "w");
    try {
      for await (const chunk of chunksOf(value)) {
        size += chunk.byteLength;
        if (size > room) throw new QuotaExceededError(`Bucket is limited to ${this.quota.bytes} bytes.`);
        md5.update(chunk);
        for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done);
      }
      fsyncSync(fd);
    } catch (e) {
      if (value instanceof ReadableStream) await value.cancel().catch(() => {});
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw e;
    }
    closeSync(fd);
    renameSync(tmp, path);
    const row: Row = {
      key, version: randomUUID().replaceAll("-", ""), size, etag: md5.digest("hex"),
      uploaded: Date.now(), http: JSON.stringify(options.httpMetadata ?? {}), custom: JSON.stringify(options.customMetadata ?? {}),
    };
    this.db.prepare("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET version = excluded.version, size = excluded.size, etag = excluded.etag, uploaded = excluded.uploaded, http = excluded.http, custom = excluded.custom")
      .run(row.key, row.version, row.size, row.etag, row.uploaded, row.http, row.custom);
    return toObject(row);
  }

  async head(key: string): Promise<R2Object | null> {
    checkKey(key);
    const row = this.row(key);
    return row ? toObject(row) : null;
  }

  async get(key: string, options?: { range?: R2Range }): Promise<(R2Object & { body: ReadableStream<Uint8Array>; arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> }) | null> {
    const r = this.open(key, options);
    if (!r) return null;
    const res = new Response(r.stream());
    return { ...r.object, body: res.body!, arrayBuffer: () => res.arrayBuffer(), text: () => res.text() };
  }

  async delete(keys: string | string[]): Promise<void> {
    for (const key of Array.isArray(keys) ? keys : [keys]) {
      checkKey(key);
      this.db.prepare("DELETE FROM objects WHERE key = ?").run(key);
      rmSync(this.pathOf(key), { force: true });
    }
  }

  /** R2 list: keys in order; with a delimiter, keys past it under the prefix fold into delimitedPrefixes. */
  async list(options: R2ListOptions = {}): Promise<{ objects: R2Object[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }> {
    const prefix = options.prefix ?? "";
    const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 1000)), 1000);
    let after = options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : "";
    const objects: R2Object[] = [];
    const prefixes = new Set<string>();
    const stmt = this.db.prepare("SELECT * FROM objects WHERE key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT 1");
    for (;;) {
      const row = stmt.get(after, prefix.length, prefix) as Row | undefined;
      if (!row) return { objects, truncated: false, delimitedPrefixes: [...prefixes] };
      if (objects.length + prefixes.size >= limit) {
        return { objects, truncated: true, cursor: Buffer.from(after, "utf8").toString("base64url"), delimitedPrefixes: [...prefixes] };
      }
      const rest = row.key.slice(prefix.length);
      const cut = options.delimiter ? rest.indexOf(options.delimiter) : -1;
      if (cut >= 0) {
        const folded = prefix + rest.slice(0, cut + options.delimiter!.length);
        prefixes.add(folded);
        // Skip every key under this folded prefix at once.
        after = `${folded}\u{10FFFF}`;
      } else {
        objects.push(toObject(row));
        after = row.key;
      }
    }
  }

  close(): void {
    this.db.close();
  }

  /**
   * An object's metadata and its bytes (or the range asked for), read from the file opened now: a put
   * that replaces the object meanwhile renames a new file into place and leaves this one whole.
   */
  private open(key: string, options?: { range?: R2Range }): { object: R2Object; length: number; readAll(): Uint8Array; stream(): ReadableStream<Uint8Array> } | null {
    checkKey(key);
    const row = this.row(key);
    if (!row) return null;
    const fd = openSync(this.pathOf(key), "r");
    const size = fstatSync(fd).size;
    const { offset, length } = options?.range ? resolveRange(options.range, size) : { offset: 0, length: size };
    const object = options?.range ? { ...toObject(row), range: { offset, length } } : toObject(row);
    return {
      object,
      length,
      readAll: () => {
        try {
          const bytes = new Uint8Array(length);
          for (let done = 0; done < length;) done += readSync(fd, bytes, done, length - done, offset + done);
          return bytes;
        } finally {
          closeSync(fd);
        }
      },
      stream: () => length === 0
        ? (closeSync(fd), new Response(new Uint8Array(0)).body!)
        : Readable.toWeb(createReadStream("", { fd, start: offset, end: offset + length - 1 })) as ReadableStream<Uint8Array>,
    };
  }

  private row(key: string): Row | undefined {
    return this.db.prepare("SELECT * FROM objects WHERE key = ?").get(key) as Row | undefined;
  }

  /** A key's file: the SHA-256 of the key, so nothing in a key is ever part of a path. */
  private pathOf(key: string): string {
    return join(this.dir, createHash("sha256").update(key, "utf8").digest("hex"));
  }
}

/**
 * Whether a conditional holds for an object (RFC 9110 §13.2.2 order: an etag condition, when given,
 * decides instead of the matching time condition).
 */
function conditionHolds(row: Row, c: R2Conditional): boolean {
  const etags = (v: string) => v.split(",").map((e) => e.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1"));
  const matches = (v: string) => etags(v).some((e) => e === "*" || e === row.etag);
  if (c.etagMatches !== undefined) {
    if (!matches(c.etagMatches)) return false;
  } else if (c.uploadedBefore !== undefined && !(row.uploaded < new Date(c.uploadedBefore).getTime())) return false;
  if (c.etagDoesNotMatch !== undefined) {
    if (matches(c.etagDoesNotMatch)) return false;
  } else if (c.uploadedAfter !== undefined && !(row.uploaded > new Date(c.uploadedAfter).getTime())) return false;
  return true;
}

/** A value to store, as byte chunks: one for bytes or text, as they come for a stream. */
async function* chunksOf(value: string | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (typeof value === "string") yield Buffer.from(value, "utf8");
  else if (ArrayBuffer.isView(value)) yield new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  else if (value instanceof ArrayBuffer) yield new Uint8Array(value);
  else for await (const chunk of value as unknown as AsyncIterable<Uint8Array>) yield chunk;
}

export function blobBucket(options: BlobBucketOptions): BlobBucket {
  return new BlobBucket(options);
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || Buffer.byteLength(key) > 1024) throw new TypeError("Object keys must be 1 to 1024 bytes.");
}

function toObject(row: Row): R2Object {
  return {
    key: row.key, version: row.version, size: row.size, etag: row.etag, httpEtag: `"${row.etag}"`,
    uploaded: new Date(row.uploaded), httpMetadata: JSON.parse(row.http), customMetadata: JSON.parse(row.custom),
  };
}

function resolveRange(range: R2Range, size: number): { offset: number; length: number } {
  if ("suffix" in range) {
    const length = Math.min(Math.max(0, range.suffix), size);
    return { offset: size - length, length };
  }
  const offset = Math.min(Math.max(0, range.offset ?? 0), size);
  const length = Math.min(Math.max(0, range.length ?? size - offset), size - offset);
  return { offset, length };
}
