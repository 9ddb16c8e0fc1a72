/**
 * The S3 requests the blob store's parts share: a HEAD that answers undefined for a missing object,
 * paged listing (ListObjects v1 with our own markers: every S3-compatible server has it, and s3rver
 * cannot make v2's continuation tokens on OpenSSL 3), prefix deletion, empty record objects.
 */
import { DeleteObjectsCommand, HeadObjectCommand, ListObjectsCommand, PutObjectCommand, type HeadObjectCommandOutput, type ListObjectsCommandOutput } from "@aws-sdk/client-s3";
import { isNotFound, type S3Backend } from "./s3.ts";

/** HEADs in flight at once when a listing or a complete() needs one per object or part. */
export const PARALLEL_HEADS = 8;

export async function headRaw(s3: S3Backend, s3Key: string): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await s3.send<HeadObjectCommandOutput>(new HeadObjectCommand({ Bucket: s3.bucket, Key: s3Key }));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Every S3 key under `prefix`, a page (up to 1,000) at a time. */
export async function* keysUnder(s3: S3Backend, prefix: string): AsyncGenerator<{ Key?: string; Size?: number }[]> {
  for (let marker: string | undefined; ;) {
    const res = await s3.send<ListObjectsCommandOutput>(new ListObjectsCommand({ Bucket: s3.bucket, Prefix: prefix, Marker: marker }));
    const contents = res.Contents ?? [];
    yield contents;
    if (!res.IsTruncated || contents.length === 0) return;
    marker = contents.at(-1)!.Key;
  }
}

export async function deletePrefix(s3: S3Backend, prefix: string): Promise<void> {
  for await (const page of keysUnder(s3, prefix)) {
    if (page.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: page.map((c) => ({ Key: c.Key! })), Quiet: true } }));
  }
}

/** An empty object whose metadata is the record. */
export async function putRecord(s3: S3Backend, s3Key: string, metadata: Record<string, string>): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3Key, Body: new Uint8Array(0), ContentLength: 0, Metadata: metadata }));
}

export type Settle = (stored: boolean) => Promise<void>;

/**
 * Ends a quota reservation. Its failure (the ledger unreachable) must not fail a put S3 has stored:
 * the reservation then stays counted, an over-count the quota errs safely on.
 */
export async function settled(settle: Settle | undefined, stored: boolean): Promise<void> {
  await settle?.(stored).catch(() => {});
}

/** `fn` over `items`, at most `limit` at once, results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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
