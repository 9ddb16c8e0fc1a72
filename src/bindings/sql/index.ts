/**
 * A SQL database with Cloudflare D1's API (prepare().bind().all/first/run/raw, batch as one
 * transaction, exec), one SQLite file per database. Statements run under an authorizer that refuses
 * ATTACH/DETACH (and so VACUUM INTO) and writing pragmas, so no statement can reach another file.
 * Quotas on rows and bytes roll the offending write back with QuotaExceededError.
 */
import { existsSync } from "node:fs";
import { constants, type DatabaseSync, type SQLInputValue } from "node:sqlite";
import { performance } from "node:perf_hooks";
import { QuotaExceededError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import { fileNameFor, inWriteTransaction, openStore } from "../storage/sqlite-file.ts";
import { join, resolve } from "node:path";

export interface SqlOptions {
  /** The database's name: its file is <dataDir>/sql/<name>.sqlite. */
  name: string;
  dataDir?: string;
  /** Open read-only: every write fails (SQLITE_READONLY). */
  readOnly?: boolean;
  quota?: { rows?: number; bytes?: number };
}

export type Mode = "all" | "first" | "run" | "raw";
export interface Query { sql: string; params: SQLInputValue[] }

/** D1's result shape. */
export interface D1Result {
  results: unknown[];
  success: true;
  meta: { duration: number; changes: number; last_row_id: number; changed_db: boolean; rows_read: number; rows_written: number; size_after: number };
}

/** Pragmas a statement may read (introspection); every other pragma is refused. */
const READ_PRAGMAS = new Set(["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list", "foreign_keys"]);

export class SqlDatabase implements Bindable {
  private readonly openedAt = Date.now();
  private readonly db: DatabaseSync;
  private readonly quota: { rows: number; bytes: number };
  private readonly readOnly: boolean;
  /** Our own bookkeeping queries (sizes, counts) are not the guest's and are not restricted. */
  private internal = false;

  constructor(options: SqlOptions) {
    const dataDir = options.dataDir ?? ".mayfly/data";
    this.readOnly = options.readOnly ?? false;
    if (this.readOnly && !existsSync(join(resolve(dataDir, "sql"), `${fileNameFor(options.name)}.sqlite`))) {
      openStore(dataDir, "sql", options.name).close(); // a read-only database starts empty
    }
    this.db = openStore(dataDir, "sql", options.name, { readOnly: this.readOnly });
    this.quota = { rows: options.quota?.rows ?? Infinity, bytes: options.quota?.bytes ?? Infinity };
    this.db.setAuthorizer((action, arg1) => {
      if (this.internal) return constants.SQLITE_OK;
      if (action === constants.SQLITE_ATTACH || action === constants.SQLITE_DETACH) return constants.SQLITE_DENY;
      if (action === constants.SQLITE_PRAGMA) return READ_PRAGMAS.has(String(arg1).toLowerCase()) ? constants.SQLITE_OK : constants.SQLITE_DENY;
      return constants.SQLITE_OK;
    });
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
    return this.transaction(() => this.execute(q, mode, options));
  }

  /** D1 batch: every statement in one transaction; one failure rolls all back. */
  async batch(queries: Query[]): Promise<unknown[]> {
    if (!Array.isArray(queries)) throw new TypeError("batch() takes an array of prepared statements.");
    return this.transaction(() => queries.map((q) => this.execute(q, "all")));
  }

  /**
   * D1 sessions' bookmark: a position in this database's history. One SQLite file has no replicas, so
   * every session is already sequentially consistent; the bookmark orders writes seen by this binding.
   */
  bookmark(): string {
    const { n } = this.db.prepare("SELECT total_changes() AS n").get() as { n: number };
    return `${this.openedAt.toString(16).padStart(12, "0")}-${n.toString(16).padStart(12, "0")}`;
  }

  /** D1 exec: raw SQL, several statements, no parameters. */
  async exec(sql: string): Promise<{ count: number; duration: number }> {
    const started = performance.now();
    const count = String(sql).split(";").filter((s) => s.trim()).length;
    this.transaction(() => this.db.exec(String(sql)));
    return { count, duration: performance.now() - started };
  }

  close(): void {
    this.db.close();
  }

  private execute(q: Query, mode: Mode, options?: { columnNames?: boolean }): unknown {
    const started = performance.now();
    const stmt = this.db.prepare(String(q.sql));
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
        rows_read: rows.length, rows_written: changes, size_after: this.size(),
      },
    } satisfies D1Result;
  }

  private transaction<T>(fn: () => T): T {
    if (this.readOnly) return fn();
    return inWriteTransaction(this.db, () => {
      const out = fn();
      this.checkQuota();
      return out;
    });
  }

  private checkQuota(): void {
    if (this.quota.bytes !== Infinity && this.size() > this.quota.bytes) throw new QuotaExceededError(`Database is limited to ${this.quota.bytes} bytes.`);
    if (this.quota.rows === Infinity) return;
    this.internal = true;
    try {
      const tables = this.db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
      let rows = 0;
      for (const { name } of tables) rows += Number((this.db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n);
      if (rows > this.quota.rows) throw new QuotaExceededError(`Database is limited to ${this.quota.rows} rows.`);
    } finally {
      this.internal = false;
    }
  }

  private size(): number {
    this.internal = true;
    try {
      const r = this.db.prepare("SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()").get() as { size: number };
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
