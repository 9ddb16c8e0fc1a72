/**
 * S3-compatible storage for blob buckets: `blobBucket({ name, backend: s3Backend({ ... }) })`.
 * One backend (one S3 client, one S3 bucket) serves any number of mayfly buckets, each under its
 * own key prefix (s3-layout.ts), so every host pointed at the same S3 bucket sees the same objects.
 *
 * Guarantees and their limits (see s3-store.ts for the details):
 * - Durability: a put, or a multipart complete, returns after the server acknowledged it; AWS S3
 *   and MinIO (erasure-coded) have stored it redundantly by then.
 * - Conditional puts are atomic only where the server honours `If-Match` / `If-None-Match` on
 *   PutObject and CompleteMultipartUpload (AWS S3, MinIO); elsewhere (s3rver ignores them) they are
 *   a HEAD-then-PUT check, correct for one writer at a time, not atomic.
 * - Quotas: with `quotaLedger` (a PostgresBackend), a ledger in PostgreSQL decides every put under a
 *   lock, so a quota holds across hosts; without it, usage is summed from a listing of the bucket's
 *   prefix before each put, so concurrent puts on several hosts can together overshoot (s3-quota.ts).
 * - The S3 server unreachable (refused, reset, timed out, 5xx): BackendUnavailableError. The SDK
 *   retries requests (maxAttempts) except those whose body is a stream (a spooled value): a failed
 *   upload of one surfaces at once, and the caller puts again.
 */
import { tmpdir } from "node:os";
import { HeadBucketCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { BackendUnavailableError, MayflyError } from "../../errors.ts";
import type { BlobBackend, BlobQuota, BlobStore } from "./store.ts";
import type { PostgresBackend } from "../storage/postgres.ts";
import { S3BlobStore } from "./s3-store.ts";

export interface S3BackendOptions {
  /** e.g. "http://minio:9000"; omit for AWS S3. */
  endpoint?: string;
  region: string;
  /** The S3 bucket, shared by every mayfly bucket on this backend; it must exist. */
  bucket: string;
  /** Omit to use the SDK's default chain (environment, instance or pod role: IRSA on EKS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Path-style URLs (http://host/bucket/key): needed by MinIO and s3rver. */
  forcePathStyle?: boolean;
  /** Prepended to every key this backend writes (e.g. "mayfly/"), to share an S3 bucket with others. */
  prefix?: string;
  /** Where streamed values are spooled to find their length before upload (default: the OS temp dir). */
  spoolDir?: string;
  /** Attempts per request, retries included (default 3). */
  maxAttempts?: number;
  /** How long to wait for a connection to the server (default 5 s). */
  connectionTimeoutMs?: number;
  /**
   * Where quotas are kept: with PostgreSQL, a ledger every host shares, so a quota holds across
   * hosts; without, usage is summed from a listing before each put (best-effort across hosts).
   */
  quotaLedger?: PostgresBackend;
}

export class S3Backend implements BlobBackend {
  readonly kind = "s3" as const;
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly spoolDir: string;
  readonly quotaLedger: PostgresBackend | undefined;

  constructor(options: S3BackendOptions) {
    const config: S3ClientConfig = {
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: options.maxAttempts ?? 3,
      // Checksums only when an operation needs them: the default streams aws-chunked bodies with
      // trailing checksums, which several S3-compatible servers do not accept. Content-MD5 is sent instead.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 5_000 },
    };
    this.client = new S3Client(config);
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? "";
    this.spoolDir = options.spoolDir ?? tmpdir();
    this.quotaLedger = options.quotaLedger;
  }

  openBlobStore(name: string, options: { quota: BlobQuota }): BlobStore {
    return new S3BlobStore(this, name, options.quota);
  }

  /** Sends a command; a server that cannot be reached becomes BackendUnavailableError. */
  async send<T = unknown>(command: object): Promise<T> {
    try {
      return (await this.client.send(command as never)) as T;
    } catch (error) {
      if (isUnavailable(error)) throw new BackendUnavailableError(`S3 is unavailable: ${(error as Error).message || (error as Error).name}`, { cause: error });
      throw error;
    }
  }

  /** Whether the server answers for the bucket now (readiness): HeadBucket, bounded by `timeoutMs`. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    const timer = new Promise<false>((resolve) => setTimeout(resolve, timeoutMs, false).unref());
    const probe = this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) }).then(() => true, () => false);
    return Promise.race([probe, timer]);
  }

  close(): void {
    this.client.destroy();
  }
}

export function s3Backend(options: S3BackendOptions): S3Backend {
  return new S3Backend(options);
}

const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;

function isUnavailable(error: unknown): boolean {
  if (error instanceof MayflyError) return false;
  const e = error as { code?: string; name?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown };
  if (typeof e?.code === "string" && NETWORK_CODES.test(e.code)) return true;
  if (e?.name === "TimeoutError" || e?.name === "RequestTimeout") return true;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500 && status !== 501) return true;
  // Errors from the HTTP layer (AggregateError of refused addresses) carry the code on a cause.
  const inner = (e as { errors?: unknown[] })?.errors ?? (e?.cause ? [e.cause] : []);
  return inner.some(isUnavailable);
}

export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}

/** A conditional write the server refused (412), or a conflicting concurrent one (409). */
export function isPreconditionFailed(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "PreconditionFailed" || e?.name === "ConditionalRequestConflict" || e?.$metadata?.httpStatusCode === 412;
}

/** The server does not implement an operation (s3rver: AbortMultipartUpload). */
export function isUnsupported(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotImplemented" || e?.name === "MethodNotAllowed" || e?.$metadata?.httpStatusCode === 501 || e?.$metadata?.httpStatusCode === 405;
}
