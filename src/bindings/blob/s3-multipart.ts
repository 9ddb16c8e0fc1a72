/**
 * R2 multipart uploads as S3 multipart uploads. Beside each, small records under the bucket's `u/`
 * prefix bind the upload to its key (an upload id alone could name another key) and keep each part's
 * etag and size, so any host can check and complete an upload another host began, with R2's errors,
 * also on servers without ListParts (s3rver). As on R2, AWS S3 and MinIO refuse parts other than
 * the last under 5 MiB (EntityTooSmall, at complete). Uploads never completed nor aborted keep their
 * parts and records until a lifecycle rule (AbortIncompleteMultipartUpload, expiry of `u/`) ends them.
 */
import { randomUUID } from "node:crypto";
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand,
  type CreateMultipartUploadCommandOutput, type UploadPartCommandOutput,
} from "@aws-sdk/client-s3";
import type { StoredValue } from "./files.ts";
import { encodeMeta, unquote, type S3Layout } from "./s3-layout.ts";
import { isNotFound, isUnsupported, type S3Backend } from "./s3.ts";
import { deletePrefix, headRaw, mapLimit, putRecord, settled, PARALLEL_HEADS } from "./s3-io.ts";
import { bytesExceeded, type QuotaKeeper } from "./s3-quota.ts";
import { spool } from "./spool.ts";
import { NO_SUCH_UPLOAD, type BlobMeta, type BlobQuota, type PutMeta, type R2UploadedPart } from "./store.ts";

export class S3Multipart {
  private readonly s3: S3Backend;
  private readonly layout: S3Layout;
  private readonly quota: BlobQuota;
  private readonly keeper: QuotaKeeper | undefined;
  private readonly head: (key: string) => Promise<BlobMeta | undefined>;

  constructor(s3: S3Backend, layout: S3Layout, quota: BlobQuota, keeper: QuotaKeeper | undefined, head: (key: string) => Promise<BlobMeta | undefined>) {
    this.s3 = s3;
    this.layout = layout;
    this.quota = quota;
    this.keeper = keeper;
    this.head = head;
  }

  async create(key: string, meta: PutMeta): Promise<string> {
    const res = await this.s3.send<CreateMultipartUploadCommandOutput>(new CreateMultipartUploadCommand({
      Bucket: this.s3.bucket, Key: this.layout.objectKey(key), ContentType: meta.http.contentType,
      Metadata: encodeMeta(randomUUID().replaceAll("-", ""), undefined, meta),
    }));
    const uploadId = res.UploadId!;
    await putRecord(this.s3, this.layout.uploadMarker(uploadId), { "mayfly-key": encodeURIComponent(key) });
    return uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<string> {
    await this.checkUpload(key, uploadId);
    const body = await spool(value, this.quota.bytes, () => bytesExceeded(this.quota), this.s3.spoolDir);
    try {
      const res = await this.s3.send<UploadPartCommandOutput>(new UploadPartCommand({
        Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId, PartNumber: partNumber,
        Body: body.open(), ContentLength: body.size, ContentMD5: body.md5.toString("base64"),
      }));
      const etag = unquote(res.ETag);
      await putRecord(this.s3, this.layout.partRecord(uploadId, partNumber), { "mayfly-etag": etag, "mayfly-size": String(body.size) });
      return etag;
    } catch (error) {
      if (isNotFound(error)) throw new TypeError(NO_SUCH_UPLOAD);
      throw error;
    } finally {
      body.dispose();
    }
  }

  /** Aborts the S3 upload (a server without AbortMultipartUpload keeps the parts until a lifecycle rule ends them) and drops the records. */
  async abort(key: string, uploadId: string): Promise<void> {
    await this.checkUpload(key, uploadId);
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId }));
    } catch (error) {
      if (!isUnsupported(error) && !isNotFound(error)) throw error;
    }
    await deletePrefix(this.s3, this.layout.uploadPrefix(uploadId));
  }

  /** Checks every part against its record (as the file store does), reserves the size, completes. */
  async complete(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<BlobMeta> {
    await this.checkUpload(key, uploadId);
    const records = await mapLimit(parts, PARALLEL_HEADS, (p) => headRaw(this.s3, this.layout.partRecord(uploadId, p.partNumber)));
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
      await this.s3.send(new CompleteMultipartUploadCommand({
        Bucket: this.s3.bucket, Key: this.layout.objectKey(key), UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })) },
      }));
      stored = true;
    } catch (error) {
      // Completed (or aborted) meanwhile, by another host.
      if (isNotFound(error)) throw new TypeError(NO_SUCH_UPLOAD);
      throw error;
    } finally {
      await settled(settle, stored);
    }
    await deletePrefix(this.s3, this.layout.uploadPrefix(uploadId));
    const meta = await this.head(key);
    if (!meta) throw new TypeError(`${key} was deleted as its upload completed.`);
    return meta;
  }

  /** An upload exists, and was made for this key. */
  private async checkUpload(key: string, uploadId: string): Promise<void> {
    const marker = await headRaw(this.s3, this.layout.uploadMarker(uploadId));
    if (!marker || decodeURIComponent(marker.Metadata?.["mayfly-key"] ?? "") !== key) throw new TypeError(NO_SUCH_UPLOAD);
  }
}
