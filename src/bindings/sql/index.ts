/**
 * A SQL database with Cloudflare D1's API (prepare().bind().all/first/run/raw, batch as one
 * transaction, exec). Its SQLite lives in one local file per database, or, with `backend`, in
 * PostgreSQL as a log that every host keeps a local replica of (stores.ts, storage/replicated-sqlite.ts):
 * the same SQLite dialect either way. Statements run under an authorizer that refuses ATTACH/DETACH
 * (and so VACUUM INTO) and writing pragmas, so no statement can reach another file. Quotas on rows
 * and bytes roll the offending write back with QuotaExceededError.
 */
import { constants, type DatabaseSync, type SQLInputValue } from "node:sqlite";
import { performance } from "node:perf_hooks";
import { QuotaExceededError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import type { PostgresBackend } from "../storage/postgres.ts";
import { LocalSqlStore, ReplicatedSqlStore, type SqlStore } from "./stores.ts";
import { refusedToGuests } from "../storage/sqlite-file.ts";

export interface SqlOptions {
  /** The database's name: its file is <dataDir>/sql/<name>.sqlite (its log's id "d1/<name>" with a backend). */
  name: string;
  dataDir?: string;
  /** Open read-only: every write fails (SQLITE_READONLY). */
  readOnly?: boolean;
  quota?: { rows?: number; bytes?: number };
  /**
   * Keep the database in PostgreSQL, shared by every host using the same backend and name: each host
   * keeps a replica under `replicaDir` (default <dataDir>/sql-replicas), a cache it can lose.
   */
  backend?: PostgresBackend;
  replicaDir?: string;
  /** With a backend: compact the log into one image every this many writes (default 100). */
  compactEvery?: number;
}

export type Mode = "all" | "first" | "run" | "raw";
export interface Query { sql: string; params: SQLInputValue[] }

/** D1's result shape. */
export interface D1Result {
  results: unknown[];
  success: true;
  meta: { duration: number; changes: number; last_row_id: number; changed_db: boolean; rows_read: number; rows_written: number; size_after: number };
}


export class SqlDatabase implements Bindable {
  private readonly store: SqlStore;
  private readonly quota: { rows: number; bytes: number };
  private readonly readOnly: boolean;
  /** Our own bookkeeping queries (sizes, counts) are not the guest's and are not restricted. */
  private internal = false;

  constructor(options: SqlOptions) {
    const dataDir = options.dataDir ?? ".mayfly/data";
    this.readOnly = options.readOnly ?? false;
    this.quota = { rows: options.quota?.rows ?? Infinity, bytes: options.quota?.bytes ?? Infinity };
    const store = { name: options.name, dataDir, readOnly: this.readOnly, authorizer: (action: number, arg1: string | null) => this.authorize(action, arg1) };
    this.store = options.backend
      ? new ReplicatedSqlStore({ ...store, backend: options.backend, replicaDir: options.replicaDir, compactEvery: options.compactEvery })
      : new LocalSqlStore(store);
  }

  [BINDING](): Capability {
    return {
      kind: "d1",
      call: async (method, args) => {
        switch (method) {
          case "query": return this.query(args[0] as Query, args[1] as Mode, args[2] as { columnNames?: boolean } | undefined);
          case "batch": return this.batch(args[0] as Query[]);
          case "exec": return this.exec(args[0] as string);
          case "bookmark": return this.bookmark();
          default: throw new TypeError(`D1 databases have no method ${method}().`);
        }
      },
    };
  }

  /** One statement; a write is checked against the quotas before it commits. */
  async query(q: Query, mode: Mode, options?: { columnNames?: boolean }): Promise<unknown> {
    return this.transaction((db) => this.execute(db, q, mode, options));
  }

  /** D1 batch: every statement in one transaction; one failure rolls all back. */
  async batch(queries: Query[]): Promise<unknown[]> {
    if (!Array.isArray(queries)) throw new TypeError("batch() takes an array of prepared statements.");
    return this.transaction((db) => queries.map((q) => this.execute(db, q, "all")));
  }

  /**
   * D1 sessions' bookmark: a position in this database's history. Every session is already
   * sequentially consistent (one file, or a replica that catches up before each query).
   */
  bookmark(): Promise<string> {
    return this.store.bookmark();
  }

  /** D1 exec: raw SQL, several statements, no parameters. */
  async exec(sql: string): Promise<{ count: number; duration: number }> {
    const started = performance.now();
    const count = String(sql).split(";").filter((s) => s.trim()).length;
    await this.transaction((db) => db.exec(String(sql)));
    return { count, duration: performance.now() - started };
  }

  close(): void {
    this.store.close();
  }

  private authorize(action: number, arg1: string | null): number {
    if (this.internal) return constants.SQLITE_OK;
    return refusedToGuests(action, arg1) ? constants.SQLITE_DENY : constants.SQLITE_OK;
  }

  private execute(db: DatabaseSync, q: Query, mode: Mode, options?: { columnNames?: boolean }): unknown {
    const started = performance.now();
    const stmt = db.prepare(String(q.sql));
    const params = (Array.isArray(q.params) ? q.params : []).map(toSqlValue);
    if (mode === "raw") {
      const columns = stmt.columns().map((c) => c.name);
      stmt.setReturnArrays(true);
      const rows = stmt.all(...params) as unknown as unknown[][];
      return options?.columnNames ? [columns, ...rows] : rows;
    }
    if (mode === "first") return stmt.get(...params) ?? null;
    const reader = stmt.columns().length > 0;
    const rows = reader ? stmt.all(...params) : [];
    const info = reader ? { changes: 0, lastInsertRowid: 0 } : stmt.run(...params);
    const changes = Number(info.changes);
    return {
      results: mode === "run" && !reader ? [] : rows.map((r) => ({ ...(r as object) })),
      success: true,
      meta: {
        duration: performance.now() - started, changes, last_row_id: Number(info.lastInsertRowid), changed_db: changes > 0,
        rows_read: rows.length, rows_written: changes, size_after: this.size(db),
      },
    } satisfies D1Result;
  }

  private transaction<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    if (this.readOnly) return this.store.read(fn);
    return this.store.write((db) => {
      const out = fn(db);
      this.checkQuota(db);
      return out;
    });
  }

  private checkQuota(db: DatabaseSync): void {
    if (this.quota.bytes !== Infinity && this.size(db) > this.quota.bytes) throw new QuotaExceededError(`Database is limited to ${this.quota.bytes} bytes.`);
    if (this.quota.rows === Infinity) return;
    this.internal = true;
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
      let rows = 0;
      for (const { name } of tables) rows += Number((db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n);
      if (rows > this.quota.rows) throw new QuotaExceededError(`Database is limited to ${this.quota.rows} rows.`);
    } finally {
      this.internal = false;
    }
  }

  private size(db: DatabaseSync): number {
    this.internal = true;
    try {
      const r = db.prepare("SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()").get() as { size: number };
      return Number(r.size);
    } finally {
      this.internal = false;
    }
  }
}

/** A D1-style SQL database for a worker's env (or the host's own use). */
export function sql(options: SqlOptions): SqlDatabase {
  return new SqlDatabase(options);
}

/** D1 binds: booleans as 0/1, ArrayBuffers and views as blobs, undefined refused. */
function toSqlValue(v: unknown): SQLInputValue {
  if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "bigint") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`D1_TYPE_ERROR: Type '${typeof v}' not supported for value '${String(v)}'`);
}
