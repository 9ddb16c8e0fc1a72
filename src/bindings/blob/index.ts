/**
 * A blob bucket with R2's core API (put, get with ranges, head, delete, list with prefix and delimiter,
 * customMetadata, httpMetadata, etag). Object bytes are files named by the SHA-256 of the key, so no
 * key, whatever it contains, can name a path outside its bucket; an SQLite index keeps the metadata.
 * A put is durable when it returns: the file is fsynced and renamed into place before the index commits.
 */
import { createHash, randomUUID } from "node:crypto";
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { Readable } from "node:stream";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { QuotaExceededError } from "../../errors.ts";
import { concatenated, md5File, writeAside, type StoredValue } from "./files.ts";
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
export interface R2UploadedPart { partNumber: number; etag: string }
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
    this.db.exec("CREATE TABLE IF NOT EXISTS uploads (upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, http TEXT NOT NULL, custom TEXT NOT NULL) WITHOUT ROWID");
    this.quota = { bytes: options.quota?.bytes ?? Infinity, objects: options.quota?.objects ?? Infinity };
  }

  [BINDING](): Capability {
    return {
      kind: "r2",
      call: async (method, args) => {
        switch (method) {
          case "put": return this.put(args[0] as string, args[1] as Uint8Array | string | ReadableStream<Uint8Array>, args[2] as R2PutOptions);
          case "get": {
            const key = args[0] as string;
            const options = args[1] as R2GetOptions | undefined;
            const row = this.checkedRow(key);
            if (!row) return null;
            // A failed condition answers the object's metadata without its body, as R2 does.
            if (options?.onlyIf && !conditionHolds(row, options.onlyIf)) return toObject(row);
            const r = this.open(key, row, options);
            // A small object crosses whole; a large one streams from its file as the worker reads it.
            return { ...r.object, body: r.length <= STREAM_BODIES_OVER ? r.readAll() : r.stream() };
          }
          case "head": return this.head(args[0] as string);
          case "createMultipartUpload": return this.createMultipartUpload(args[0] as string, args[1] as R2PutOptions | undefined);
          case "uploadPart": return this.uploadPart(args[0] as string, args[1] as string, args[2] as number, args[3] as StoredValue);
          case "abortMultipartUpload": return this.abortMultipartUpload(args[0] as string, args[1] as string);
          case "completeMultipartUpload": return this.completeMultipartUpload(args[0] as string, args[1] as string, args[2] as R2UploadedPart[]);
          case "delete": return this.delete(args[0] as string | string[]);
          case "list": return this.list(args[0] as R2ListOptions);
          default: throw new TypeError(`Buckets have no method ${method}().`);
        }
      },
    };
  }

  /** Stores an object; a stream is written to the file as it arrives, the quota checked on the way. */
  async put(key: string, value: StoredValue, options: R2PutOptions = {}): Promise<R2Object | null> {
    const old = this.checkedRow(key);
    // R2: a put whose condition fails stores nothing and answers null.
    if (options.onlyIf && !(old ? conditionHolds(old, options.onlyIf) : options.onlyIf.etagMatches === undefined && options.onlyIf.uploadedBefore === undefined)) {
      if (value instanceof ReadableStream) await value.cancel().catch(() => {});
      return null;
    }
    const room = this.roomFor(old);
    const path = this.pathOf(key);
    const written = await writeAside(path, value, room, () => this.tooBig());
    return this.commit(key, written.tmp, written.size, written.md5.toString("hex"), options);
  }

  /**
   * Checks the object quota for a new version of a key whose current row is `old`, and answers the
   * bytes that version may take under the byte quota.
   */
  private roomFor(old: Row | undefined): number {
    const totals = this.db.prepare("SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM objects").get() as { n: number; bytes: number };
    if (!old && totals.n + 1 > this.quota.objects) throw new QuotaExceededError(`Bucket is limited to ${this.quota.objects} objects.`);
    return this.quota.bytes - (totals.bytes - (old?.size ?? 0));
  }

  private tooBig(): QuotaExceededError {
    return new QuotaExceededError(`Bucket is limited to ${this.quota.bytes} bytes.`);
  }

  /** Renames a written file into place, then records it: the object is durable when this returns. */
  private commit(key: string, tmp: string, size: number, etag: string, options: R2PutOptions): R2Object {
    renameSync(tmp, this.pathOf(key));
    const row: Row = {
      key, version: randomUUID().replaceAll("-", ""), size, etag,
      uploaded: Date.now(), http: JSON.stringify(options.httpMetadata ?? {}), custom: JSON.stringify(options.customMetadata ?? {}),
    };
    this.db.prepare("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET version = excluded.version, size = excluded.size, etag = excluded.etag, uploaded = excluded.uploaded, http = excluded.http, custom = excluded.custom")
      .run(row.key, row.version, row.size, row.etag, row.uploaded, row.http, row.custom);
    return toObject(row);
  }

  // -- R2 multipart uploads: parts are files under <bucket>.uploads/<uploadId>/, joined on complete --

  async createMultipartUpload(key: string, options: R2PutOptions = {}): Promise<{ key: string; uploadId: string }> {
    checkKey(key);
    const uploadId = randomUUID().replaceAll("-", "");
    mkdirSync(this.partsDir(uploadId), { recursive: true });
    this.db.prepare("INSERT INTO uploads VALUES (?, ?, ?, ?)").run(uploadId, key, JSON.stringify(options.httpMetadata ?? {}), JSON.stringify(options.customMetadata ?? {}));
    return { key, uploadId };
  }

  /** Stores one part (1–10,000; sent again, it replaces the earlier one); answers its etag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<R2UploadedPart> {
    this.upload(key, uploadId);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new RangeError("partNumber must be an integer from 1 to 10000.");
    const path = join(this.partsDir(uploadId), String(partNumber));
    const written = await writeAside(path, value, this.quota.bytes, () => this.tooBig());
    renameSync(written.tmp, path);
    return { partNumber, etag: written.md5.toString("hex") };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    this.upload(key, uploadId);
    this.db.prepare("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
    rmSync(this.partsDir(uploadId), { recursive: true, force: true });
  }

  /** Joins the listed parts, in part-number order, into the object; each must be the part uploaded. */
  async completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<R2Object> {
    const upload = this.upload(key, uploadId);
    if (!Array.isArray(parts) || parts.length === 0) throw new TypeError("complete() needs the uploaded parts.");
    const ordered = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    const files: string[] = [];
    const md5s: Buffer[] = [];
    for (const part of ordered) {
      const file = join(this.partsDir(uploadId), String(part.partNumber));
      let etag: string;
      try {
        etag = await md5File(file);
      } catch {
        throw new TypeError(`Part ${part.partNumber} was not uploaded.`);
      }
      if (etag !== part.etag) throw new TypeError(`Part ${part.partNumber} does not match its etag.`);
      files.push(file);
      md5s.push(Buffer.from(etag, "hex"));
    }
    const written = await writeAside(this.pathOf(key), concatenated(files), this.roomFor(this.row(key)), () => this.tooBig());
    // As S3 and R2 do: the md5 of the parts' md5s, and how many parts.
    const etag = `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${ordered.length}`;
    const object = this.commit(key, written.tmp, written.size, etag, { httpMetadata: JSON.parse(upload.http), customMetadata: JSON.parse(upload.custom) });
    await this.abortMultipartUpload(key, uploadId);
    return object;
  }

  private upload(key: string, uploadId: string): { http: string; custom: string } {
    const row = this.db.prepare("SELECT http, custom FROM uploads WHERE upload_id = ? AND key = ?").get(String(uploadId), String(key)) as { http: string; custom: string } | undefined;
    if (!row) throw new TypeError("No such multipart upload (it was completed, aborted, or never made for this key).");
    return row;
  }

  private partsDir(uploadId: string): string {
    // uploadId is ours (hex), checked against the index before any path is made from it.
    return join(`${this.dir}.uploads`, uploadId.replace(/[^0-9a-f]/g, ""));
  }

  async head(key: string): Promise<R2Object | null> {
    const row = this.checkedRow(key);
    return row ? toObject(row) : null;
  }

  async get(key: string, options?: { range?: R2Range }): Promise<(R2Object & { body: ReadableStream<Uint8Array>; arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> }) | null> {
    const row = this.checkedRow(key);
    if (!row) return null;
    const r = this.open(key, row, options);
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
  private open(key: string, row: Row, options?: { range?: R2Range }): { object: R2Object; length: number; readAll(): Uint8Array; stream(): ReadableStream<Uint8Array> } {
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

  /** The key checked, then its row. */
  private checkedRow(key: string): Row | undefined {
    checkKey(key);
    return this.row(key);
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
