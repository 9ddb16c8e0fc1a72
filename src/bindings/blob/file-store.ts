/**
 * The default blob store: object bytes are files named by the SHA-256 of the key, so no key,
 * whatever it contains, can name a path outside its bucket; an SQLite index keeps the metadata. A put
 * is durable when it returns: the file is fsynced and renamed into place before the index commits.
 * One process owns a bucket's files; quotas and conditional puts are checked and committed without
 * an await in between, so they are atomic within that process.
 */
import { createHash, randomUUID } from "node:crypto";
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { Readable } from "node:stream";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { QuotaExceededError } from "../../errors.ts";
import { concatenated, md5File, writeAside, type StoredValue } from "./files.ts";
import { fileNameFor, openStore } from "../storage/sqlite-file.ts";
import {
  NO_SUCH_UPLOAD, putAllowed, resolveRange,
  type BlobListing, type BlobMeta, type BlobQuota, type BlobRead, type BlobStore, type PutMeta, type R2Conditional, type R2ListOptions, type R2Range, type R2UploadedPart,
} from "./store.ts";

interface Row { key: string; version: string; size: number; etag: string; uploaded: number; http: string; custom: string }

export class FileBlobStore implements BlobStore {
  private readonly db: DatabaseSync;
  private readonly dir: string;
  private readonly quota: BlobQuota;

  constructor(name: string, dataDir: string, quota: BlobQuota) {
    this.db = openStore(dataDir, "blob", name);
    this.dir = join(resolve(dataDir, "blob"), `${fileNameFor(name)}.objects`);
    mkdirSync(this.dir, { recursive: true });
    this.db.exec(`CREATE TABLE IF NOT EXISTS objects (
      key TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
      uploaded INTEGER NOT NULL, http TEXT NOT NULL, custom TEXT NOT NULL) WITHOUT ROWID`);
    this.db.exec("CREATE TABLE IF NOT EXISTS uploads (upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, http TEXT NOT NULL, custom TEXT NOT NULL) WITHOUT ROWID");
    this.quota = quota;
  }

  async head(key: string): Promise<BlobMeta | undefined> {
    const row = this.row(key);
    return row && toMeta(row);
  }

  /** A stream is written to the file as it arrives, the quota checked on the way. */
  async put(key: string, value: StoredValue, meta: PutMeta, onlyIf?: R2Conditional): Promise<BlobMeta | null> {
    const old = this.row(key);
    // R2: a put whose condition fails stores nothing and answers null.
    if (onlyIf && !putAllowed(old && toMeta(old), onlyIf)) {
      if (value instanceof ReadableStream) await value.cancel().catch(() => {});
      return null;
    }
    const written = await writeAside(this.pathOf(key), value, this.roomFor(old), () => this.tooBig());
    return this.commit(key, written.tmp, written.size, written.md5.toString("hex"), meta);
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
  private commit(key: string, tmp: string, size: number, etag: string, meta: PutMeta): BlobMeta {
    renameSync(tmp, this.pathOf(key));
    const row: Row = {
      key, version: randomUUID().replaceAll("-", ""), size, etag,
      uploaded: Date.now(), http: JSON.stringify(meta.http), custom: JSON.stringify(meta.custom),
    };
    this.db.prepare("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET version = excluded.version, size = excluded.size, etag = excluded.etag, uploaded = excluded.uploaded, http = excluded.http, custom = excluded.custom")
      .run(row.key, row.version, row.size, row.etag, row.uploaded, row.http, row.custom);
    return toMeta(row);
  }

  // -- R2 multipart uploads: parts are files under <bucket>.uploads/<uploadId>/, joined on complete --

  async createMultipartUpload(key: string, meta: PutMeta): Promise<string> {
    const uploadId = randomUUID().replaceAll("-", "");
    mkdirSync(this.partsDir(uploadId), { recursive: true });
    this.db.prepare("INSERT INTO uploads VALUES (?, ?, ?, ?)").run(uploadId, key, JSON.stringify(meta.http), JSON.stringify(meta.custom));
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<string> {
    this.upload(key, uploadId);
    const path = join(this.partsDir(uploadId), String(partNumber));
    const written = await writeAside(path, value, this.quota.bytes, () => this.tooBig());
    renameSync(written.tmp, path);
    return written.md5.toString("hex");
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    this.upload(key, uploadId);
    this.db.prepare("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
    rmSync(this.partsDir(uploadId), { recursive: true, force: true });
  }

  /** Joins the listed parts, in part-number order, into the object; each must be the part uploaded. */
  async completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<BlobMeta> {
    const upload = this.upload(key, uploadId);
    const files: string[] = [];
    const md5s: Buffer[] = [];
    for (const part of parts) {
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
    const etag = `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${parts.length}`;
    const object = this.commit(key, written.tmp, written.size, etag, { http: JSON.parse(upload.http), custom: JSON.parse(upload.custom) });
    await this.abortMultipartUpload(key, uploadId);
    return object;
  }

  private upload(key: string, uploadId: string): { http: string; custom: string } {
    const row = this.db.prepare("SELECT http, custom FROM uploads WHERE upload_id = ? AND key = ?").get(String(uploadId), String(key)) as { http: string; custom: string } | undefined;
    if (!row) throw new TypeError(NO_SUCH_UPLOAD);
    return row;
  }

  private partsDir(uploadId: string): string {
    // uploadId is ours (hex), checked against the index before any path is made from it.
    return join(`${this.dir}.uploads`, uploadId.replace(/[^0-9a-f]/g, ""));
  }

  async delete(key: string): Promise<void> {
    this.db.prepare("DELETE FROM objects WHERE key = ?").run(key);
    rmSync(this.pathOf(key), { force: true });
  }

  /** R2 list: keys in order; with a delimiter, keys past it under the prefix fold into delimitedPrefixes. */
  async list(options: R2ListOptions): Promise<BlobListing> {
    const prefix = options.prefix ?? "";
    const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 1000)), 1000);
    let after = options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : "";
    const objects: BlobMeta[] = [];
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
        objects.push(toMeta(row));
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
  async read(key: string, range?: R2Range): Promise<BlobRead | undefined> {
    const row = this.row(key);
    if (!row) return undefined;
    const fd = openSync(this.pathOf(key), "r");
    const size = fstatSync(fd).size;
    const { offset, length } = range ? resolveRange(range, size) : { offset: 0, length: size };
    return {
      meta: toMeta(row),
      offset,
      length,
      bytes: async () => {
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
      discard: () => closeSync(fd),
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

function toMeta(row: Row): BlobMeta {
  return { key: row.key, version: row.version, size: row.size, etag: row.etag, uploaded: row.uploaded, http: JSON.parse(row.http), custom: JSON.parse(row.custom) };
}
