/**
 * A blob store on S3-compatible storage (see s3.ts for the guarantees). Objects are S3 objects with
 * R2's metadata in S3 user metadata; R2 etags are S3's ETags, so a conditional put can be made
 * conditional on the very version it checked (If-Match). Multipart uploads are S3 multipart uploads;
 * beside each, small records under the bucket's `u/` prefix bind the upload to its key and keep
 * each part's etag and size, so any host can check and complete an upload that another host began,
 * with R2's errors, on servers that lack ListParts (s3rver).
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsCommand, PutObjectCommand, UploadPartCommand,
  type CompleteMultipartUploadCommandOutput, type CreateMultipartUploadCommandOutput, type GetObjectCommandOutput,
  type HeadObjectCommandOutput, type ListObjectsCommandOutput, type PutObjectCommandOutput, type UploadPartCommandOutput,
} from "@aws-sdk/client-s3";
import type { StoredValue } from "./files.ts";
import { decodeMeta, encodeMeta, escapeKey, parseContentRange, rangeHeader, S3Layout, unquote } from "./s3-layout.ts";
import { isNotFound, isPreconditionFailed, isUnsupported, type S3Backend } from "./s3.ts";
import { spool } from "./spool.ts";
import { bytesExceeded, ListingQuota, PostgresQuota, type QuotaKeeper, type SizeSource } from "./s3-quota.ts";
import {
  NO_SUCH_UPLOAD, putAllowed, resolveRange,
  type BlobListing, type BlobMeta, type BlobQuota, type BlobRead, type BlobStore, type PutMeta, type R2Conditional, type R2ListOptions, type R2Range, type R2UploadedPart,
} from "./store.ts";

/** HEADs in flight at once when a listing or a complete() needs one per object or part. */
const PARALLEL_HEADS = 8;

export class S3BlobStore implements BlobStore, SizeSource {
  private readonly s3: S3Backend;
  private readonly layout: S3Layout;
  private readonly quota: BlobQuota;
  /** Absent when the bucket has no quota: then nothing is counted. */
  private readonly keeper: QuotaKeeper | undefined;

  constructor(s3: S3Backend, name: string, quota: BlobQuota) {
    this.s3 = s3;
    this.layout = new S3Layout(s3.prefix, name);
    this.quota = quota;
    const limited = Number.isFinite(quota.bytes) || Number.isFinite(quota.objects);
    this.keeper = !limited ? undefined
      : s3.quotaLedger ? new PostgresQuota(quota, this, s3.quotaLedger, `${s3.bucket}/${this.layout.root}`)
      : new ListingQuota(quota, this);
  }

  async head(key: string): Promise<BlobMeta | undefined> {
    const head = await this.headRaw(this.layout.objectKey(key));
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

  /** Every S3 key under `prefix`, a page (up to 1,000) at a time. */
  private async *keysUnder(prefix: string): AsyncGenerator<{ Key?: string; Size?: number }[]> {
    for (let marker: string | undefined; ;) {
      const res = await this.s3.send<ListObjectsCommandOutput>(new ListObjectsCommand({ Bucket: this.s3.bucket, Prefix: prefix, Marker: marker }));
      const contents = res.Contents ?? [];
      yield contents;
      if (!res.IsTruncated || contents.length === 0) return;
      marker = contents.at(-1)!.Key;
    }
  }

  // -- multipart: S3 multipart uploads, with records under u/<upload>/ --

  async createMultipartUpload(key: string, meta: PutMeta): Promise<string> {
    const res = await this.s3.send<CreateMultipartUploadCommandOutput>(new CreateMultipartUploadCommand({
      Bucket: this.s3.bucket, Key: this.layout.objectKey(key), ContentType: meta.http.contentType,
      Metadata: encodeMeta(randomUUID().replaceAll("-", ""), undefined, meta),
    }));
    const uploadId = res.UploadId!;
    await this.putRecord(this.layout.uploadMarker(uploadId), { "mayfly-key": encodeURIComponent(key) });
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<string> {
    await this.checkUpload(key, uploadId);
    const body = await spool(value, this.quota.bytes, () => this.tooBig(), this.s3.spoolDir);
    try {
      const res = await this.s3.send<UploadPartCommandOutput>(new UploadPartCommand({
        Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId, PartNumber: partNumber,
        Body: body.open(), ContentLength: body.size, ContentMD5: body.md5.toString("base64"),
      }));
      const etag = unquote(res.ETag);
      await this.putRecord(this.layout.partRecord(uploadId, partNumber), { "mayfly-etag": etag, "mayfly-size": String(body.size) });
      return etag;
    } catch (error) {
      if (isNotFound(error)) throw new TypeError(NO_SUCH_UPLOAD);
      throw error;
    } finally {
      body.dispose();
    }
  }

  /** Aborts the S3 upload (a server without AbortMultipartUpload keeps the parts until a lifecycle rule ends them) and drops the records. */
  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.checkUpload(key, uploadId);
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId }));
    } catch (error) {
      if (!isUnsupported(error) && !isNotFound(error)) throw error;
    }
    await this.deletePrefix(this.layout.uploadPrefix(uploadId));
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<BlobMeta> {
    await this.checkUpload(key, uploadId);
    const records = await mapLimit(parts, PARALLEL_HEADS, (p) => this.headRaw(this.layout.partRecord(uploadId, p.partNumber)));
    let size = 0;
    parts.forEach((part, i) => {
      const record = records[i]?.Metadata;
      if (!record) throw new TypeError(`Part ${part.partNumber} was not uploaded.`);
      if (record["mayfly-etag"] !== part.etag) throw new TypeError(`Part ${part.partNumber} does not match its etag.`);
      size += Number(record["mayfly-size"]);
    });
    const settle = await this.keeper?.reserve(key, size, await this.head(key));
    let stored = false;
    try {
      await this.s3.send<CompleteMultipartUploadCommandOutput>(new CompleteMultipartUploadCommand({
        Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
      }));
      stored = true;
    } finally {
      await settled(settle, stored);
    }
    await this.deletePrefix(this.layout.uploadPrefix(uploadId));
    const meta = await this.head(key);
    if (!meta) throw new TypeError(`${key} was deleted as its upload completed.`);
    return meta;
  }

  /** An upload exists, and was made for this key (the server's id alone could name another key). */
  private async checkUpload(key: string, uploadId: string): Promise<void> {
    const marker = await this.headRaw(this.layout.uploadMarker(uploadId));
    if (!marker || decodeURIComponent(marker.Metadata?.["mayfly-key"] ?? "") !== key) throw new TypeError(NO_SUCH_UPLOAD);
  }

  private async putRecord(s3Key: string, metadata: Record<string, string>): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.s3.bucket, Key: s3Key, Body: new Uint8Array(0), ContentLength: 0, Metadata: metadata }));
  }

  private async deletePrefix(prefix: string): Promise<void> {
    for await (const page of this.keysUnder(prefix)) {
      if (page.length > 0) await this.s3.send(new DeleteObjectsCommand({ Bucket: this.s3.bucket, Delete: { Objects: page.map((c) => ({ Key: c.Key! })), Quiet: true } }));
    }
  }

  private async headRaw(s3Key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.s3.send<HeadObjectCommandOutput>(new HeadObjectCommand({ Bucket: this.s3.bucket, Key: s3Key }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  // -- quotas (s3-quota.ts): what the keepers read from S3 --

  async usage(): Promise<{ objects: number; bytes: number; sizes: Map<string, number> }> {
    const totals = { objects: 0, bytes: 0, sizes: new Map<string, number>() };
    for await (const page of this.keysUnder(this.layout.objectsPrefix)) {
      for (const c of page) {
        totals.objects++;
        totals.bytes += c.Size ?? 0;
        totals.sizes.set(this.layout.keyOf(c.Key!), c.Size ?? 0);
      }
    }
    return totals;
  }

  async sizeOf(key: string): Promise<number | undefined> {
    return (await this.headRaw(this.layout.objectKey(key)))?.ContentLength;
  }

  private tooBig(): Error {
    return bytesExceeded(this.quota);
  }

  close(): void {
    // The S3 client belongs to the backend, shared by its buckets: S3Backend.close() ends it.
  }
}

type Settle = (stored: boolean) => Promise<void>;

/**
 * Ends a quota reservation. Its failure (the ledger unreachable) must not fail a put S3 has stored:
 * the reservation then stays counted, an over-count the quota errs safely on.
 */
async function settled(settle: Settle | undefined, stored: boolean): Promise<void> {
  await settle?.(stored).catch(() => {});
}

/** `fn` over `items`, at most `limit` at once, results in order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
