/**
 * The SQLite half of replicated SQLite (see replicated-sqlite.ts): a local replica file and the pure,
 * synchronous operations on it. Nothing here talks to PostgreSQL, so this half can live in another
 * process (an actor's executor) than the half that appends to the log.
 *
 * - `capture(fn)` runs a write transaction, turns what it did into one log entry (a session changeset,
 *   or a whole image when a changeset cannot carry it) and ROLLS IT BACK: the replica only ever moves
 *   forward by applying entries the log has accepted (`apply`), the writer's own included. So a write
 *   whose append loses the race leaves nothing behind to undo.
 * - The replica's version (the last log entry applied) is stored in the file's header, in the same
 *   transaction as the entry: `PRAGMA application_id` (high 32 bits) and `user_version` (low 32), so
 *   a crash can never leave the data and its version out of step. Both pragmas are reserved.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { constants, DatabaseSync } from "node:sqlite";
import { ReplicaOutOfStepError } from "../../errors.ts";

export type EntryKind = "changeset" | "image";
/** What a write transaction did, ready to append: a changeset, or the database's whole image. */
export interface Entry { kind: EntryKind; bytes: Uint8Array }
/** An entry the log accepted, at its version. */
export interface LogEntry extends Entry { version: number }
export interface Capture<T> { result: T; entry: Entry | null }

export type Authorizer = (action: number, arg1: string | null, arg2: string | null, dbName: string | null, trigger: string | null) => number;

export interface ReplicaOptions {
  /** The guest's authorizer, consulted only while `capture`/`read` run the caller's function. */
  authorizer?: Authorizer;
  /** Run on every (re)opened connection (an image replaces the file): user functions, pragmas. */
  onOpen?: (db: DatabaseSync) => void;
}

const WRITES = new Set([constants.SQLITE_INSERT, constants.SQLITE_UPDATE, constants.SQLITE_DELETE]);
const SPLIT = 2 ** 32;


export class SqliteReplica {
  readonly path: string;
  db: DatabaseSync;
  private readonly options: ReplicaOptions;
  /** True while our own bookkeeping runs: the guest's authorizer does not apply to it. */
  private internal = true;
  /** Tables the caller's function wrote (from the authorizer), to decide changeset vs image. */
  private readonly written = new Set<string>();
  /** Per schema_version: tables a changeset cannot fully carry, and the nullable key columns of the rest. */
  private keys: { schema: number; tables: Map<string, string[] | "image"> } = { schema: -1, tables: new Map() };
  /** The file's version, read once after each change we make to it (this instance owns the file). */
  private knownVersion: number | undefined;

  constructor(path: string, options: ReplicaOptions = {}) {
    this.path = path;
    this.options = options;
    mkdirSync(dirname(path), { recursive: true });
    this.db = this.open();
  }

  /** The version of the last log entry applied (0: empty, never written). */
  get version(): number {
    this.knownVersion ??= this.asInternal(() => readVersion(this.db));
    return this.knownVersion;
  }

  /**
   * Runs `fn` in a write transaction and answers its result and the entry describing its changes
   * (null when it changed nothing), then rolls the transaction back. `fn` may not BEGIN/COMMIT itself.
   *
   * With `keep`, the transaction commits locally instead, stamped with version+1 (when it changed
   * something): for a single writer under a lease (an actor) whose later reads must see its writes
   * before the append is confirmed. If that append then fails, the replica is ahead of the log and
   * must be discarded (`replace(empty, 0)` or `materialize`), never appended to again.
   */
  capture<T>(fn: (db: DatabaseSync) => T, options: { keep?: boolean } = {}): Capture<T> {
    const db = this.db;
    db.exec("BEGIN IMMEDIATE");
    try {
      const before = this.asInternal(() => ({ ...counters(db), version: readVersion(db) }));
      const session = db.createSession();
      let captured: Capture<T>;
      try {
        this.written.clear();
        const result = this.asGuest(() => fn(db));
        captured = { result, entry: this.asInternal(() => this.entryFor(session.changeset(), before)) };
      } finally {
        session.close();
      }
      if (options.keep && captured.entry) {
        this.asInternal(() => writeVersion(db, before.version + 1));
        db.exec("COMMIT");
        this.knownVersion = undefined;
      }
      return captured;
    } finally {
      if (db.isTransaction) db.exec("ROLLBACK");
    }
  }

  /** Runs a read-only `fn` (query_only: any write fails with SQLITE_READONLY). */
  read<T>(fn: (db: DatabaseSync) => T): T {
    this.db.exec("PRAGMA query_only = 1");
    try {
      return this.asGuest(() => fn(this.db));
    } finally {
      this.db.exec("PRAGMA query_only = 0");
    }
  }

  /**
   * Applies accepted log entries in order (those at or below the replica's version are skipped). An
   * image replaces the file; a changeset must be the next version and apply without conflict, or
   * ReplicaOutOfStepError says the replica must be rebuilt (`materialize`).
   */
  apply(entries: LogEntry[]): void {
    for (const e of entries) {
      const current = this.version;
      if (e.version <= current) continue;
      if (e.kind === "image") {
        this.replace(e.bytes, e.version);
        continue;
      }
      if (e.version !== current + 1) throw new ReplicaOutOfStepError(`replica at ${current} cannot apply changeset ${e.version}`);
      this.knownVersion = undefined;
      this.asInternal(() => applyChangeset(this.db, e.bytes, e.version));
    }
  }

  /** The database's image as of now (for compaction), with the version it is at. */
  image(): LogEntry {
    return this.asInternal(() => ({ kind: "image" as const, bytes: this.db.serialize(), version: readVersion(this.db) }));
  }

  /**
   * Records that the replica is at `version` without changing its data: after compaction appended an
   * image of exactly this state as the next entry.
   */
  stamp(version: number): void {
    this.knownVersion = undefined;
    this.asInternal(() => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        writeVersion(this.db, version);
        this.db.exec("COMMIT");
      } catch (error) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw error;
      }
    });
  }

  /** Reopens the file after someone else replaced it (a rebuild by `materialize`). */
  reload(): void {
    this.knownVersion = undefined;
    this.close();
    this.db = this.open();
  }

  /** Replaces the file with an image at `version` (a rebuild, or an image entry). */
  replace(bytes: Uint8Array, version: number): void {
    this.knownVersion = undefined;
    this.db.close();
    writeImageFile(this.path, bytes, version);
    this.db = this.open();
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private open(): DatabaseSync {
    let db: DatabaseSync;
    try {
      db = openReplicaFile(this.path);
    } catch {
      // A cache file torn by a crash mid-replace: start empty; catching up rebuilds it from the log.
      for (const suffix of ["", "-wal", "-shm"]) rmSync(this.path + suffix, { force: true });
      db = openReplicaFile(this.path);
    }
    db.setAuthorizer((action, a1, a2, dbName, trigger) => this.authorize(action, a1, a2, dbName, trigger));
    this.asInternal(() => this.options.onOpen?.(db));
    return db;
  }

  private authorize(action: number, a1: string | null, a2: string | null, dbName: string | null, trigger: string | null): number {
    if (this.internal) return constants.SQLITE_OK;
    // The caller's function runs inside our transaction: its own BEGIN/COMMIT would escape the capture.
    if (action === constants.SQLITE_TRANSACTION) return constants.SQLITE_DENY;
    if (WRITES.has(action) && a1 && (dbName ?? "main") === "main") this.written.add(a1);
    return this.options.authorizer?.(action, a1, a2, dbName, trigger) ?? constants.SQLITE_OK;
  }

  /** Changeset when it carries everything the transaction did, else the whole image. */
  private entryFor(changeset: Uint8Array, before: { schema: number; changes: number }): Entry | null {
    const after = counters(this.db);
    if (after.schema !== before.schema) return { kind: "image", bytes: this.db.serialize() };
    if (changeset.length === 0 && after.changes === before.changes) return null;
    // Sessions skip tables without a PRIMARY KEY and rows whose key holds NULL (legal in rowid tables).
    if (changeset.length === 0 || [...this.written].some((t) => this.beyondChangesets(t))) return { kind: "image", bytes: this.db.serialize() };
    return { kind: "changeset", bytes: changeset };
  }

  private beyondChangesets(table: string): boolean {
    const schema = counters(this.db).schema;
    if (this.keys.schema !== schema) this.keys = { schema, tables: new Map() };
    let key = this.keys.tables.get(table);
    if (!key) {
      key = keyOf(this.db, table);
      this.keys.tables.set(table, key);
    }
    if (key === "image") return true;
    if (key.length === 0) return false;
    const where = key.map((c) => `${quote(c)} IS NULL`).join(" OR ");
    return this.db.prepare(`SELECT 1 FROM ${quote(table)} WHERE ${where} LIMIT 1`).get() !== undefined;
  }

  private asInternal<T>(fn: () => T): T {
    return this.as(true, fn);
  }

  private asGuest<T>(fn: () => T): T {
    return this.as(false, fn);
  }

  /** Runs `fn` with the authorizer's bypass set to `internal`, restoring what it was. */
  private as<T>(internal: boolean, fn: () => T): T {
    const was = this.internal;
    this.internal = internal;
    try {
      return fn();
    } finally {
      this.internal = was;
    }
  }
}

/** Opens (creating) a replica file: WAL; synchronous=NORMAL, because the log, not this file, is the truth. */
export function openReplicaFile(path: string): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 5_000 });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  return db;
}

export function readVersion(db: DatabaseSync): number {
  const r = db.prepare("SELECT a.application_id AS hi, u.user_version AS lo FROM pragma_application_id() a, pragma_user_version() u").get() as { hi: number; lo: number };
  return Number(r.hi) * SPLIT + (Number(r.lo) >>> 0);
}

export function writeVersion(db: DatabaseSync, version: number): void {
  db.exec(`PRAGMA application_id = ${Math.floor(version / SPLIT) | 0}`);
  db.exec(`PRAGMA user_version = ${(version % SPLIT) | 0}`);
}

/** Applies one changeset and records its version, in one transaction; a conflict means the replica is out of step. */
export function applyChangeset(db: DatabaseSync, bytes: Uint8Array, version: number): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    // Read under the write lock: another connection to this file may have applied it meanwhile.
    const current = readVersion(db);
    if (current >= version) {
      db.exec("ROLLBACK");
      return;
    }
    if (current !== version - 1) throw new ReplicaOutOfStepError(`replica at ${current} cannot apply changeset ${version}`);
    const applied = db.applyChangeset(bytes, { onConflict: () => constants.SQLITE_CHANGESET_ABORT });
    if (!applied) throw new ReplicaOutOfStepError(`changeset ${version} conflicts with the replica`);
    writeVersion(db, version);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error instanceof ReplicaOutOfStepError ? error : new ReplicaOutOfStepError(`changeset ${version}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Writes an image as the replica file at `version`: to a temporary file first (stamped with its
 * version, synced), then renamed over the old one, so a crash leaves either the old or the new file.
 * No connection to `path` may be open.
 */
export function writeImageFile(path: string, bytes: Uint8Array | null, version: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  for (const suffix of ["", "-wal", "-shm"]) rmSync(tmp + suffix, { force: true });
  if (bytes) {
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  const db = openReplicaFile(tmp);
  writeVersion(db, version);
  db.close();
  for (const suffix of ["-wal", "-shm"]) if (existsSync(path + suffix)) rmSync(path + suffix, { force: true });
  renameSync(tmp, path);
}

function counters(db: DatabaseSync): { schema: number; changes: number } {
  const r = db.prepare("SELECT s.schema_version AS schema, total_changes() AS changes FROM pragma_schema_version() s").get() as { schema: number; changes: number };
  return { schema: Number(r.schema), changes: Number(r.changes) };
}

/**
 * How a table's rows reach a changeset: "image" when they cannot (no PRIMARY KEY, or a virtual
 * table), else the key columns that may hold NULL (those rows a session skips; empty when none can).
 */
function keyOf(db: DatabaseSync, table: string): string[] | "image" {
  const list = db.prepare("SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?").get(table) as { type: string; wr: number } | undefined;
  if (!list || list.type !== "table") return "image";
  const cols = db.prepare("SELECT name, type, pk, \"notnull\" AS nn FROM pragma_table_info(?) WHERE pk > 0").all(table) as { name: string; type: string; pk: number; nn: number }[];
  if (cols.length === 0) return "image";
  const rowidAlias = cols.length === 1 && cols[0]!.type.toUpperCase() === "INTEGER";
  if (list.wr || rowidAlias) return [];
  return cols.filter((c) => !c.nn).map((c) => c.name);
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
