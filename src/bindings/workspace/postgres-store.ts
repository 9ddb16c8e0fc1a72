/**
 * A workspace's storage in PostgreSQL: tables shared by every workspace (keyed by its name) and every
 * host on the database. A content's bytes are bytea rows of CHUNK bytes, written one row per
 * statement (each committed on its own, so a 50 MB file is never one statement or held whole) and
 * read back one row per pull.
 *
 * Writers are serialised per workspace by a row lock on its row in mayfly_ws, taken first in every
 * transaction: after it, READ COMMITTED reads see everything the previous writer (on any host)
 * committed, so commit()'s version checks and the quota checks are exact, and one of two racing
 * commits fails with WorkspaceConflictError while the other lands whole.
 */
import type { PostgresBackend } from "../storage/postgres.ts";
import { parentOf } from "./paths.ts";
import { CHANNEL, onWorkspaceChange } from "./postgres-notify.ts";
import {
  ABANDONED_MS, CHANGES_KEPT, chunked,
  type ByteSource, type Change, type ChangeKind, type Entry, type HistoryRow, type WorkspaceReads, type WorkspaceStore, type WorkspaceTx,
} from "./store.ts";

const DDL = `
  CREATE TABLE IF NOT EXISTS mayfly_ws (ws text PRIMARY KEY, version bigint NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS mayfly_ws_contents (id bigserial PRIMARY KEY, ws text NOT NULL, size bigint NOT NULL, pending bigint);
  CREATE INDEX IF NOT EXISTS mayfly_ws_contents_pending ON mayfly_ws_contents (ws, pending) WHERE pending IS NOT NULL;
  CREATE TABLE IF NOT EXISTS mayfly_ws_chunks (content bigint NOT NULL, seq integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (content, seq));
  CREATE TABLE IF NOT EXISTS mayfly_ws_entries (ws text NOT NULL, path text COLLATE "C" NOT NULL, parent text COLLATE "C" NOT NULL,
    type text NOT NULL, version bigint NOT NULL, size bigint NOT NULL, mtime bigint NOT NULL, content bigint, PRIMARY KEY (ws, path));
  CREATE INDEX IF NOT EXISTS mayfly_ws_entries_parent ON mayfly_ws_entries (ws, parent, path);
  CREATE INDEX IF NOT EXISTS mayfly_ws_entries_content ON mayfly_ws_entries (ws, content);
  CREATE TABLE IF NOT EXISTS mayfly_ws_history (ws text NOT NULL, path text COLLATE "C" NOT NULL, version bigint NOT NULL,
    content bigint, size bigint NOT NULL, mtime bigint NOT NULL, PRIMARY KEY (ws, path, version));
  CREATE INDEX IF NOT EXISTS mayfly_ws_history_content ON mayfly_ws_history (ws, content);
  CREATE TABLE IF NOT EXISTS mayfly_ws_changes (ws text NOT NULL, version bigint NOT NULL, path text NOT NULL, kind text NOT NULL, PRIMARY KEY (ws, version));`;

/** A connection in a transaction, or the backend's pool. */
interface Queryable { query(text: string, params?: unknown[]): Promise<{ rows: any[] }> }

const ENTRY = "path, type, version, size, mtime, content";

function toEntry(r: Record<string, unknown>): Entry {
  return { path: r.path as string, type: r.type as Entry["type"], version: Number(r.version), size: Number(r.size), mtime: Number(r.mtime), content: r.content === null ? null : Number(r.content) };
}

/** The tree's reads, on the pool (committed state) or on a transaction's connection (its own state). */
class Reads implements WorkspaceReads {
  protected readonly q: Queryable;
  protected readonly ws: string;

  constructor(q: Queryable, ws: string) {
    this.q = q;
    this.ws = ws;
  }

  async entry(path: string): Promise<Entry | undefined> {
    const { rows } = await this.q.query(`SELECT ${ENTRY} FROM mayfly_ws_entries WHERE ws = $1 AND path = $2`, [this.ws, path]);
    return rows[0] ? toEntry(rows[0]) : undefined;
  }

  async children(dir: string): Promise<Entry[]> {
    const { rows } = await this.q.query(`SELECT ${ENTRY} FROM mayfly_ws_entries WHERE ws = $1 AND parent = $2 ORDER BY path`, [this.ws, dir]);
    return rows.map(toEntry);
  }

  async under(dir: string): Promise<Entry[]> {
    // "/" is 0x2F and "0" 0x30: in byte order ("C") the range holds exactly the paths under dir + "/".
    const { rows } = dir === ""
      ? await this.q.query(`SELECT ${ENTRY} FROM mayfly_ws_entries WHERE ws = $1 ORDER BY path`, [this.ws])
      : await this.q.query(`SELECT ${ENTRY} FROM mayfly_ws_entries WHERE ws = $1 AND path > $2 AND path < $3 ORDER BY path`, [this.ws, `${dir}/`, `${dir}0`]);
    return rows.map(toEntry);
  }

  async version(): Promise<number> {
    const { rows } = await this.q.query("SELECT version FROM mayfly_ws WHERE ws = $1", [this.ws]);
    return Number(rows[0]?.version ?? 0);
  }

  async totals(): Promise<{ bytes: number; files: number }> {
    const { rows } = await this.q.query("SELECT coalesce(sum(size), 0) AS bytes, count(*) AS files FROM mayfly_ws_entries WHERE ws = $1 AND type = 'file'", [this.ws]);
    return { bytes: Number(rows[0].bytes), files: Number(rows[0].files) };
  }

  async historyOf(path: string): Promise<HistoryRow[]> {
    const { rows } = await this.q.query("SELECT version, content, size, mtime FROM mayfly_ws_history WHERE ws = $1 AND path = $2 ORDER BY version DESC", [this.ws, path]);
    return rows.map((r) => ({ version: Number(r.version), content: r.content === null ? null : Number(r.content), size: Number(r.size), mtime: Number(r.mtime) }));
  }
}

/** One transaction's writes, on its connection, after it has locked the workspace's row. */
class Tx extends Reads implements WorkspaceTx {
  readonly made: Change[] = [];
  private readonly history: number;

  constructor(q: Queryable, ws: string, history: number) {
    super(q, ws);
    this.history = history;
  }

  /** Records that `path` changed: the next version number, its change row and (for files) its history row. */
  private async record(path: string, kind: ChangeKind, file?: { content: number | null; size: number; mtime: number }): Promise<number> {
    const { rows } = await this.q.query("UPDATE mayfly_ws SET version = version + 1 WHERE ws = $1 RETURNING version", [this.ws]);
    const version = Number(rows[0].version);
    await this.q.query("INSERT INTO mayfly_ws_changes VALUES ($1, $2, $3, $4)", [this.ws, version, path, kind]);
    if (version % 100 === 0) await this.q.query("DELETE FROM mayfly_ws_changes WHERE ws = $1 AND version <= $2", [this.ws, version - CHANGES_KEPT]);
    if (file) {
      await this.q.query("INSERT INTO mayfly_ws_history VALUES ($1, $2, $3, $4, $5, $6)", [this.ws, path, version, file.content, file.size, file.mtime]);
      const old = await this.q.query("DELETE FROM mayfly_ws_history WHERE ws = $1 AND path = $2 AND version IN (SELECT version FROM mayfly_ws_history WHERE ws = $1 AND path = $2 ORDER BY version DESC OFFSET $3) RETURNING content", [this.ws, path, this.history]);
      for (const row of old.rows) await this.release(row.content === null ? null : Number(row.content));
    }
    this.made.push({ path, kind, version });
    return version;
  }

  /** Frees a content nothing points at any more. */
  private async release(id: number | null): Promise<void> {
    if (id === null) return;
    const { rows } = await this.q.query(
      `SELECT EXISTS (SELECT 1 FROM mayfly_ws_entries WHERE ws = $1 AND content = $2) OR EXISTS (SELECT 1 FROM mayfly_ws_history WHERE ws = $1 AND content = $2) AS used,
        (SELECT pending FROM mayfly_ws_contents WHERE id = $2) AS pending`, [this.ws, id]);
    if (!rows[0].used && rows[0].pending === null) await dropContent(this.q, id);
  }

  async setFile(path: string, content: number, size: number): Promise<number> {
    const old = await this.entry(path);
    const mtime = Date.now();
    await this.q.query("UPDATE mayfly_ws_contents SET pending = NULL WHERE id = $1", [content]);
    const version = await this.record(path, old ? "modify" : "create", { content, size, mtime });
    await this.q.query(
      `INSERT INTO mayfly_ws_entries VALUES ($1, $2, $3, 'file', $4, $5, $6, $7)
       ON CONFLICT (ws, path) DO UPDATE SET version = excluded.version, size = excluded.size, mtime = excluded.mtime, content = excluded.content`,
      [this.ws, path, parentOf(path), version, size, mtime, content]);
    if (old?.content != null) await this.release(old.content);
    return version;
  }

  async addDir(path: string): Promise<number> {
    const mtime = Date.now();
    const version = await this.record(path, "mkdir");
    await this.q.query("INSERT INTO mayfly_ws_entries VALUES ($1, $2, $3, 'dir', $4, 0, $5, NULL)", [this.ws, path, parentOf(path), version, mtime]);
    return version;
  }

  async removeEntry(entry: Entry): Promise<void> {
    await this.q.query("DELETE FROM mayfly_ws_entries WHERE ws = $1 AND path = $2", [this.ws, entry.path]);
    if (entry.type === "dir") await this.record(entry.path, "rmdir");
    else {
      await this.record(entry.path, "delete", { content: null, size: 0, mtime: Date.now() });
      await this.release(entry.content);
    }
  }
}

async function dropContent(q: Queryable, id: number): Promise<void> {
  await q.query("DELETE FROM mayfly_ws_chunks WHERE content = $1", [id]);
  await q.query("DELETE FROM mayfly_ws_contents WHERE id = $1", [id]);
}

export class PostgresWorkspaceStore extends Reads implements WorkspaceStore {
  private readonly backend: PostgresBackend;
  private readonly history: number;
  private prepared: Promise<void> | undefined;

  constructor(options: { backend: PostgresBackend; name: string; history: number }) {
    super(options.backend, options.name);
    this.backend = options.backend;
    this.history = options.history;
  }

  /** Tables, the workspace's row, and the contents of writers that died mid-write freed. */
  private async prepare(): Promise<void> {
    await this.backend.migrate("workspace", DDL);
    await this.backend.query("INSERT INTO mayfly_ws (ws) VALUES ($1) ON CONFLICT DO NOTHING", [this.ws]);
    const stale = await this.backend.query("SELECT id FROM mayfly_ws_contents WHERE ws = $1 AND pending IS NOT NULL AND pending < $2", [this.ws, Date.now() - ABANDONED_MS]);
    for (const { id } of stale.rows) await dropContent(this.backend, Number(id));
  }

  /** Every public method waits for prepare() first (a failed one is retried: the database may be back). */
  private ready(): Promise<void> {
    this.prepared ??= this.prepare().catch((e: unknown) => {
      this.prepared = undefined;
      throw e;
    });
    return this.prepared;
  }

  override async entry(path: string): Promise<Entry | undefined> { await this.ready(); return super.entry(path); }
  override async children(dir: string): Promise<Entry[]> { await this.ready(); return super.children(dir); }
  override async under(dir: string): Promise<Entry[]> { await this.ready(); return super.under(dir); }
  override async version(): Promise<number> { await this.ready(); return super.version(); }
  override async totals(): Promise<{ bytes: number; files: number }> { await this.ready(); return super.totals(); }
  override async historyOf(path: string): Promise<HistoryRow[]> { await this.ready(); return super.historyOf(path); }

  async writeContent(source: ByteSource, room: number, path: string): Promise<{ id: number; size: number }> {
    await this.ready();
    const { rows } = await this.backend.query("INSERT INTO mayfly_ws_contents (ws, size, pending) VALUES ($1, 0, $2) RETURNING id", [this.ws, Date.now()]);
    const id = Number(rows[0].id);
    let size = 0;
    let seq = 0;
    try {
      for await (const chunk of chunked(source, room, path)) {
        await this.backend.query("INSERT INTO mayfly_ws_chunks VALUES ($1, $2, $3)", [id, seq++, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)]);
        size += chunk.byteLength;
      }
      await this.backend.query("UPDATE mayfly_ws_contents SET size = $1 WHERE id = $2", [size, id]);
      return { id, size };
    } catch (e) {
      await this.dropContent(id).catch(() => {});
      throw e;
    }
  }

  async *chunksOf(id: number): AsyncGenerator<Uint8Array> {
    await this.ready();
    for (let seq = 0; ;) {
      const { rows } = await this.backend.query("SELECT seq, data FROM mayfly_ws_chunks WHERE content = $1 AND seq >= $2 ORDER BY seq LIMIT 1", [id, seq]);
      if (!rows[0]) return;
      seq = rows[0].seq + 1;
      yield rows[0].data as Buffer;
    }
  }

  async dropContent(id: number): Promise<void> {
    await dropContent(this.backend, id);
  }

  async changesSince(since: number, limit: number): Promise<{ changes: Change[]; version: number; truncated: boolean }> {
    await this.ready();
    const { rows } = await this.backend.query(
      `SELECT c.version, c.path, c.kind, w.version AS now, (SELECT min(version) FROM mayfly_ws_changes WHERE ws = $1) AS oldest
       FROM mayfly_ws w LEFT JOIN LATERAL (SELECT version, path, kind FROM mayfly_ws_changes WHERE ws = $1 AND version > $2 ORDER BY version LIMIT $3) c ON true
       WHERE w.ws = $1`, [this.ws, since, limit]);
    const changes = rows.filter((r) => r.version !== null).map((r) => ({ version: Number(r.version), path: r.path, kind: r.kind }));
    const oldest = rows[0]?.oldest === null || rows[0]?.oldest === undefined ? null : Number(rows[0].oldest);
    return { changes, version: Number(rows[0]?.now ?? 0), truncated: oldest !== null && since < oldest - 1 };
  }

  async transaction<T>(fn: (tx: WorkspaceTx) => Promise<T>): Promise<{ result: T; changes: Change[] }> {
    await this.ready();
    return this.backend.transaction(async (c) => {
      // The workspace's lock, held to COMMIT: writers on every host take turns here.
      await c.query("SELECT version FROM mayfly_ws WHERE ws = $1 FOR UPDATE", [this.ws]);
      const tx = new Tx(c, this.ws, this.history);
      const result = await fn(tx);
      // Delivered to listeners when (and only if) this commits.
      if (tx.made.length > 0) await c.query("SELECT pg_notify($1, $2)", [CHANNEL, this.ws]);
      return { result, changes: tx.made };
    });
  }

  subscribe(onChange: () => void): () => void {
    return onWorkspaceChange(this.backend, this.ws, onChange);
  }

  /** The backend is shared with other bindings: its owner closes it. */
  close(): void {}

  async destroy(): Promise<void> {
    await this.ready();
    await this.backend.transaction(async (c) => {
      await c.query("SELECT version FROM mayfly_ws WHERE ws = $1 FOR UPDATE", [this.ws]);
      await c.query("DELETE FROM mayfly_ws_chunks WHERE content IN (SELECT id FROM mayfly_ws_contents WHERE ws = $1)", [this.ws]);
      for (const table of ["mayfly_ws_contents", "mayfly_ws_entries", "mayfly_ws_history", "mayfly_ws_changes", "mayfly_ws"]) {
        await c.query(`DELETE FROM ${table} WHERE ws = $1`, [this.ws]);
      }
    });
    // Used again, the object starts a new, empty workspace of the same name.
    this.prepared = undefined;
  }
}
