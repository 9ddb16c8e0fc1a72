/**
 * A durable actor's storage (`ctx.storage`): its own SQLite file, opened here, in the executor that
 * hosts the actor's isolate, and answered synchronously.
 *
 * Why here and not in the host process: Cloudflare's `ctx.storage.sql.exec()` and
 * `transactionSync()` are synchronous, and the only synchronous path out of an isolate is a host
 * service of its executor (capability calls to the host process are IPC, hence asynchronous). The
 * file's path comes from the host, in the worker's spec, and is kept in this isolate's service state:
 * the guest names no file and can reach no other actor's data. Because every storage call completes
 * before it returns, a read-modify-write over `await storage.get()`/`put()` runs within one
 * macrotask, and no other call into the actor can interleave with it: Cloudflare's input gate, by
 * construction. Every write commits before it returns (WAL, synchronous=FULL), so what an actor
 * acknowledged survives kill -9 of the host or the executor (Cloudflare's output gate).
 */
import { DatabaseSync, constants, type Session } from "node:sqlite";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { createHash } from "node:crypto";
import { deserialize, serialize } from "node:v8";
import type { Service, ServiceState } from "./index.ts";
import { refusedToGuests } from "../../../bindings/storage/sqlite-file.ts";

/** Key in the service state under which the executor records the actor's SQLite path. */
export const ACTOR_STORAGE = "actorStorage";
const DB = "actorStorage.db";

/** Cloudflare keeps an actor's KV pairs in this table of its SQLite database, hidden from sql.exec. */
const KV_TABLE = "_cf_KV";

interface Store {
  db: DatabaseSync;
  /** Our own statements (KV methods, transactions) are not the guest's and are not restricted. */
  internal: boolean;
  depth: number;
  /** Whether the KV table is known to exist (made on first KV use: one commit, and one fsync, fewer for SQL-only actors). */
  kv: boolean;
  /** Cluster mode: what has been captured since the last drain (see drain()). */
  repl?: Replication;
  [Symbol.dispose](): void;
}

/**
 * Cluster mode's capture of committed writes: a node:sqlite session records the rows each
 * transaction changed (rolled-back ones are not kept); a schema change (which sessions do not
 * record), or tables without a primary key (which they skip), make the next entry the whole file.
 */
interface Replication {
  path: string;
  session: Session;
  schema: number;
  changes: number;
  imagesOnly: boolean;
}

function store(state: ServiceState): Store {
  const open = state.store.get(DB) as Store | undefined;
  if (open) return open;
  const where = state.store.get(ACTOR_STORAGE) as { path: string; maxBytes: number; replicate?: boolean } | undefined;
  if (!where) throw new TypeError("This worker is not a durable actor: it has no ctx.storage.");
  mkdirSync(dirname(where.path), { recursive: true });
  const db = new DatabaseSync(where.path, { timeout: 5_000 });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  // The quota: SQLite refuses to grow the file past this many pages (per connection; the guest may
  // not change pragmas), and the write that would have rolls back.
  const pageSize = (db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(where.maxBytes / pageSize))}`);
  const s: Store = {
    db, internal: false, depth: 0, kv: false,
    [Symbol.dispose]() {
      if (db.isOpen) db.close();
    },
  };
  db.setAuthorizer((action, arg1) => {
    if (s.internal) return constants.SQLITE_OK;
    if (refusedToGuests(action, arg1)) return constants.SQLITE_DENY;
    // As on Cloudflare: transactions go through transactionSync()/transaction(), not SQL.
    if (action === constants.SQLITE_TRANSACTION || action === constants.SQLITE_SAVEPOINT) return constants.SQLITE_DENY;
    if (typeof arg1 === "string" && arg1.toLowerCase().startsWith("_cf_")) return constants.SQLITE_DENY;
    return constants.SQLITE_OK;
  });
  if (where.replicate) {
    s.repl = { path: where.path, session: internal(s, () => db.createSession()), schema: schemaVersion(s), changes: totalChanges(s), imagesOnly: hasKeylessTables(s) };
  }
  state.store.set(DB, s);
  return s;
}

function schemaVersion(s: Store): number {
  return internal(s, () => Number((s.db.prepare("PRAGMA schema_version").get() as { schema_version: number }).schema_version));
}

function hasKeylessTables(s: Store): boolean {
  return internal(s, () => Boolean(s.db.prepare(
    "SELECT 1 FROM sqlite_master m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE pk > 0) LIMIT 1",
  ).get()));
}

/** The writes committed since the last drain, as log entries (a changeset, or the whole file); null if none. */
function drainWrites(s: Store, wholeFile: boolean): { kind: "image" | "changeset"; data: Uint8Array }[] | null {
  // The session reads the actor's tables (the hidden KV table too): our statements, not the guest's.
  return internal(s, () => drainInternal(s, wholeFile));
}

/** `wholeFile`: the host asked for an image (compaction: the log's changesets since the last one are many). */
function drainInternal(s: Store, wholeFile: boolean): { kind: "image" | "changeset"; data: Uint8Array }[] | null {
  const r = s.repl!;
  const schema = schemaVersion(s);
  const changes = totalChanges(s);
  if (schema === r.schema && changes === r.changes) return null;
  let entry: { kind: "image" | "changeset"; data: Uint8Array } | null;
  if (schema !== r.schema || r.imagesOnly || wholeFile) {
    if (schema !== r.schema) r.imagesOnly = hasKeylessTables(s);
    // The whole database in its main file: the WAL folded in first.
    internal(s, () => s.db.exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    entry = { kind: "image", data: new Uint8Array(readFileSync(r.path)) };
  } else {
    const data = r.session.changeset();
    entry = data.byteLength ? { kind: "changeset", data } : null;
  }
  r.session.close();
  r.session = s.db.createSession();
  r.schema = schema;
  r.changes = changes;
  return entry ? [entry] : null;
}

/** The store, with its KV table. */
function kvStore(state: ServiceState): Store {
  const s = store(state);
  if (!s.kv) {
    internal(s, () => s.db.exec(`CREATE TABLE IF NOT EXISTS ${KV_TABLE} (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`));
    s.kv = true;
  }
  return s;
}

function internal<T>(s: Store, fn: () => T): T {
  const was = s.internal;
  s.internal = true;
  try {
    return fn();
  } finally {
    s.internal = was;
  }
}

/**
 * Splits a script into statements at top-level semicolons (quotes, identifiers and comments kept
 * whole): Cloudflare's exec() runs every statement and returns the last one's cursor, while
 * node:sqlite prepares only the first.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      i = sql.indexOf(close, i + 1);
      if (i < 0) break;
    } else if (c === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      if (nl < 0) break;
      i = nl;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) break;
      i = end + 1;
    } else if (c === ";") {
      out.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  out.push(sql.slice(start));
  return out.filter((s) => s.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, "").trim() !== "");
}

type SqlValue = null | number | bigint | string | Uint8Array;

function toSqlValue(v: unknown): SqlValue {
  if (v === null || typeof v === "number" || typeof v === "bigint" || typeof v === "string" || v instanceof Uint8Array) return v;
  if (v === undefined) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`SQL bindings must be null, numbers, strings or ArrayBuffers (got ${typeof v}).`);
}

export interface SqlResult { columnNames: string[]; rows: SqlValue[][]; rowsRead: number; rowsWritten: number }

function totalChanges(s: Store): number {
  return internal(s, () => Number((s.db.prepare("SELECT total_changes() AS n").get() as { n: number }).n));
}

/**
 * Cloudflare's exec(): every statement of the script, the last one's rows. rowsRead counts the rows
 * returned (SQLite does not tell the rows a statement scanned); rowsWritten the rows changed.
 */
function exec(s: Store, query: string, bindings: unknown[]): SqlResult {
  const statements = splitStatements(String(query));
  if (statements.length === 0) return { columnNames: [], rows: [], rowsRead: 0, rowsWritten: 0 };
  if (statements.length > 1 && bindings.length) throw new RangeError("A query with bindings must be a single statement.");
  let result: SqlResult = { columnNames: [], rows: [], rowsRead: 0, rowsWritten: 0 };
  let read = 0;
  let written = 0;
  for (const text of statements) {
    const stmt = s.db.prepare(text);
    const params = bindings.map(toSqlValue);
    const columns = stmt.columns().map((c) => c.name);
    if (columns.length) {
      // A statement with results may write too (INSERT … RETURNING): its writes are the change in
      // SQLite's running total.
      const before = totalChanges(s);
      stmt.setReturnArrays(true);
      const rows = stmt.all(...params) as unknown as SqlValue[][];
      read += rows.length;
      written += totalChanges(s) - before;
      result = { columnNames: columns, rows, rowsRead: 0, rowsWritten: 0 };
    } else {
      const r = stmt.run(...params);
      written += Number(r.changes);
      result = { columnNames: [], rows: [], rowsRead: 0, rowsWritten: 0 };
    }
  }
  result.rowsRead = read;
  result.rowsWritten = written;
  return result;
}

interface ListOptions { start?: string; startAfter?: string; end?: string; prefix?: string; reverse?: boolean; limit?: number }

function list(s: Store, o: ListOptions): [string, unknown][] {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (o.start !== undefined) { where.push("key >= ?"); params.push(String(o.start)); }
  if (o.startAfter !== undefined) { where.push("key > ?"); params.push(String(o.startAfter)); }
  if (o.end !== undefined) { where.push("key < ?"); params.push(String(o.end)); }
  if (o.prefix !== undefined && o.prefix !== "") { where.push("substr(key, 1, ?) = ?"); params.push(String(o.prefix).length, String(o.prefix)); }
  const limit = o.limit === undefined ? -1 : Math.max(0, Math.trunc(Number(o.limit)));
  const sql = `SELECT key, value FROM ${KV_TABLE}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY key ${o.reverse ? "DESC" : "ASC"} LIMIT ?`;
  const rows = s.db.prepare(sql).all(...params, limit) as { key: string; value: Uint8Array }[];
  return rows.map((r) => [r.key, deserialize(r.value)]);
}

function checkKey(key: unknown): string {
  if (typeof key !== "string") throw new TypeError("Storage keys must be strings.");
  if (Buffer.byteLength(key) > 2048) throw new RangeError("Storage keys are limited to 2048 bytes.");
  return key;
}

/** Cloudflare's limit on one stored value (SQLite-backed Durable Objects). */
const MAX_VALUE_BYTES = 2 * 1024 * 1024;

/** Runs `fn` as one transaction; a transaction inside another is a savepoint. */
function transaction<T>(s: Store, fn: () => T): T {
  const name = `mayfly_${s.depth}`;
  internal(s, () => s.db.exec(s.depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${name}`));
  s.depth++;
  try {
    const out = fn();
    s.depth--;
    internal(s, () => s.db.exec(s.depth === 0 ? "COMMIT" : `RELEASE ${name}`));
    return out;
  } catch (e) {
    s.depth--;
    undo(s);
    throw e;
  }
}

/** SQLite's "database or disk is full" past max_page_count is the actor's quota: a QuotaExceededError. */
function quota<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (/database or disk is full/i.test((e as Error)?.message ?? "")) {
      throw Object.assign(new Error("The actor's storage is full (maxStorageBytes); the write was rolled back."), { name: "QuotaExceededError" });
    }
    throw e;
  }
}

/**
 * Rolls back the innermost transaction (s.depth already counts it out). SQLite may have rolled the
 * whole transaction back by itself (a full database does that): then nothing is left to undo.
 */
function undo(s: Store): void {
  if (!s.db.isTransaction) {
    s.depth = 0;
    return;
  }
  internal(s, () => s.db.exec(s.depth === 0 ? "ROLLBACK" : `ROLLBACK TO mayfly_${s.depth}; RELEASE mayfly_${s.depth}`));
}

export const actorStorage: Service = {
  sync: {
    /** A name's id in a namespace: deterministic, 64 hex digits (as Cloudflare's are). */
    idFromName(_state, namespace: unknown, name: unknown) {
      return actorIdFromName(String(namespace), String(name));
    },
    sql(state, query: unknown, bindings: unknown) {
      return quota(() => exec(store(state), String(query), Array.isArray(bindings) ? bindings : []));
    },
    databaseSize(state) {
      const s = store(state);
      return internal(s, () => {
        const r = s.db.prepare("SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()").get() as { size: number };
        return r.size;
      });
    },
    get(state, keys: unknown) {
      const s = kvStore(state);
      const stmt = internal(s, () => s.db.prepare(`SELECT value FROM ${KV_TABLE} WHERE key = ?`));
      return (Array.isArray(keys) ? keys : []).map((k) => {
        const row = internal(s, () => stmt.get(checkKey(k))) as { value: Uint8Array } | undefined;
        return row ? deserialize(row.value) : undefined;
      });
    },
    put(state, entries: unknown) {
      const s = kvStore(state);
      const pairs = (Array.isArray(entries) ? entries : []) as [unknown, unknown][];
      const encoded = pairs.map(([k, v]) => {
        if (v === undefined) throw new TypeError("Storage values cannot be undefined.");
        const bytes = serialize(v);
        if (bytes.byteLength > MAX_VALUE_BYTES) throw new RangeError(`Storage values are limited to ${MAX_VALUE_BYTES} bytes.`);
        return [checkKey(k), bytes] as const;
      });
      quota(() => transaction(s, () => internal(s, () => {
        const stmt = s.db.prepare(`INSERT INTO ${KV_TABLE} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
        for (const [k, v] of encoded) stmt.run(k, v);
      })));
      return null;
    },
    delete(state, keys: unknown) {
      const s = kvStore(state);
      let deleted = 0;
      transaction(s, () => internal(s, () => {
        const stmt = s.db.prepare(`DELETE FROM ${KV_TABLE} WHERE key = ?`);
        for (const k of Array.isArray(keys) ? keys : []) deleted += Number(stmt.run(checkKey(k)).changes);
      }));
      return deleted;
    },
    list(state, options: unknown) {
      const s = kvStore(state);
      return internal(s, () => list(s, (options ?? {}) as ListOptions));
    },
    /** Every table of the actor's database, KV pairs included (Cloudflare's deleteAll). */
    deleteAll(state) {
      const s = store(state);
      s.kv = false;
      transaction(s, () => internal(s, () => {
        const tables = s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
        for (const t of tables) {
          s.db.exec(`DROP TABLE IF EXISTS "${t.name.replaceAll('"', '""')}"`);
        }
      }));
      return null;
    },
    /** Cluster mode: the committed writes not yet sent to the host (the output gate, see guest/actor.ts). */
    drain(state, wholeFile: unknown) {
      const s = state.store.get(DB) as Store | undefined;
      // Nothing opened, nothing written; inside an open transaction, its writes wait for the commit.
      if (!s?.repl || s.depth > 0) return null;
      return drainWrites(s, wholeFile === true);
    },
    /** transactionSync(): begin / commit / rollback around the guest's synchronous closure. */
    begin(state) {
      const s = store(state);
      internal(s, () => s.db.exec(s.depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT mayfly_${s.depth}`));
      s.depth++;
      return s.depth;
    },
    commit(state) {
      const s = store(state);
      if (s.depth === 0) throw new Error("No transaction is open.");
      s.depth--;
      quota(() => internal(s, () => s.db.exec(s.depth === 0 ? "COMMIT" : `RELEASE mayfly_${s.depth}`)));
      return null;
    },
    rollback(state) {
      const s = store(state);
      if (s.depth === 0) return null;
      s.depth--;
      undo(s);
      return null;
    },
  },
};

/** The id of `name` in `namespace`: SHA-256 of both, as 64 hex digits (also computed by the host). */
export function actorIdFromName(namespace: string, name: string): string {
  return createHash("sha256").update(namespace).update("\0").update(name).digest("hex");
}
