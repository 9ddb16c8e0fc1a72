/**
 * A blob store on S3-compatible storage (see s3.ts for the guarantees). Objects are S3 objects with
 * R2's metadata in S3 user metadata; R2 etags are S3's ETags, so a conditional put can be made
 * conditional on the very version it checked (If-Match). Multipart uploads: s3-multipart.ts.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import {
  DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, PutObjectCommand,
  type GetObjectCommandOutput, type ListObjectsCommandOutput, type PutObjectCommandOutput,
} from "@aws-sdk/client-s3";
import type { StoredValue } from "./files.ts";
import { decodeMeta, encodeMeta, escapeKey, parseContentRange, rangeHeader, S3Layout, unquote } from "./s3-layout.ts";
import { isNotFound, isPreconditionFailed, type S3Backend } from "./s3.ts";
import { headRaw, keysUnder, mapLimit, settled, PARALLEL_HEADS, type Settle } from "./s3-io.ts";
import { S3Multipart } from "./s3-multipart.ts";
import { spool } from "./spool.ts";
import { bytesExceeded, ListingQuota, PostgresQuota, type QuotaKeeper, type SizeSource } from "./s3-quota.ts";
import {
  putAllowed, resolveRange,
  type BlobListing, type BlobMeta, type BlobQuota, type BlobRead, type BlobStore, type PutMeta, type R2Conditional, type R2ListOptions, type R2Range, type R2UploadedPart,
} from "./store.ts";

export class S3BlobStore implements BlobStore, SizeSource {
  private readonly s3: S3Backend;
  private readonly layout: S3Layout;
  private readonly quota: BlobQuota;
  /** Absent when the bucket has no quota: then nothing is counted. */
  private readonly keeper: QuotaKeeper | undefined;
  private readonly multipart: S3Multipart;

  constructor(s3: S3Backend, name: string, quota: BlobQuota) {
    this.s3 = s3;
    this.layout = new S3Layout(s3.prefix, name);
    this.quota = quota;
    const limited = Number.isFinite(quota.bytes) || Number.isFinite(quota.objects);
    this.keeper = !limited ? undefined
      : s3.quotaLedger ? new PostgresQuota(quota, this, s3.quotaLedger, `${s3.bucket}/${this.layout.root}`)
      : new ListingQuota(quota, this);
    this.multipart = new S3Multipart(s3, this.layout, quota, this.keeper, (key) => this.head(key));
  }

  async head(key: string): Promise<BlobMeta | undefined> {
    const head = await headRaw(this.s3, this.layout.objectKey(key));
    return head && decodeMeta(key, head);
  }

  /**
   * Checks `onlyIf` against the current object, then puts conditional on that object still being
   * current (If-Match its etag, or If-None-Match "*" when there was none): atomic where the server
   * honours those headers; where it ignores them, the HEAD alone decides (not atomic).
   */
  async put(key: string, value: StoredValue, meta: PutMeta, onlyIf?: R2Conditional): Promise<BlobMeta | null> {
    const current = onlyIf || this.keeper ? await this.head(key) : undefined;
    if (onlyIf && !putAllowed(current, onlyIf)) {
      if (value instanceof ReadableStream) await value.cancel().catch(() => {});
      return null;
    }
    const room = this.keeper ? await this.keeper.room(key, current) : Infinity;
    const body = await spool(value, room, () => this.tooBig(), this.s3.spoolDir);
    let settle: Settle | undefined;
    let stored = false;
    try {
      settle = await this.keeper?.reserve(key, body.size, current);
      const version = randomUUID().replaceAll("-", "");
      const uploaded = Date.now();
      const guard = !onlyIf ? {} : current ? { IfMatch: `"${current.etag}"` } : { IfNoneMatch: "*" };
      const res = await this.s3.send<PutObjectCommandOutput>(new PutObjectCommand({
        Bucket: this.s3.bucket, Key: this.layout.objectKey(key), Body: body.open(), ContentLength: body.size,
        ContentMD5: body.md5.toString("base64"), ContentType: meta.http.contentType, Metadata: encodeMeta(version, uploaded, meta), ...guard,
      }));
      stored = true;
      return { key, version, size: body.size, etag: unquote(res.ETag), uploaded, ...meta };
    } catch (error) {
      if (onlyIf && isPreconditionFailed(error)) return null;
      throw error;
    } finally {
      body.dispose();
      await settled(settle, stored);
    }
  }

  /** A GET (of the range asked for): the metadata and the bytes come from the same response, so they agree. */
  async read(key: string, range?: R2Range): Promise<BlobRead | undefined> {
    if (range && "suffix" in range) return this.readSuffix(key, range.suffix);
    const header = range ? rangeHeader(range) : undefined;
    if (header === "empty") return this.emptyRead(key, range!);
    return this.get(key, range, header);
  }

  /**
   * A suffix range as an explicit one, from a HEAD, the GET bound to the version HEADed (If-Match):
   * some servers (s3rver) misread "bytes=-N". A put in between fails the match, and we start again.
   */
  private async readSuffix(key: string, suffix: number): Promise<BlobRead | undefined> {
    for (let attempt = 0; ; attempt++) {
      const meta = await this.head(key);
      if (!meta) return undefined;
      const { offset, length } = resolveRange({ suffix }, meta.size);
      if (length === 0) return this.emptyRead(key, { suffix });
      try {
        return await this.get(key, { suffix }, `bytes=${offset}-${offset + length - 1}`, meta.etag);
      } catch (error) {
        if (!isPreconditionFailed(error) || attempt >= 3) throw error;
      }
    }
  }

  private async get(key: string, range: R2Range | undefined, header: string | undefined, etag?: string): Promise<BlobRead | undefined> {
    let res: GetObjectCommandOutput;
    try {
      res = await this.s3.send(new GetObjectCommand({ Bucket: this.s3.bucket, Key: this.layout.objectKey(key), Range: header, IfMatch: etag && `"${etag}"` }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      // A range starting past the end: R2 answers no bytes rather than an error.
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return this.emptyRead(key, range!);
      throw error;
    }
    const served = parseContentRange(res.ContentRange);
    const meta = decodeMeta(key, res, served?.size ?? res.ContentLength ?? 0);
    const body = res.Body as Readable & { transformToByteArray(): Promise<Uint8Array>; transformToWebStream(): ReadableStream<Uint8Array> };
    return {
      meta,
      offset: served?.offset ?? 0,
      length: served?.length ?? meta.size,
      bytes: () => body.transformToByteArray(),
      stream: () => body.transformToWebStream(),
      discard: () => body.destroy(),
    };
  }

  private async emptyRead(key: string, range: R2Range): Promise<BlobRead | undefined> {
    const meta = await this.head(key);
    if (!meta) return undefined;
    return {
      meta, offset: resolveRange(range, meta.size).offset, length: 0,
      bytes: async () => new Uint8Array(0), stream: () => new Response(new Uint8Array(0)).body!, discard: () => {},
    };
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.s3.bucket, Key: this.layout.objectKey(key) }));
    await this.keeper?.deleted(key);
  }

  /**
   * S3's listing on escaped keys (order, prefix and delimiter survive the escape). ListObjects (v1)
   * with a marker of our own, not v2's continuation tokens: every S3-compatible server has v1, and
   * s3rver cannot make v2 tokens on OpenSSL 3. The cursor is the last key or folded prefix answered
   * (a folded prefix followed by U+10FFFF, so the next page starts past every key under it).
   * ListObjects carries no user metadata, so each object listed is HEADed for its R2 metadata (a few
   * at a time); one deleted meanwhile is left out.
   */
  async list(options: R2ListOptions): Promise<BlobListing> {
    if (options.delimiter?.startsWith("~")) throw new TypeError('A bucket on S3 cannot list with a delimiter that starts with "~".');
    const limit = Math.min(Math.max(1, Math.trunc(options.limit ?? 1000)), 1000);
    const res = await this.s3.send<ListObjectsCommandOutput>(new ListObjectsCommand({
      Bucket: this.s3.bucket, Prefix: this.layout.objectKey(options.prefix ?? ""),
      Delimiter: options.delimiter ? escapeKey(options.delimiter) : undefined,
      MaxKeys: limit, Marker: options.cursor ? Buffer.from(options.cursor, "base64url").toString("utf8") : undefined,
    }));
    const contents = res.Contents ?? [];
    const folded = (res.CommonPrefixes ?? []).map((p) => p.Prefix!);
    const heads = await mapLimit(contents, PARALLEL_HEADS, (c) => this.head(this.layout.keyOf(c.Key!)));
    const lastKey = contents.at(-1)?.Key ?? "";
    const lastFolded = folded.length > 0 ? `${folded.at(-1)}\u{10FFFF}` : "";
    const marker = lastKey > lastFolded ? lastKey : lastFolded;
    return {
      objects: heads.filter((m): m is BlobMeta => m !== undefined),
      truncated: res.IsTruncated === true,
      ...(res.IsTruncated ? { cursor: Buffer.from(marker, "utf8").toString("base64url") } : {}),
      delimitedPrefixes: folded.map((p) => this.layout.keyOf(p)),
    };
  }

  // -- multipart (s3-multipart.ts) --

  createMultipartUpload(key: string, meta: PutMeta): Promise<string> {
    return this.multipart.create(key, meta);
  }

  uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<string> {
    return this.multipart.uploadPart(key, uploadId, partNumber, value);
  }

  abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    return this.multipart.abort(key, uploadId);
  }

  completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<BlobMeta> {
    return this.multipart.complete(key, uploadId, parts);
  }

  // -- quotas (s3-quota.ts): what the keepers read from S3 --

  async usage(): Promise<{ objects: number; bytes: number; sizes: Map<string, number> }> {
    const totals = { objects: 0, bytes: 0, sizes: new Map<string, number>() };
    for await (const page of keysUnder(this.s3, this.layout.objectsPrefix)) {
      for (const c of page) {
        totals.objects++;
        totals.bytes += c.Size ?? 0;
        totals.sizes.set(this.layout.keyOf(c.Key!), c.Size ?? 0);
      }
    }
    return totals;
  }

  async sizeOf(key: string): Promise<number | undefined> {
    return (await headRaw(this.s3, this.layout.objectKey(key)))?.ContentLength;
  }

  private tooBig(): Error {
    return bytesExceeded(this.quota);
  }

  close(): void {
    // The S3 client belongs to the backend, shared by its buckets: S3Backend.close() ends it.
  }
}

