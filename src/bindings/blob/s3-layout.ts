/**
 * How blob buckets are laid out in one shared S3 bucket, and how R2 metadata rides in S3 object
 * metadata. Every mayfly bucket owns the key prefix `<prefix><name>/` (the name escaped as for the
 * file store, so it holds no "/" and no name is a prefix of another's); objects live under `o/`,
 * multipart bookkeeping under `u/`. An R2 key is appended after `o/`, escaped only so that no "."
 * or ".." path segment reaches the server: a URL normaliser or a file-system-backed server (s3rver,
 * MinIO in FS mode) could otherwise resolve "../" out of the prefix. The escape inserts "~" after
 * every ".", which keeps byte order, prefixes and delimiters (see escapeKey), so S3's own listing,
 * prefix and delimiter work on escaped keys.
 */
import { fileNameFor } from "../storage/sqlite-file.ts";
import type { BlobMeta, PutMeta } from "./store.ts";

export class S3Layout {
  readonly root: string;

  constructor(prefix: string, name: string) {
    this.root = `${prefix}${fileNameFor(name)}/`;
  }

  objectKey(key: string): string {
    return `${this.root}o/${escapeKey(key)}`;
  }

  get objectsPrefix(): string {
    return `${this.root}o/`;
  }

  /** The R2 key (or folded prefix) of an S3 key under the objects prefix. */
  keyOf(s3Key: string): string {
    return unescapeKey(s3Key.slice(this.objectsPrefix.length));
  }

  /** Where an upload's records live; the id is the server's, so it is encoded, never trusted as a path. */
  uploadPrefix(uploadId: string): string {
    return `${this.root}u/${Buffer.from(uploadId, "utf8").toString("base64url")}/`;
  }

  uploadMarker(uploadId: string): string {
    return `${this.uploadPrefix(uploadId)}upload`;
  }

  partRecord(uploadId: string, partNumber: number): string {
    return `${this.uploadPrefix(uploadId)}part-${String(partNumber).padStart(5, "0")}`;
  }
}

/**
 * "." becomes ".~". Order-preserving: two keys first differ at a character; if neither is ".", the
 * escaped keys differ there too; if one is ".", it still compares against the other's character
 * first. Prefixes and concatenation are preserved, so an escaped delimiter finds the same places in
 * an escaped key, except a delimiter starting with "~" (it would match an inserted "~"): refused.
 */
export function escapeKey(key: string): string {
  return key.replaceAll(".", ".~");
}

export function unescapeKey(escaped: string): string {
  return escaped.replaceAll(".~", ".");
}

/**
 * R2 metadata as S3 user metadata: ASCII header values, lower-case names (S3 lower-cases them), R2's
 * case-sensitive custom keys kept inside one JSON value. AWS S3 caps user metadata at 2 KB in all, so
 * there a put with more customMetadata than that fails (MetadataTooLarge).
 */
export function encodeMeta(version: string, uploaded: number | undefined, meta: PutMeta): Record<string, string> {
  return {
    "mayfly-version": version,
    ...(uploaded === undefined ? {} : { "mayfly-uploaded": String(uploaded) }),
    "mayfly-http": encodeURIComponent(JSON.stringify(meta.http)),
    "mayfly-custom": encodeURIComponent(JSON.stringify(meta.custom)),
  };
}

export interface S3ObjectHead { ContentLength?: number; ETag?: string; LastModified?: Date; Metadata?: Record<string, string> }

export function decodeMeta(key: string, head: S3ObjectHead, size = head.ContentLength ?? 0): BlobMeta {
  const m = head.Metadata ?? {};
  const json = (v: string | undefined) => (v ? JSON.parse(decodeURIComponent(v)) : {});
  return {
    key,
    // An object written by something other than mayfly has no version of ours: its etag stands in.
    version: m["mayfly-version"] ?? unquote(head.ETag),
    size,
    etag: unquote(head.ETag),
    // A multipart object's upload time is the server's (seconds), since its metadata was fixed at create.
    uploaded: Number(m["mayfly-uploaded"]) || (head.LastModified?.getTime() ?? 0),
    http: json(m["mayfly-http"]),
    custom: json(m["mayfly-custom"]),
  };
}

export function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** An R2 range as an HTTP Range header; "empty" when it asks for no bytes (HTTP cannot say so). */
export function rangeHeader(range: { offset?: number; length?: number; suffix?: number }): string | "empty" {
  if (range.suffix !== undefined) return range.suffix <= 0 ? "empty" : `bytes=-${Math.trunc(range.suffix)}`;
  const offset = Math.max(0, Math.trunc(range.offset ?? 0));
  if (range.length === undefined) return `bytes=${offset}-`;
  return range.length <= 0 ? "empty" : `bytes=${offset}-${offset + Math.trunc(range.length) - 1}`;
}

/** "bytes 6-10/11" → offset, length and the object's size. */
export function parseContentRange(value: string | undefined): { offset: number; length: number; size: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value ?? "");
  return m ? { offset: Number(m[1]), length: Number(m[2]) - Number(m[1]) + 1, size: Number(m[3]) } : undefined;
}
