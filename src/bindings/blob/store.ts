/**
 * The storage interface behind a blob bucket (as Miniflare separates the R2 surface from its
 * storage): the surface (index.ts) checks keys and arguments and shapes R2 objects; a store keeps
 * bytes and metadata, enforces quotas and conditional puts, and answers plain metadata records.
 * Two stores exist: files + an SQLite index (file-store.ts, the default) and S3-compatible object
 * storage (s3.ts).
 */
import type { StoredValue } from "./files.ts";

/** An object's metadata as a store keeps it. */
export interface BlobMeta {
  key: string;
  version: string;
  size: number;
  etag: string;
  /** Milliseconds since the epoch. */
  uploaded: number;
  http: Record<string, string>;
  custom: Record<string, string>;
}

export type R2Range = { offset: number; length?: number } | { offset?: number; length: number } | { suffix: number };
/** R2's conditional operations: etags (quoted or not, comma lists, "*") and upload times. */
export interface R2Conditional { etagMatches?: string; etagDoesNotMatch?: string; uploadedBefore?: Date; uploadedAfter?: Date }
export interface R2ListOptions { prefix?: string; delimiter?: string; cursor?: string; limit?: number }
export interface R2UploadedPart { partNumber: number; etag: string }

/** What a put records besides the bytes. */
export interface PutMeta { http: Record<string, string>; custom: Record<string, string> }

/** An object opened for reading: its metadata and the bytes of the range asked for (all of it by default). */
export interface BlobRead {
  meta: BlobMeta;
  offset: number;
  length: number;
  /** The bytes, whole (for small objects). */
  bytes(): Promise<Uint8Array>;
  /** The bytes as they are read (for large ones). */
  stream(): ReadableStream<Uint8Array>;
  /** Releases the object without reading it (a failed onlyIf). */
  discard(): void;
}

export interface BlobListing { objects: BlobMeta[]; truncated: boolean; cursor?: string; delimitedPrefixes: string[] }

export interface BlobStore {
  head(key: string): Promise<BlobMeta | undefined>;
  read(key: string, range?: R2Range): Promise<BlobRead | undefined>;
  /** Stores an object unless `onlyIf` fails (then null); quota failures throw QuotaExceededError. */
  put(key: string, value: StoredValue, meta: PutMeta, onlyIf?: R2Conditional): Promise<BlobMeta | null>;
  delete(key: string): Promise<void>;
  list(options: R2ListOptions): Promise<BlobListing>;
  createMultipartUpload(key: string, meta: PutMeta): Promise<string>;
  /** Stores one part (sent again, it replaces the earlier one); answers its etag. */
  uploadPart(key: string, uploadId: string, partNumber: number, value: StoredValue): Promise<string>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  completeMultipartUpload(key: string, uploadId: string, parts: R2UploadedPart[]): Promise<BlobMeta>;
  close(): void | Promise<void>;
}

/** Where a bucket's store comes from: `blobBucket({ name, backend })`. */
export interface BlobBackend {
  openBlobStore(name: string, options: { quota: BlobQuota }): BlobStore;
}

export interface BlobQuota { bytes: number; objects: number }

export const NO_SUCH_UPLOAD = "No such multipart upload (it was completed, aborted, or never made for this key).";

/**
 * Whether a conditional holds for an object (RFC 9110 §13.2.2 order: an etag condition, when given,
 * decides instead of the matching time condition).
 */
export function conditionHolds(meta: BlobMeta, c: R2Conditional): boolean {
  const etags = (v: string) => v.split(",").map((e) => e.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1"));
  const matches = (v: string) => etags(v).some((e) => e === "*" || e === meta.etag);
  if (c.etagMatches !== undefined) {
    if (!matches(c.etagMatches)) return false;
  } else if (c.uploadedBefore !== undefined && !(meta.uploaded < new Date(c.uploadedBefore).getTime())) return false;
  if (c.etagDoesNotMatch !== undefined) {
    if (matches(c.etagDoesNotMatch)) return false;
  } else if (c.uploadedAfter !== undefined && !(meta.uploaded > new Date(c.uploadedAfter).getTime())) return false;
  return true;
}

/** Whether a put conditioned on `c` may replace `current` (absent: only conditions a missing object can meet). */
export function putAllowed(current: BlobMeta | undefined, c: R2Conditional): boolean {
  return current ? conditionHolds(current, c) : c.etagMatches === undefined && c.uploadedBefore === undefined;
}

/** A range clamped to an object of `size` bytes. */
export function resolveRange(range: R2Range, size: number): { offset: number; length: number } {
  if ("suffix" in range) {
    const length = Math.min(Math.max(0, range.suffix), size);
    return { offset: size - length, length };
  }
  const offset = Math.min(Math.max(0, range.offset ?? 0), size);
  const length = Math.min(Math.max(0, range.length ?? size - offset), size - offset);
  return { offset, length };
}

export function checkPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new RangeError("partNumber must be an integer from 1 to 10000.");
}
