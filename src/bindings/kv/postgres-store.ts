/**
 * KV storage in PostgreSQL, shared by every host on the same database: one table for all namespaces,
 * keyed by the namespace's name. Keys are `COLLATE "C"`, so order (and so list() and its cursor) is
 * the byte order of their UTF-8, as in SQLite. A write that is under a quota first locks its
 * namespace's row in kv_namespaces, so two hosts writing at once are serialised and never both pass.
 */
import { QuotaExceededError } from "../../errors.ts";
import type { PostgresBackend } from "../storage/postgres.ts";
import { rowSize, type KvListRow, type KvQuota, type KvRow, type KvStore, type KvWrite } from "./store.ts";

const DDL = `
  CREATE TABLE IF NOT EXISTS mayfly_kv_namespaces (ns text PRIMARY KEY);
  CREATE TABLE IF NOT EXISTS mayfly_kv (
    ns text NOT NULL, key text COLLATE "C" NOT NULL, value bytea NOT NULL, metadata text, expiration bigint,
    PRIMARY KEY (ns, key));
  CREATE INDEX IF NOT EXISTS mayfly_kv_expiration ON mayfly_kv (ns, expiration) WHERE expiration IS NOT NULL;`;

/** A row's size as rowSize() counts it: bytes of key, value and metadata. */
const SIZE = "octet_length(key) + octet_length(value) + coalesce(octet_length(metadata), 0)";

export class PostgresKvStore implements KvStore {
  private readonly backend: PostgresBackend;
  private readonly ns: string;

  constructor(backend: PostgresBackend, name: string) {
    this.backend = backend;
    this.ns = name;
  }

  private ready(): Promise<void> {
    return this.backend.migrate("kv", DDL);
  }

  async get(key: string): Promise<KvRow | undefined> {
    await this.ready();
    const { rows } = await this.backend.query("SELECT value, metadata, expiration FROM mayfly_kv WHERE ns = $1 AND key = $2", [this.ns, key]);
    const row = rows[0];
    return row ? { value: row.value, metadata: row.metadata, expiration: row.expiration === null ? null : Number(row.expiration) } : undefined;
  }

  async put(w: KvWrite, quota: KvQuota): Promise<void> {
    await this.ready();
    const limited = Number.isFinite(quota.bytes) || Number.isFinite(quota.keys);
    await this.backend.transaction(async (c) => {
      if (limited) {
        // The namespace's lock: held to COMMIT, so the totals read below stay true until the write lands.
        await c.query("INSERT INTO mayfly_kv_namespaces (ns) VALUES ($1) ON CONFLICT DO NOTHING", [this.ns]);
        await c.query("SELECT ns FROM mayfly_kv_namespaces WHERE ns = $1 FOR UPDATE", [this.ns]);
      }
      await c.query("DELETE FROM mayfly_kv WHERE ns = $1 AND expiration IS NOT NULL AND expiration <= $2", [this.ns, Math.floor(Date.now() / 1000)]);
      if (limited) {
        const old = (await c.query(`SELECT ${SIZE} AS size FROM mayfly_kv WHERE ns = $1 AND key = $2`, [this.ns, w.key])).rows[0] as { size: string } | undefined;
        const totals = (await c.query(`SELECT count(*) AS keys, coalesce(sum(${SIZE}), 0) AS bytes FROM mayfly_kv WHERE ns = $1`, [this.ns])).rows[0] as { keys: string; bytes: string };
        if (!old && Number(totals.keys) + 1 > quota.keys) throw new QuotaExceededError(`KV namespace is limited to ${quota.keys} keys.`);
        if (Number(totals.bytes) - Number(old?.size ?? 0) + rowSize(w) > quota.bytes) throw new QuotaExceededError(`KV namespace is limited to ${quota.bytes} bytes.`);
      }
      await c.query(
        `INSERT INTO mayfly_kv (ns, key, value, metadata, expiration) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration`,
        [this.ns, w.key, Buffer.from(w.value.buffer, w.value.byteOffset, w.value.byteLength), w.metadata, w.expiration],
      );
    });
  }

  async delete(key: string): Promise<void> {
    await this.ready();
    await this.backend.query("DELETE FROM mayfly_kv WHERE ns = $1 AND key = $2", [this.ns, key]);
  }

  async list(after: string, prefix: string, now: number, limit: number): Promise<KvListRow[]> {
    await this.ready();
    const { rows } = await this.backend.query(
      `SELECT key, metadata, expiration FROM mayfly_kv
       WHERE ns = $1 AND key > $2 AND starts_with(key, $3) AND (expiration IS NULL OR expiration > $4) ORDER BY key LIMIT $5`,
      [this.ns, after, prefix, now, limit],
    );
    return rows.map((r) => ({ key: r.key, metadata: r.metadata, expiration: r.expiration === null ? null : Number(r.expiration) }));
  }

  /** The backend is shared with other bindings: its owner closes it. */
  async close(): Promise<void> {}
}
