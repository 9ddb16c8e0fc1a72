/**
 * What a workspace needs from its storage, apart from the file system surface built on it (tree.ts,
 * index.ts). Entries (files and directories) point at immutable contents; a content's bytes are
 * stored and read a chunk at a time, so a large file is never held whole. Contents are shared by
 * reference (history, rename, cp, restore) and freed when nothing points at them.
 *
 * Every change takes the next number of one workspace-wide counter: that number is the changed
 * entry's version, the key of its history row and of its change record.
 *
 * Two implementations: one SQLite file per workspace (sqlite-store.ts, the default) and tables shared
 * by every host on one PostgreSQL database (postgres-store.ts).
 */
import { WorkspaceError } from "../../errors.ts";

/** Bytes per stored chunk: large enough to keep rows few, small enough to stream in a small isolate. */
export const CHUNK = 256 * 1024;
/** A content still being written after this long belongs to a writer that died: it is freed on open. */
export const ABANDONED_MS = 60 * 60 * 1000;
/** Change records kept for changes(since): older ones are dropped, and a reader that far behind is told. */
export const CHANGES_KEPT = 10_000;

export type EntryType = "file" | "dir";
export interface Entry { path: string; type: EntryType; version: number; size: number; mtime: number; content: number | null }
export type ChangeKind = "create" | "modify" | "delete" | "mkdir" | "rmdir";
export interface Change { path: string; kind: ChangeKind; version: number }
export interface HistoryRow { version: number; content: number | null; size: number; mtime: number }
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Reading the tree: from the store (committed state) or inside a transaction (its own state). */
export interface WorkspaceReads {
  entry(path: string): Promise<Entry | undefined>;
  /** A directory's entries, in path order. */
  children(dir: string): Promise<Entry[]>;
  /** Every entry under `dir` (not `dir` itself), in path (byte) order; the root's are all entries. */
  under(dir: string): Promise<Entry[]>;
  /** The workspace's version: the number of the last change. */
  version(): Promise<number>;
  /** The current files (history not counted). */
  totals(): Promise<{ bytes: number; files: number }>;
  /** A file's kept versions, newest first (content null: deleted at that version). */
  historyOf(path: string): Promise<HistoryRow[]>;
}

/** The writes a transaction makes; tree.ts checks file system rules before it calls them. */
export interface WorkspaceTx extends WorkspaceReads {
  /** Points `path` at a content (a new file or a new version of one); answers its version. */
  setFile(path: string, content: number, size: number): Promise<number>;
  addDir(path: string): Promise<number>;
  /** Removes one entry (a directory must be empty by now); a file's history gets a deletion row. */
  removeEntry(entry: Entry): Promise<void>;
}

export interface WorkspaceStore extends WorkspaceReads {
  /**
   * Writes bytes as a new pending content, a chunk at a time (each its own durable write, so a large
   * file never sits in one transaction or in memory). Past `room` bytes it fails with ENOSPC and
   * leaves nothing. A transaction's setFile() makes it used; else the caller drops it.
   */
  writeContent(source: ByteSource, room: number, path: string): Promise<{ id: number; size: number }>;
  /** A content's chunks in order, read one at a time as the consumer pulls. */
  chunksOf(id: number): AsyncGenerator<Uint8Array>;
  dropContent(id: number): Promise<void>;
  /** Changes after `since`, oldest first, at most `limit`; `truncated` if some were already dropped. */
  changesSince(since: number, limit: number): Promise<{ changes: Change[]; version: number; truncated: boolean }>;
  /**
   * Runs `fn` as one transaction, serialised with every other writer of this workspace (on any host);
   * a throw undoes all of it. Answers its result and the changes it made, once committed.
   */
  transaction<T>(fn: (tx: WorkspaceTx) => Promise<T>): Promise<{ result: T; changes: Change[] }>;
  /** Calls `onChange` when another host may have changed the workspace (where storage can tell); answers a stop function. */
  subscribe?(onChange: () => void): () => void;
  close(): void;
  /** Deletes the workspace's data. */
  destroy(): Promise<void>;
}

/** A new content: `base`'s bytes (read a chunk at a time) followed by `extra`. */
export function extendContent(store: WorkspaceStore, base: number | null, extra: ByteSource, room: number, path: string): Promise<{ id: number; size: number }> {
  async function* joined(): AsyncGenerator<Uint8Array> {
    if (base !== null) yield* store.chunksOf(base);
    yield* extra;
  }
  return store.writeContent(joined(), room, path);
}

/** A content's bytes whole (for small files, diffs). */
export async function readContent(store: WorkspaceStore, id: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of store.chunksOf(id)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Splits a byte source into CHUNK-sized pieces (the last may be shorter), failing past `room` bytes. */
export async function* chunked(source: ByteSource, room: number, path: string): AsyncGenerator<Uint8Array> {
  let size = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    if (size > room) throw noSpace(path);
    pending.push(chunk);
    pendingBytes += chunk.byteLength;
    while (pendingBytes >= CHUNK) {
      const joined = Buffer.concat(pending);
      yield joined.subarray(0, CHUNK);
      pending = joined.byteLength > CHUNK ? [joined.subarray(CHUNK)] : [];
      pendingBytes = joined.byteLength - CHUNK;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

export function noSpace(path: string): WorkspaceError {
  return new WorkspaceError("ENOSPC", "no space left (the workspace's quota; nothing was written), write", path);
}
