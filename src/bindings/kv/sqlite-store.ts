/** KV storage in one SQLite file per namespace (<dataDir>/kv/<name>.sqlite): the default. */
import type { DatabaseSync } from "node:sqlite";
import { QuotaExceededError } from "../../errors.ts";
import { inWriteTransaction, openStore } from "../storage/sqlite-file.ts";
import { rowSize, type KvListRow, type KvQuota, type KvRow, type KvStore, type KvWrite } from "./store.ts";

export class SqliteKvStore implements KvStore {
  private readonly db: DatabaseSync;

  constructor(dataDir: string, name: string) {
    this.db = openStore(dataDir, "kv", name);
    this.db.exec(`CREATE TABLE IF NOT EXISTS kv (
      key TEXT PRIMARY KEY, value BLOB NOT NULL, metadata TEXT, expiration INTEGER) WITHOUT ROWID`);
  }

  async get(key: string): Promise<KvRow | undefined> {
    return this.db.prepare("SELECT value, metadata, expiration FROM kv WHERE key = ?").get(key) as KvRow | undefined;
  }

  async put(w: KvWrite, quota: KvQuota): Promise<void> {
    inWriteTransaction(this.db, () => {
      this.db.prepare("DELETE FROM kv WHERE expiration IS NOT NULL AND expiration <= ?").run(Math.floor(Date.now() / 1000));
      const old = this.db.prepare("SELECT length(key) + length(value) + coalesce(length(metadata), 0) AS size FROM kv WHERE key = ?").get(w.key) as { size: number } | undefined;
      const totals = this.db.prepare("SELECT count(*) AS keys, coalesce(sum(length(key) + length(value) + coalesce(length(metadata), 0)), 0) AS bytes FROM kv").get() as { keys: number; bytes: number };
      if (!old && totals.keys + 1 > quota.keys) throw new QuotaExceededError(`KV namespace is limited to ${quota.keys} keys.`);
      if (totals.bytes - (old?.size ?? 0) + rowSize(w) > quota.bytes) throw new QuotaExceededError(`KV namespace is limited to ${quota.bytes} bytes.`);
      this.db.prepare("INSERT INTO kv (key, value, metadata, expiration) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expiration = excluded.expiration")
        .run(w.key, w.value, w.metadata, w.expiration);
    });
  }

  async delete(key: string): Promise<void> {
    this.db.prepare("DELETE FROM kv WHERE key = ?").run(key);
  }

  async list(after: string, prefix: string, now: number, limit: number): Promise<KvListRow[]> {
    // substr() counts code points, not UTF-16 units: an astral prefix ("😀") is one character to SQLite.
    return this.db.prepare(
      "SELECT key, metadata, expiration FROM kv WHERE key > ? AND substr(key, 1, ?) = ? AND (expiration IS NULL OR expiration > ?) ORDER BY key LIMIT ?",
    ).all(after, [...prefix].length, prefix, now, limit) as unknown as KvListRow[];
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
