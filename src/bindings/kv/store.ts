/**
 * What a KV namespace needs from its storage, apart from the Cloudflare-shaped surface (index.ts):
 * rows by key, an atomic quota-checked write, and a page of keys in byte order. Two implementations:
 * one SQLite file per namespace (sqlite-store.ts) and shared PostgreSQL tables (postgres-store.ts).
 */

export interface KvRow { value: Uint8Array; metadata: string | null; expiration: number | null }
export interface KvListRow { key: string; metadata: string | null; expiration: number | null }
export interface KvQuota { bytes: number; keys: number }

/** A write to make, all of it or nothing: the quota is checked in the same transaction as the write. */
export interface KvWrite { key: string; value: Uint8Array; metadata: string | null; expiration: number | null }

export interface KvStore {
  /** The row for `key`, expired or not (the surface decides what an expired row means). */
  get(key: string): Promise<KvRow | undefined>;
  /**
   * Purges expired rows, checks the quota against the totals with this write in place, and writes;
   * QuotaExceededError (and nothing written) past a limit. Two writers (two hosts) never both pass.
   */
  put(write: KvWrite, quota: KvQuota): Promise<void>;
  delete(key: string): Promise<void>;
  /** Up to `limit` live keys after `after` (byte order) starting with `prefix`. */
  list(after: string, prefix: string, now: number, limit: number): Promise<KvListRow[]>;
  close(): Promise<void>;
}

/** Bytes a row counts for under the byte quota: key, value and metadata. */
export function rowSize(w: { key: string; value: Uint8Array; metadata: string | null }): number {
  return Buffer.byteLength(w.key) + w.value.byteLength + (w.metadata === null ? 0 : Buffer.byteLength(w.metadata));
}
