/**
 * A workspace's storage in its own SQLite file (<dataDir>/workspace/<name>.sqlite), the default.
 * A content's bytes are rows of at most CHUNK bytes; one larger than `spillOver` bytes goes to a file
 * of its own instead (written, fsynced and renamed into place by the blob store's writer before its
 * row commits), keeping the SQLite file small.
 *
 * node:sqlite is synchronous but the store's interface is not (PostgreSQL's cannot be), so a
 * transaction's statements are spread over several turns of the event loop's microtasks. One
 * connection has one transaction: every statement therefore runs under `lock`, and a transaction
 * holds it from BEGIN to COMMIT, so no other caller's statement lands inside it or sees it half done.
 * The lock is per file, shared by every store of this process on that file: another connection's
 * BEGIN IMMEDIATE, run while this one's transaction waits on a microtask, would block the thread
 * that transaction needs to finish (SQLite's busy wait is synchronous), until SQLITE_BUSY.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { fileNameFor, openStore } from "../storage/sqlite-file.ts";
import { writeAside } from "../blob/files.ts";
import { parentOf } from "./paths.ts";
import {
  ABANDONED_MS, CHANGES_KEPT, CHUNK, noSpace,
  type ByteSource, type Change, type ChangeKind, type Entry, type HistoryRow, type WorkspaceStore, type WorkspaceTx,
} from "./store.ts";

/** Runs functions one at a time, in call order. */
class Lock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(() => {}, () => {});
    return result;
  }
}

/** The lock of each workspace file open in this process, and how many stores hold it. */
const locks = new Map<string, { lock: Lock; users: number }>();

function lockFor(file: string): Lock {
  let held = locks.get(file);
  if (!held) locks.set(file, (held = { lock: new Lock(), users: 0 }));
  held.users++;
  return held.lock;
}

function unlock(file: string): void {
  const held = locks.get(file);
  if (held && --held.users === 0) locks.delete(file);
}

/** Where a workspace's SQLite file is (whether or not it exists yet). */
export function workspaceFile(name: string, dataDir = ".mayfly/data"): string {
  return join(resolve(dataDir, "workspace"), `${fileNameFor(name)}.sqlite`);
}

export class SqliteWorkspaceStore implements WorkspaceStore {
  readonly db: DatabaseSync;
  private readonly file: string;
  private readonly history: number;
  /** Contents over this many bytes are files in `filesDir`, not chunk rows. */
  private readonly spillOver: number;
  private readonly filesDir: string;
  private readonly lock: Lock;
  /** The open transaction's statements, for tree.ts (they run under the lock the transaction holds). */
  private readonly tx: WorkspaceTx;
  /** Changes made by the open transaction, announced once it commits. */
  private made: Change[] = [];
  /** Spill files of contents the open transaction freed: deleted once it commits, kept if it rolls back. */
  private doomed: number[] | null = null;

  constructor(options: { name: string; dataDir: string; history: number; spillOver: number }) {
    this.db = openStore(options.dataDir, "workspace", options.name);
    this.file = workspaceFile(options.name, options.dataDir);
    this.history = options.history;
    this.spillOver = options.spillOver;
    this.filesDir = `${this.file.slice(0, -".sqlite".length)}.files`;
    this.lock = lockFor(this.file);
    this.tx = {
      entry: async (p) => this.entryNow(p), children: async (d) => this.childrenNow(d), under: async (d) => this.underNow(d),
      version: async () => this.versionNow(), totals: async () => this.totalsNow(), historyOf: async (p) => this.historyNow(p),
      setFile: async (p, c, s) => this.setFile(p, c, s), addDir: async (p) => this.addDir(p), removeEntry: async (e) => this.removeEntry(e),
    };
    // Only a new file is written to here: a write would wait (synchronously) on another store's open transaction.
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'").get()) this.createTables();
    const stale = this.db.prepare("SELECT id FROM contents WHERE pending IS NOT NULL AND pending < ?").all(Date.now() - ABANDONED_MS) as { id: number }[];
    if (stale.length > 0) {
      // Queued first on the lock: every later call waits for it.
      this.transaction(async () => {
        for (const { id } of stale) this.drop(id);
      }).catch((e: unknown) => process.emitWarning(`Could not free a workspace's abandoned contents: ${(e as Error)?.message ?? e}`));
    }
    // A spill file still being written when its writer died is only a temporary file.
    for (const name of existsDir(this.filesDir) ? readdirSync(this.filesDir) : []) {
      const file = join(this.filesDir, name);
      if (name.endsWith(".tmp") && statSync(file).mtimeMs < Date.now() - ABANDONED_MS) rmSync(file, { force: true });
    }
  }

  /** The schema, in one transaction; "changes" last, so its presence means the rest is there. */
  private createTables(): void {
    try {
      this.createTablesNow();
    } catch (e) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw e;
    }
  }

  private createTablesNow(): void {
    this.db.exec(`BEGIN IMMEDIATE;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      INSERT OR IGNORE INTO meta VALUES ('version', 0);
      -- AUTOINCREMENT: a freed content's id (and so its spill file's name) is never given to another.
      CREATE TABLE IF NOT EXISTS contents (id INTEGER PRIMARY KEY AUTOINCREMENT, size INTEGER NOT NULL, pending INTEGER, file INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS chunks (content INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (content, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY, parent TEXT NOT NULL, type TEXT NOT NULL,
        version INTEGER NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, content INTEGER) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS entries_parent ON entries (parent);
      CREATE INDEX IF NOT EXISTS entries_content ON entries (content);
      CREATE TABLE IF NOT EXISTS history (path TEXT NOT NULL, version INTEGER NOT NULL, content INTEGER, size INTEGER NOT NULL, mtime INTEGER NOT NULL, PRIMARY KEY (path, version)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS history_content ON history (content);
      CREATE TABLE IF NOT EXISTS changes (version INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL);
      COMMIT;`);
  }

  // -- contents ---------------------------------------------------------------------------------

  async writeContent(source: ByteSource, room: number, path: string): Promise<{ id: number; size: number }> {
    const id = await this.lock.run(() => Number(this.db.prepare("INSERT INTO contents (size, pending) VALUES (0, ?)").run(Date.now()).lastInsertRowid));
    const insert = this.db.prepare("INSERT INTO chunks VALUES (?, ?, ?)");
    let size = 0;
    let seq = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (all: boolean) => {
      while (pendingBytes >= CHUNK || (all && pendingBytes > 0)) {
        const joined = Buffer.concat(pending);
        const take = Math.min(CHUNK, joined.byteLength);
        await this.lock.run(() => insert.run(id, seq++, joined.subarray(0, take)));
        pending = take < joined.byteLength ? [joined.subarray(take)] : [];
        pendingBytes = joined.byteLength - take;
      }
    };
    try {
      const it = (Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()) as AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
      for (;;) {
        const next = await it.next();
        if (next.done) break;
        const chunk = next.value;
        size += chunk.byteLength;
        if (size > room) throw noSpace(path);
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (size > this.spillOver) return await this.spill(id, pending, it, size, room, path, seq);
        await flush(false);
      }
      await flush(true);
      await this.lock.run(() => this.db.prepare("UPDATE contents SET size = ? WHERE id = ?").run(size, id));
      return { id, size };
    } catch (e) {
      await this.dropContent(id);
      throw e;
    }
  }

  /**
   * Moves a content being written to a file: the rows stored so far, the chunks not yet stored, then
   * the rest of the source, through the blob store's writer (fsynced, renamed into place).
   */
  private async spill(id: number, held: Uint8Array[], rest: AsyncIterator<Uint8Array> | Iterator<Uint8Array>, sizeSoFar: number, room: number, path: string, rows: number): Promise<{ id: number; size: number }> {
    // Read lazily, a row at a time: the rows go only once the file is in place.
    const stored = rows > 0 ? this.chunksOf(id) : [];
    let size = sizeSoFar;
    async function* all(): AsyncGenerator<Uint8Array> {
      yield* stored;
      yield* held;
      for (;;) {
        const next = await rest.next();
        if (next.done) return;
        size += next.value.byteLength;
        if (size > room) throw noSpace(path);
        yield next.value;
      }
    }
    mkdirSync(this.filesDir, { recursive: true });
    const written = await writeAside(this.fileOf(id), all(), Infinity, () => noSpace(path));
    renameSync(written.tmp, this.fileOf(id));
    await this.lock.run(() => {
      this.db.prepare("DELETE FROM chunks WHERE content = ?").run(id);
      this.db.prepare("UPDATE contents SET size = ?, file = 1 WHERE id = ?").run(written.size, id);
    });
    return { id, size: written.size };
  }

  private fileOf(id: number): string {
    return join(this.filesDir, String(id));
  }

  async *chunksOf(id: number): AsyncGenerator<Uint8Array> {
    const row = await this.lock.run(() => this.db.prepare("SELECT file FROM contents WHERE id = ?").get(id) as { file: number } | undefined);
    if (row?.file) {
      let fd: number;
      try {
        fd = openSync(this.fileOf(id), "r");
      } catch {
        return; // freed meanwhile: the reader sees fewer bytes than the size and says so
      }
      try {
        for (let at = 0; ;) {
          const buffer = Buffer.allocUnsafe(CHUNK);
          const n = readSync(fd, buffer, 0, CHUNK, at);
          if (n === 0) return;
          at += n;
          yield buffer.subarray(0, n);
        }
      } finally {
        closeSync(fd);
      }
    }
    const next = this.db.prepare("SELECT seq, data FROM chunks WHERE content = ? AND seq >= ? ORDER BY seq LIMIT 1");
    for (let seq = 0; ;) {
      const chunk = await this.lock.run(() => next.get(id, seq) as { seq: number; data: Uint8Array } | undefined);
      if (!chunk) return;
      seq = chunk.seq + 1;
      yield chunk.data;
    }
  }

  async dropContent(id: number): Promise<void> {
    await this.lock.run(() => this.drop(id));
  }

  private drop(id: number): void {
    if (this.doomed) this.doomed.push(id);
    else rmSync(this.fileOf(id), { force: true });
    this.db.prepare("DELETE FROM chunks WHERE content = ?").run(id);
    this.db.prepare("DELETE FROM contents WHERE id = ?").run(id);
  }

  /** Frees a content nothing points at any more. */
  private release(id: number | null): void {
    if (id === null) return;
    const used = this.db.prepare("SELECT 1 FROM entries WHERE content = ? UNION ALL SELECT 1 FROM history WHERE content = ? LIMIT 1").get(id, id);
    const pending = (this.db.prepare("SELECT pending FROM contents WHERE id = ?").get(id) as { pending: number | null } | undefined)?.pending;
    if (!used && pending === null) this.drop(id);
  }

  // -- reads (committed state: they wait for an open transaction to finish) -----------------------

  entry(path: string): Promise<Entry | undefined> { return this.lock.run(() => this.entryNow(path)); }
  children(dir: string): Promise<Entry[]> { return this.lock.run(() => this.childrenNow(dir)); }
  under(dir: string): Promise<Entry[]> { return this.lock.run(() => this.underNow(dir)); }
  version(): Promise<number> { return this.lock.run(() => this.versionNow()); }
  totals(): Promise<{ bytes: number; files: number }> { return this.lock.run(() => this.totalsNow()); }
  historyOf(path: string): Promise<HistoryRow[]> { return this.lock.run(() => this.historyNow(path)); }

  private entryNow(path: string): Entry | undefined {
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE path = ?").get(path) as Entry | undefined;
  }

  private childrenNow(dir: string): Entry[] {
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE parent = ? ORDER BY path").all(dir) as unknown as Entry[];
  }

  private underNow(dir: string): Entry[] {
    if (dir === "") return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries ORDER BY path").all() as unknown as Entry[];
    // "/" is 0x2F and "0" 0x30: the range holds exactly the paths that start with dir + "/".
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE path > ? AND path < ? ORDER BY path").all(`${dir}/`, `${dir}0`) as unknown as Entry[];
  }

  private versionNow(): number {
    return (this.db.prepare("SELECT value FROM meta WHERE key = 'version'").get() as { value: number }).value;
  }

  private totalsNow(): { bytes: number; files: number } {
    return this.db.prepare("SELECT coalesce(sum(size), 0) AS bytes, count(*) AS files FROM entries WHERE type = 'file'").get() as { bytes: number; files: number };
  }

  private historyNow(path: string): HistoryRow[] {
    return this.db.prepare("SELECT version, content, size, mtime FROM history WHERE path = ? ORDER BY version DESC").all(path) as unknown as HistoryRow[];
  }

  async changesSince(since: number, limit: number): Promise<{ changes: Change[]; version: number; truncated: boolean }> {
    return this.lock.run(() => {
      const changes = this.db.prepare("SELECT version, path, kind FROM changes WHERE version > ? ORDER BY version LIMIT ?").all(since, limit) as unknown as Change[];
      const oldest = (this.db.prepare("SELECT min(version) AS v FROM changes").get() as { v: number | null }).v;
      return { changes, version: this.versionNow(), truncated: oldest !== null && since < oldest - 1 };
    });
  }

  // -- writes (inside a transaction) ---------------------------------------------------------------

  /** Records that `path` changed: the next version number, its change row and (for files) its history row. */
  private record(path: string, kind: ChangeKind, file?: { content: number | null; size: number; mtime: number }): number {
    const version = (this.db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'version' RETURNING value").get() as { value: number }).value;
    this.db.prepare("INSERT INTO changes VALUES (?, ?, ?)").run(version, path, kind);
    this.db.prepare("DELETE FROM changes WHERE version <= ?").run(version - CHANGES_KEPT);
    if (file) {
      this.db.prepare("INSERT INTO history VALUES (?, ?, ?, ?, ?)").run(path, version, file.content, file.size, file.mtime);
      const old = this.db.prepare("SELECT version, content FROM history WHERE path = ? ORDER BY version DESC LIMIT -1 OFFSET ?").all(path, this.history) as { version: number; content: number | null }[];
      for (const row of old) {
        this.db.prepare("DELETE FROM history WHERE path = ? AND version = ?").run(path, row.version);
        this.release(row.content);
      }
    }
    this.made.push({ path, kind, version });
    return version;
  }

  private setFile(path: string, content: number, size: number): number {
    const old = this.entryNow(path);
    const mtime = Date.now();
    this.db.prepare("UPDATE contents SET pending = NULL WHERE id = ?").run(content);
    const version = this.record(path, old ? "modify" : "create", { content, size, mtime });
    this.db.prepare("INSERT INTO entries VALUES (?, ?, 'file', ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET version = excluded.version, size = excluded.size, mtime = excluded.mtime, content = excluded.content")
      .run(path, parentOf(path), version, size, mtime, content);
    if (old?.content != null) this.release(old.content);
    return version;
  }

  private addDir(path: string): number {
    const mtime = Date.now();
    const version = this.record(path, "mkdir");
    this.db.prepare("INSERT INTO entries VALUES (?, ?, 'dir', ?, 0, ?, NULL)").run(path, parentOf(path), version, mtime);
    return version;
  }

  private removeEntry(entry: Entry): void {
    this.db.prepare("DELETE FROM entries WHERE path = ?").run(entry.path);
    if (entry.type === "dir") this.record(entry.path, "rmdir");
    else {
      this.record(entry.path, "delete", { content: null, size: 0, mtime: Date.now() });
      this.release(entry.content);
    }
  }

  transaction<T>(fn: (tx: WorkspaceTx) => Promise<T>): Promise<{ result: T; changes: Change[] }> {
    return this.lock.run(async () => {
      this.made = [];
      this.doomed = [];
      try {
        // BEGIN IMMEDIATE: the write lock is taken up front, so another process's writer waits here.
        this.db.exec("BEGIN IMMEDIATE");
        let result: T;
        try {
          result = await fn(this.tx);
          this.db.exec("COMMIT");
        } catch (e) {
          // A transaction SQLite has already rolled back itself (a full disk) is not rolled back twice.
          if (this.db.isTransaction) this.db.exec("ROLLBACK");
          throw e;
        }
        // Spilled files freed by the change go only once it has committed (a rollback still needs them).
        for (const id of this.doomed) rmSync(this.fileOf(id), { force: true });
        return { result, changes: this.made };
      } finally {
        this.made = [];
        this.doomed = null;
      }
    });
  }

  close(): void {
    if (!this.db.isOpen) return;
    this.db.close();
    unlock(this.file);
  }

  async destroy(): Promise<void> {
    await this.lock.run(() => this.close());
    for (const suffix of ["", "-wal", "-shm"]) rmSync(this.file + suffix, { force: true });
    rmSync(this.filesDir, { recursive: true, force: true });
  }
}

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
