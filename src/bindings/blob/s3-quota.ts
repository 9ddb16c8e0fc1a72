/**
 * Quotas for blob buckets on S3. An S3 bucket has no transactions, so there are two keepers:
 *
 * - ListingQuota (no PostgreSQL given): usage is summed from a listing of the bucket's objects before
 *   each put. Exact for one writer; several hosts writing at once can together overshoot. Best-effort.
 * - PostgresQuota (`s3Backend({ quotaLedger: postgresBackend })`): a ledger in PostgreSQL — per bucket
 *   its object count and bytes, per key its size and the puts in flight. A put reserves its size in
 *   a transaction that locks the bucket's usage row (so hosts decide one at a time, and the quota
 *   holds across hosts), uploads, then settles. While a key has puts in flight it is counted at the
 *   largest of its sizes; the last settle to finish re-reads the key's true size from S3 under the
 *   key's row lock. A host that dies mid-put leaves its reservation counted (an over-count: the quota
 *   errs on the safe side). The ledger of a bucket is seeded from a listing the first time it is used.
 */
import { QuotaExceededError } from "../../errors.ts";
import type { PostgresBackend, Queryable } from "../storage/postgres.ts";
import type { BlobMeta, BlobQuota } from "./store.ts";

export interface QuotaKeeper {
  /**
   * Throws if a new key would pass the object quota; answers the bytes a new version of `key` may
   * take (an estimate, to stop a streamed value early).
   */
  room(key: string, current: BlobMeta | undefined): Promise<number>;
  /** Reserves `size` bytes for a new version of `key` (QuotaExceededError if it does not fit); settle after the write. */
  reserve(key: string, size: number, current: BlobMeta | undefined): Promise<(stored: boolean) => Promise<void>>;
  /** After a delete. */
  deleted(key: string): Promise<void>;
}

/** What the keepers need of the store: its objects' sizes, from S3. */
export interface SizeSource {
  usage(): Promise<{ objects: number; bytes: number; sizes: Map<string, number> }>;
  sizeOf(key: string): Promise<number | undefined>;
}

export function objectsExceeded(quota: BlobQuota): QuotaExceededError {
  return new QuotaExceededError(`Bucket is limited to ${quota.objects} objects.`);
}

export function bytesExceeded(quota: BlobQuota): QuotaExceededError {
  return new QuotaExceededError(`Bucket is limited to ${quota.bytes} bytes.`);
}

export class ListingQuota implements QuotaKeeper {
  private readonly quota: BlobQuota;
  private readonly source: SizeSource;

  constructor(quota: BlobQuota, source: SizeSource) {
    this.quota = quota;
    this.source = source;
  }

  async room(_key: string, current: BlobMeta | undefined): Promise<number> {
    const totals = await this.source.usage();
    if (!current && totals.objects + 1 > this.quota.objects) throw objectsExceeded(this.quota);
    return this.quota.bytes - (totals.bytes - (current?.size ?? 0));
  }

  async reserve(key: string, size: number, current: BlobMeta | undefined): Promise<(stored: boolean) => Promise<void>> {
    if (size > (await this.room(key, current))) throw bytesExceeded(this.quota);
    return async () => {};
  }

  async deleted(): Promise<void> {}
}

const LEDGER_DDL = `
CREATE TABLE IF NOT EXISTS mayfly_blob_usage (bucket TEXT PRIMARY KEY, objects BIGINT NOT NULL, bytes BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS mayfly_blob_sizes (
  bucket TEXT NOT NULL, key TEXT NOT NULL, size BIGINT NOT NULL, in_flight INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, key));`;

export class PostgresQuota implements QuotaKeeper {
  private readonly quota: BlobQuota;
  private readonly source: SizeSource;
  private readonly pg: PostgresBackend;
  /** The S3 bucket and this bucket's prefix: unique per mayfly bucket. */
  private readonly bucket: string;
  private seeded: Promise<void> | undefined;

  constructor(quota: BlobQuota, source: SizeSource, pg: PostgresBackend, bucket: string) {
    this.quota = quota;
    this.source = source;
    this.pg = pg;
    this.bucket = bucket;
  }

  async room(key: string, current: BlobMeta | undefined): Promise<number> {
    await this.seed();
    const { rows } = await this.pg.query<{ objects: string; bytes: string; size: string | null }>(
      "SELECT u.objects, u.bytes, s.size FROM mayfly_blob_usage u LEFT JOIN mayfly_blob_sizes s ON s.bucket = u.bucket AND s.key = $2 WHERE u.bucket = $1", [this.bucket, key]);
    const row = rows[0]!;
    const old = row.size === null ? undefined : Number(row.size);
    if (!current && old === undefined && Number(row.objects) + 1 > this.quota.objects) throw objectsExceeded(this.quota);
    return this.quota.bytes - (Number(row.bytes) - (old ?? 0));
  }

  async reserve(key: string, size: number): Promise<(stored: boolean) => Promise<void>> {
    await this.seed();
    await this.pg.transaction(async (c) => {
      const usage = await this.lockUsage(c);
      const old = await this.lockKey(c, key);
      const objects = usage.objects + (old ? 0 : 1);
      if (!old && objects > this.quota.objects) throw objectsExceeded(this.quota);
      if (usage.bytes - (old?.size ?? 0) + size > this.quota.bytes) throw bytesExceeded(this.quota);
      // Counted at the larger size until settled: a crash between here and the settle over-counts.
      const counted = Math.max(old?.size ?? 0, size);
      await c.query("INSERT INTO mayfly_blob_sizes VALUES ($1, $2, $3, 1) ON CONFLICT (bucket, key) DO UPDATE SET size = $3, in_flight = mayfly_blob_sizes.in_flight + 1", [this.bucket, key, counted]);
      await c.query("UPDATE mayfly_blob_usage SET objects = $2, bytes = $3 WHERE bucket = $1", [this.bucket, objects, usage.bytes - (old?.size ?? 0) + counted]);
    });
    return () => this.settle(key);
  }

  /**
   * One put of `key` is over (stored or not). The last one in flight sets the key's size to what S3
   * holds, read while the key's row is locked, so no other put of it can start meanwhile.
   */
  private async settle(key: string): Promise<void> {
    await this.pg.transaction(async (c) => {
      const usage = await this.lockUsage(c);
      const row = await this.lockKey(c, key);
      if (!row) return;
      if (row.inFlight > 1) {
        await c.query("UPDATE mayfly_blob_sizes SET in_flight = in_flight - 1 WHERE bucket = $1 AND key = $2", [this.bucket, key]);
        return;
      }
      await this.setTrueSize(c, usage, key, row.size);
    });
  }

  async deleted(key: string): Promise<void> {
    await this.seed();
    await this.pg.transaction(async (c) => {
      const usage = await this.lockUsage(c);
      const row = await this.lockKey(c, key);
      // A put in flight settles the key itself.
      if (row && row.inFlight === 0) await this.setTrueSize(c, usage, key, row.size);
    });
  }

  private async setTrueSize(c: Queryable, usage: { objects: number; bytes: number }, key: string, counted: number): Promise<void> {
    const size = await this.source.sizeOf(key);
    if (size === undefined) {
      await c.query("DELETE FROM mayfly_blob_sizes WHERE bucket = $1 AND key = $2", [this.bucket, key]);
      await c.query("UPDATE mayfly_blob_usage SET objects = $2, bytes = $3 WHERE bucket = $1", [this.bucket, usage.objects - 1, usage.bytes - counted]);
    } else {
      await c.query("UPDATE mayfly_blob_sizes SET size = $3, in_flight = 0 WHERE bucket = $1 AND key = $2", [this.bucket, key, size]);
      await c.query("UPDATE mayfly_blob_usage SET bytes = $2 WHERE bucket = $1", [this.bucket, usage.bytes - counted + size]);
    }
  }

  private async lockUsage(c: Queryable): Promise<{ objects: number; bytes: number }> {
    const { rows } = await c.query("SELECT objects, bytes FROM mayfly_blob_usage WHERE bucket = $1 FOR UPDATE", [this.bucket]);
    return { objects: Number(rows[0].objects), bytes: Number(rows[0].bytes) };
  }

  private async lockKey(c: Queryable, key: string): Promise<{ size: number; inFlight: number } | undefined> {
    const { rows } = await c.query("SELECT size, in_flight FROM mayfly_blob_sizes WHERE bucket = $1 AND key = $2 FOR UPDATE", [this.bucket, key]);
    return rows[0] ? { size: Number(rows[0].size), inFlight: Number(rows[0].in_flight) } : undefined;
  }

  /** The ledger's tables, and this bucket's entries from a listing, once (under a lock, so one host lists). */
  private seed(): Promise<void> {
    this.seeded ??= (async () => {
      await this.pg.migrate("blob-quota", LEDGER_DDL);
      await this.pg.transaction(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`mayfly.blob-quota.${this.bucket}`]);
        const { rows } = await c.query("SELECT 1 FROM mayfly_blob_usage WHERE bucket = $1", [this.bucket]);
        if (rows.length > 0) return;
        const listed = await this.source.usage();
        await c.query("INSERT INTO mayfly_blob_sizes (bucket, key, size) SELECT $1, k, s FROM unnest($2::text[], $3::bigint[]) AS t(k, s)",
          [this.bucket, [...listed.sizes.keys()], [...listed.sizes.values()]]);
        await c.query("INSERT INTO mayfly_blob_usage VALUES ($1, $2, $3)", [this.bucket, listed.objects, listed.bytes]);
      });
    })().catch((e) => {
      this.seeded = undefined;
      throw e;
    });
    return this.seeded;
  }
}
