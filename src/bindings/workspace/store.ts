/**
 * A workspace's SQLite storage, apart from the file system surface built on it (tree.ts, index.ts).
 * Entries (files and directories) point at immutable contents; a content's bytes are rows of at most
 * CHUNK bytes, so a large file is written and read a chunk at a time and never held whole. Contents
 * are shared by reference (history, rename, cp, restore) and freed when nothing points at them.
 *
 * A content larger than `spillOver` bytes goes to a file of its own instead (written, fsynced and
 * renamed into place by the blob store's writer before its row commits), keeping the SQLite file small.
 *
 * Every change takes the next number of one workspace-wide counter: that number is the changed
 * entry's version, the key of its history row and of its change record.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { inWriteTransaction } from "../storage/sqlite-file.ts";
import { writeAside } from "../blob/files.ts";
import { WorkspaceError } from "../../errors.ts";
import { parentOf } from "./paths.ts";

/** Bytes per stored chunk: large enough to keep rows few, small enough to stream in a small isolate. */
export const CHUNK = 256 * 1024;
/** A content still being written after this long belongs to a writer that died: it is freed on open. */
const ABANDONED_MS = 60 * 60 * 1000;
/** Change records kept for changes(since): older ones are dropped, and a reader that far behind is told. */
const CHANGES_KEPT = 10_000;

export type EntryType = "file" | "dir";
export interface Entry { path: string; type: EntryType; version: number; size: number; mtime: number; content: number | null }
export type ChangeKind = "create" | "modify" | "delete" | "mkdir" | "rmdir";
export interface Change { path: string; kind: ChangeKind; version: number }

export class WorkspaceStore {
  readonly db: DatabaseSync;
  readonly history: number;
  /** Contents over this many bytes are files in `filesDir`, not chunk rows. */
  private readonly spillOver: number;
  private readonly filesDir: string;
  /** Changes made by the open transaction, announced once it commits. */
  private made: Change[] = [];
  /** Spill files of contents the open transaction freed: deleted once it commits, kept if it rolls back. */
  private doomed: number[] | null = null;

  constructor(db: DatabaseSync, options: { history: number; spillOver: number; filesDir: string }) {
    this.db = db;
    this.history = options.history;
    this.spillOver = options.spillOver;
    this.filesDir = options.filesDir;
    db.exec(`
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
      CREATE TABLE IF NOT EXISTS changes (version INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL);`);
    this.transaction(() => {
      const stale = db.prepare("SELECT id FROM contents WHERE pending IS NOT NULL AND pending < ?").all(Date.now() - ABANDONED_MS) as { id: number }[];
      for (const { id } of stale) this.dropContent(id);
    });
    // A spill file still being written when its writer died is only a temporary file.
    for (const name of existsDir(this.filesDir) ? readdirSync(this.filesDir) : []) {
      const file = join(this.filesDir, name);
      if (name.endsWith(".tmp") && statSync(file).mtimeMs < Date.now() - ABANDONED_MS) rmSync(file, { force: true });
    }
  }

  // -- contents ---------------------------------------------------------------------------------

  /**
   * Writes bytes as a new pending content, a chunk row at a time (each row its own durable write, so
   * a large file never sits in one transaction or in memory). Past `room` bytes it fails with ENOSPC
   * and leaves nothing. The caller links the content in the transaction that uses it (link()).
   */
  async writeContent(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, room: number, path: string): Promise<{ id: number; size: number }> {
    const id = Number((this.db.prepare("INSERT INTO contents (size, pending) VALUES (0, ?)").run(Date.now())).lastInsertRowid);
    const insert = this.db.prepare("INSERT INTO chunks VALUES (?, ?, ?)");
    let size = 0;
    let seq = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = (all: boolean) => {
      while (pendingBytes >= CHUNK || (all && pendingBytes > 0)) {
        const joined = Buffer.concat(pending);
        const take = Math.min(CHUNK, joined.byteLength);
        insert.run(id, seq++, joined.subarray(0, take));
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
        flush(false);
      }
      flush(true);
      this.db.prepare("UPDATE contents SET size = ? WHERE id = ?").run(size, id);
      return { id, size };
    } catch (e) {
      this.dropContent(id);
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
    this.db.prepare("DELETE FROM chunks WHERE content = ?").run(id);
    this.db.prepare("UPDATE contents SET size = ?, file = 1 WHERE id = ?").run(written.size, id);
    return { id, size: written.size };
  }

  private fileOf(id: number): string {
    return join(this.filesDir, String(id));
  }

  /** A new content: `base`'s bytes (read a chunk at a time) followed by `extra`. */
  async extendContent(base: number | null, extra: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, room: number, path: string): Promise<{ id: number; size: number }> {
    const chunks = base === null ? [] : this.chunksOf(base);
    async function* joined(): AsyncGenerator<Uint8Array> {
      yield* chunks;
      yield* extra;
    }
    return this.writeContent(joined(), room, path);
  }

  /** A content's chunks in order, read one row (or one CHUNK of its file) per step. */
  *chunksOf(id: number): Generator<Uint8Array> {
    const row = this.db.prepare("SELECT file FROM contents WHERE id = ?").get(id) as { file: number } | undefined;
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
      const chunk = next.get(id, seq) as { seq: number; data: Uint8Array } | undefined;
      if (!chunk) return;
      seq = chunk.seq + 1;
      yield chunk.data;
    }
  }

  /** A content's bytes whole (for small files, diffs, greps of one file). */
  readContent(id: number): Buffer {
    return Buffer.concat([...this.chunksOf(id)]);
  }

  /** The content is in use from now on (inside the transaction that points an entry at it). */
  link(id: number): void {
    this.db.prepare("UPDATE contents SET pending = NULL WHERE id = ?").run(id);
  }

  dropContent(id: number): void {
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
    if (!used && pending === null) this.dropContent(id);
  }

  // -- entries, versions, history, changes ------------------------------------------------------

  entry(path: string): Entry | undefined {
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE path = ?").get(path) as Entry | undefined;
  }

  children(dir: string): Entry[] {
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE parent = ? ORDER BY path").all(dir) as unknown as Entry[];
  }

  /** Every entry under `dir` (not `dir` itself), in path order; the root's are all entries. */
  under(dir: string): Entry[] {
    if (dir === "") return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries ORDER BY path").all() as unknown as Entry[];
    // "/" is 0x2F and "0" 0x30: the range holds exactly the paths that start with dir + "/".
    return this.db.prepare("SELECT path, type, version, size, mtime, content FROM entries WHERE path > ? AND path < ? ORDER BY path").all(`${dir}/`, `${dir}0`) as unknown as Entry[];
  }

  /** The workspace's version: the number of the last change. */
  version(): number {
    return (this.db.prepare("SELECT value FROM meta WHERE key = 'version'").get() as { value: number }).value;
  }

  totals(): { bytes: number; files: number } {
    return this.db.prepare("SELECT coalesce(sum(size), 0) AS bytes, count(*) AS files FROM entries WHERE type = 'file'").get() as { bytes: number; files: number };
  }

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

  /** Points `path` at a content (a new file or a new version of one). The caller has checked the tree. */
  setFile(path: string, content: number, size: number): number {
    const old = this.entry(path);
    const mtime = Date.now();
    this.link(content);
    const version = this.record(path, old ? "modify" : "create", { content, size, mtime });
    this.db.prepare("INSERT INTO entries VALUES (?, ?, 'file', ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET version = excluded.version, size = excluded.size, mtime = excluded.mtime, content = excluded.content")
      .run(path, parentOf(path), version, size, mtime, content);
    if (old?.content != null) this.release(old.content);
    return version;
  }

  addDir(path: string): number {
    const mtime = Date.now();
    const version = this.record(path, "mkdir");
    this.db.prepare("INSERT INTO entries VALUES (?, ?, 'dir', ?, 0, ?, NULL)").run(path, parentOf(path), version, mtime);
    return version;
  }

  /** Removes one entry (a directory must be empty by now); a file's history gets a deletion row. */
  removeEntry(entry: Entry): void {
    this.db.prepare("DELETE FROM entries WHERE path = ?").run(entry.path);
    if (entry.type === "dir") this.record(entry.path, "rmdir");
    else {
      this.record(entry.path, "delete", { content: null, size: 0, mtime: Date.now() });
      this.release(entry.content);
    }
  }

  /** A file's kept versions, newest first (content null: deleted at that version). */
  historyOf(path: string): { version: number; content: number | null; size: number; mtime: number }[] {
    return this.db.prepare("SELECT version, content, size, mtime FROM history WHERE path = ? ORDER BY version DESC").all(path) as { version: number; content: number | null; size: number; mtime: number }[];
  }

  /** Changes after `since`, oldest first, at most `limit`; `truncated` if some were already dropped. */
  changesSince(since: number, limit: number): { changes: Change[]; version: number; truncated: boolean } {
    const changes = this.db.prepare("SELECT version, path, kind FROM changes WHERE version > ? ORDER BY version LIMIT ?").all(since, limit) as unknown as Change[];
    const oldest = (this.db.prepare("SELECT min(version) AS v FROM changes").get() as { v: number | null }).v;
    return { changes, version: this.version(), truncated: oldest !== null && since < oldest - 1 };
  }

  /** Runs `fn` in one write transaction; answers its result and the changes it made. */
  transaction<T>(fn: () => T): { result: T; changes: Change[] } {
    this.made = [];
    this.doomed = [];
    try {
      const result = inWriteTransaction(this.db, fn);
      // Spilled files freed by the change go only once it has committed (a rollback still needs them).
      for (const id of this.doomed) rmSync(this.fileOf(id), { force: true });
      return { result, changes: this.made };
    } finally {
      this.made = [];
      this.doomed = null;
    }
  }
}

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export function noSpace(path: string): WorkspaceError {
  return new WorkspaceError("ENOSPC", "no space left (the workspace's quota; nothing was written), write", path);
}
