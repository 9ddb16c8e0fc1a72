/**
 * A workspace: a durable virtual file system in its own SQLite file (or, with `backend`, in PostgreSQL
 * tables every host on that database shares), shaped like node:fs/promises,
 * with versions and history per file, atomic multi-file commits with optimistic locking, glob/grep/
 * diff, and change events. Placed in a worker's env (`env: { FS: workspace({ name: "repo" }) }`) it is
 * the worker's file system; the host uses the same object to seed, inspect, export and delete it.
 * `mode: "read"` restricts the worker (every write is EACCES); the host side may always write.
 * This file is the surface; storage is behind the WorkspaceStore interface (store.ts).
 */
import { EventEmitter } from "node:events";
import { WorkspaceConflictError, WorkspaceError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import { workspaceCapability } from "./capability.ts";
import type { PostgresBackend } from "../storage/postgres.ts";
import { normalisePath } from "./paths.ts";
import { DIFF_MAX_BYTES, glob, grep, unifiedDiff, type GrepMatch } from "./search.ts";
import { extendContent, noSpace, readContent, type Change, type Entry, type WorkspaceStore, type WorkspaceTx } from "./store.ts";
import { SqliteWorkspaceStore } from "./sqlite-store.ts";
import { PostgresWorkspaceStore } from "./postgres-store.ts";
import { ChangeFeed } from "./feed.ts";
import * as tree from "./tree.ts";
import { exportTar, importDirectory, importTar } from "./archive.ts";

export type { Change as WorkspaceChange } from "./store.ts";
export { workspaceFile } from "./sqlite-store.ts";

export interface WorkspaceOptions {
  /** The workspace's name: its data lives in <dataDir>/workspace/<name>.sqlite. */
  name: string;
  /** Directory for storage bindings (default ".mayfly/data" under the working directory). */
  dataDir?: string;
  /**
   * Store in PostgreSQL instead of a SQLite file: every host given the same database shares the
   * workspace (commits are serialised across hosts; change events reach watchers on every host).
   */
  backend?: PostgresBackend;
  /** What a worker may do with it (default "read-write"). */
  mode?: "read" | "read-write";
  /** Limits on the current files (history is not counted): total bytes, number of files. */
  quota?: { bytes?: number; files?: number };
  /** Versions kept per file, the current one included (default 10): what diff and restore can reach. */
  history?: number;
  /** Files larger than this many bytes are kept as files beside the SQLite file, not in it (default 8 MiB; SQLite only). */
  spillOverBytes?: number;
}

/** Data a file can be written from: text (UTF-8), bytes, or a stream of bytes. */
export type WorkspaceData = string | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
export type CommitOp = { path: string; content: string | ArrayBuffer | ArrayBufferView } | { path: string; delete: true };
export interface WorkspaceStat { type: "file" | "dir"; size: number; version: number; mtimeMs: number }

export class Workspace extends EventEmitter<{ change: [Change] }> implements Bindable {
  readonly name: string;
  readonly mode: "read" | "read-write";
  private readonly store: WorkspaceStore;
  private readonly quota: { bytes: number; files: number };
  private readonly feed: ChangeFeed;

  constructor(options: WorkspaceOptions) {
    super();
    const o = checkOptions(options);
    this.name = o.name;
    this.mode = o.mode ?? "read-write";
    const history = o.history ?? 10;
    this.store = o.backend
      ? new PostgresWorkspaceStore({ backend: o.backend, name: o.name, history })
      : new SqliteWorkspaceStore({ name: o.name, dataDir: o.dataDir ?? ".mayfly/data", history, spillOver: o.spillOverBytes ?? 8 * 1024 * 1024 });
    this.quota = { bytes: o.quota?.bytes ?? Infinity, files: o.quota?.files ?? Infinity };
    this.feed = new ChangeFeed(this.store, (change) => this.emit("change", change));
    // Other hosts' changes are followed only while someone listens: following holds a connection.
    const untyped = this as EventEmitter;
    untyped.on("newListener", (event: string | symbol) => void (event === "change" && this.feed.follow()));
    untyped.on("removeListener", (event: string | symbol) => void (event === "change" && this.listenerCount("change") === 0 && this.feed.stop()));
  }

  /** What a worker's env holds: the same operations, refused as EACCES when they write in "read" mode. */
  [BINDING](): Capability {
    return workspaceCapability(this);
  }

  // -- reading -----------------------------------------------------------------------------------

  /** A file's bytes (or text, with "utf8"), current or of a kept version. */
  async readFile(path: string, options: "utf8" | { encoding: "utf8"; version?: number }): Promise<string>;
  async readFile(path: string, options?: { encoding?: null; version?: number }): Promise<Uint8Array>;
  async readFile(path: string, options?: "utf8" | { encoding?: "utf8" | null; version?: number }): Promise<Uint8Array | string> {
    const o = typeof options === "string" ? { encoding: options } : options ?? {};
    const at = await this.contentAt(path, o.version, "open");
    const bytes = await this.bytesOf(at);
    return o.encoding === "utf8" ? bytes.toString("utf8") : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** A file (current or a kept version) to read: its version and size, then its bytes whole or as a stream. */
  async open(path: string, options: { version?: number } = {}): Promise<{ path: string; version: number; size: number; bytes(): Promise<Uint8Array>; stream(): ReadableStream<Uint8Array> }> {
    const at = await this.contentAt(path, options?.version, "open");
    return { path: at.path, version: at.version, size: at.size, bytes: () => this.bytesOf(at), stream: () => this.streamContent(at.content, at.size) };
  }

  /** A file's bytes as a stream, read from storage a chunk at a time as the consumer pulls (ENOENT and the like arrive as the stream's error). */
  createReadStream(path: string, options: { version?: number } = {}): ReadableStream<Uint8Array> {
    return lazyStream(async () => {
      const { content, size } = await this.contentAt(path, options.version, "open");
      return this.streamContent(content, size);
    });
  }

  async stat(path: string): Promise<WorkspaceStat> {
    const e = await tree.existing(this.store, normalisePath(path), "stat");
    return { type: e.type, size: e.size, version: e.path === "" ? await this.store.version() : e.version, mtimeMs: e.mtime };
  }

  /** Names in a directory, sorted; with `recursive`, every path below it (relative to it). */
  async readdir(path: string, options: { recursive?: boolean } = {}): Promise<{ name: string; type: "file" | "dir" }[]> {
    const dir = normalisePath(path);
    if ((await tree.existing(this.store, dir, "scandir")).type !== "dir") tree.fail("ENOTDIR", "scandir", dir);
    const entries = options?.recursive ? await this.store.under(dir) : await this.store.children(dir);
    return entries.map((e) => ({ name: dir === "" ? e.path : e.path.slice(dir.length + 1), type: e.type }));
  }

  /** Every entry of the workspace, in path order. */
  async list(): Promise<(WorkspaceStat & { path: string })[]> {
    return (await this.store.under("")).map((e) => ({ path: e.path, type: e.type, size: e.size, version: e.version, mtimeMs: e.mtime }));
  }

  async glob(pattern: string): Promise<string[]> {
    return glob(this.store, pattern);
  }

  /** Lines matching a regular expression (a RegExp, or its source) in the files at or under `path`. */
  async grep(pattern: RegExp | string | { source: string; flags: string }, options: { path?: string } = {}): Promise<{ matches: GrepMatch[]; truncated: boolean }> {
    const { source, flags } = typeof pattern === "string" ? { source: pattern, flags: "" } : pattern;
    const at = normalisePath(options?.path ?? "");
    const root = await tree.existing(this.store, at, "grep");
    return grep(this.store, root.type === "file" ? [root] : await this.store.under(at), String(source), String(flags ?? ""));
  }

  /** A unified diff: `a` against `b`, or an earlier version of `a` (`{ version }`) against its current content. */
  async diff(a: string, b: string | { version: number }): Promise<string> {
    const side = async (path: unknown, version?: number) => {
      const at = await this.contentAt(path, version, "diff");
      if (at.size > DIFF_MAX_BYTES) throw new WorkspaceError("EFBIG", `file too large to diff (over ${DIFF_MAX_BYTES} bytes)`, at.path);
      return { label: `${at.path}@${at.version}`, text: (await this.bytesOf(at)).toString("utf8") };
    };
    if (typeof b === "string") return unifiedDiff(await side(a), await side(b));
    return unifiedDiff(await side(a, b?.version), await side(a));
  }

  /** A file's kept versions, newest first. */
  async history(path: string): Promise<{ version: number; size: number; mtimeMs: number; deleted: boolean }[]> {
    return (await this.store.historyOf(normalisePath(path))).map((h) => ({ version: h.version, size: h.size, mtimeMs: h.mtime, deleted: h.content === null }));
  }

  /** What changed after version `since` (oldest first, at most 1000), and the workspace's version now. */
  async changes(since = 0): Promise<{ changes: Change[]; version: number; truncated: boolean }> {
    return this.store.changesSince(Number(since) || 0, 1000);
  }

  // -- writing -----------------------------------------------------------------------------------

  /** Writes a file (creating missing parent directories); a stream is stored as it arrives. Answers its version. */
  async writeFile(path: string, data: WorkspaceData): Promise<number> {
    const p = normalisePath(path);
    const old = await tree.checkWritable(this.store, p, "open");
    const written = await this.store.writeContent(chunksOf(data), await this.room(old), p);
    return this.apply(async (s) => {
      const version = await tree.writeFile(s, p, written.id, written.size, "open");
      // After the write, in its transaction: room() above was read before it, so a concurrent
      // writer (on this host or another) may have taken the space since.
      await this.checkQuota(s, [{ path: p, size: written.size }]);
      return version;
    }, [written.id]);
  }

  async appendFile(path: string, data: WorkspaceData): Promise<number> {
    const p = normalisePath(path);
    const old = await tree.checkWritable(this.store, p, "open");
    const written = await extendContent(this.store, old?.content ?? null, chunksOf(data), await this.room(old), p);
    return this.apply(async (s) => {
      // Someone else wrote the file meanwhile: appending to what we read would lose their write.
      const now = await s.entry(p);
      if (now?.content !== old?.content) throw new WorkspaceConflictError([{ path: p, expected: old?.version ?? 0, actual: now?.version ?? 0 }]);
      const version = await tree.writeFile(s, p, written.id, written.size, "open");
      await this.checkQuota(s, [{ path: p, size: written.size }]);
      return version;
    }, [written.id]);
  }

  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<string | undefined> {
    const p = normalisePath(path);
    return this.apply((s) => tree.mkdir(s, p, !!options?.recursive));
  }

  async rm(path: string, options: { recursive?: boolean; force?: boolean } = {}): Promise<void> {
    const p = normalisePath(path);
    await this.apply((s) => tree.rm(s, p, !!options?.recursive, !!options?.force));
  }

  async rename(from: string, to: string): Promise<void> {
    const [a, b] = [normalisePath(from), normalisePath(to)];
    await this.apply((s) => tree.rename(s, a, b));
  }

  async cp(from: string, to: string, options: { recursive?: boolean } = {}): Promise<void> {
    const [a, b] = [normalisePath(from), normalisePath(to)];
    await this.apply(async (s) => {
      await tree.cp(s, a, b, !!options?.recursive);
      await this.checkQuota(s, []);
    });
  }

  /**
   * Writes and deletes several files at once, or nothing: each `expect` entry is the version a path
   * must have now (0: must not exist), else WorkspaceConflictError. Answers the versions written. The
   * check and the writes are one transaction, serialised with every other writer on every host.
   */
  async commit(ops: CommitOp[], options: { expect?: Record<string, number> } = {}): Promise<{ version: number; files: Record<string, number> }> {
    if (!Array.isArray(ops)) throw new WorkspaceError("EINVAL", "commit() takes an array of { path, content } or { path, delete: true }");
    const expect = Object.entries(options?.expect ?? {}).map(([path, version]) => ({ path: normalisePath(path), expected: Number(version) }));
    const planned = ops.map((op) => {
      const path = normalisePath(op?.path);
      if ("delete" in op && op.delete === true) return { path, delete: true as const };
      const content = (op as { content?: unknown }).content;
      if (typeof content !== "string" && !ArrayBuffer.isView(content) && !(content instanceof ArrayBuffer)) throw new WorkspaceError("EINVAL", "a commit's content must be text or bytes", path);
      return { path, content };
    });
    if (new Set(planned.map((p) => p.path)).size !== planned.length) throw new WorkspaceError("EINVAL", "a commit names a path twice");
    const stored: { path: string; id: number; size: number }[] = [];
    try {
      for (const op of planned) {
        if ("delete" in op) continue;
        const written = await this.store.writeContent(chunksOf(op.content), this.quota.bytes, op.path);
        stored.push({ path: op.path, ...written });
      }
    } catch (e) {
      for (const s of stored) await this.store.dropContent(s.id);
      throw e;
    }
    return this.apply(async (s) => {
      const stale = [];
      for (const x of expect) {
        const actual = (await s.entry(x.path))?.version ?? 0;
        if (actual !== x.expected) stale.push({ ...x, actual });
      }
      if (stale.length > 0) throw new WorkspaceConflictError(stale);
      const files: Record<string, number> = {};
      for (const op of planned) {
        if ("delete" in op) {
          await tree.rm(s, op.path, false, false);
          files[op.path] = 0;
        } else {
          const w = stored.find((x) => x.path === op.path)!;
          files[op.path] = await tree.writeFile(s, op.path, w.id, w.size);
        }
      }
      await this.checkQuota(s, []);
      return { version: await s.version(), files };
    }, stored.map((x) => x.id));
  }

  /** Makes a kept version of a file its current content again (as a new version). */
  async restore(path: string, version: number): Promise<number> {
    const at = await this.contentAt(path, version, "restore");
    return this.apply(async (s) => {
      const version = await tree.writeFile(s, at.path, at.content, at.size, "restore");
      await this.checkQuota(s, []);
      return version;
    });
  }

  // -- host side: seeding, archives, events, lifetime ----------------------------------------------

  /** Copies a host directory's files into the workspace (under `into`, default the root). */
  async importDirectory(dir: string, into = ""): Promise<number> {
    return importDirectory(this, dir, into);
  }

  /** The workspace (or a directory of it) as a tar stream, read from storage as it is consumed. */
  exportTar(path = ""): ReadableStream<Uint8Array> {
    return exportTar((async () => {
      const at = normalisePath(path);
      const root = await tree.existing(this.store, at, "export");
      const entries = root.type === "file" ? [root] : await this.store.under(at);
      return entries.map((e) => ({ path: e.path, type: e.type, mtime: e.mtime, size: e.size, read: () => this.streamContent(e.content!, e.size) }));
    })());
  }

  /** Writes a tar's files and directories into the workspace (under `into`); answers how many files. */
  async importTar(tar: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, into = ""): Promise<number> {
    return importTar(this, tar, normalisePath(into));
  }

  /**
   * Calls `listener` with every change made through this object and, on PostgreSQL, through any other
   * host's; answers a function that stops it.
   */
  watch(listener: (change: Change) => void): () => void {
    this.on("change", listener);
    return () => void this.off("change", listener);
  }

  /** Closes the workspace and deletes its data. */
  async destroy(): Promise<void> {
    this.feed.stop();
    await this.store.destroy();
  }

  close(): void {
    this.feed.stop();
    this.store.close();
  }

  // -- internals -----------------------------------------------------------------------------------

  /** The bytes a new content for `old`'s path may take under the byte quota. */
  private async room(old: Entry | undefined): Promise<number> {
    if (this.quota.bytes === Infinity) return Infinity;
    return this.quota.bytes - ((await this.store.totals()).bytes - (old?.size ?? 0));
  }

  /** Inside a transaction, after its writes: the quota holds, or ENOSPC and the transaction is undone. */
  private async checkQuota(s: WorkspaceTx, written: { path: string; size: number }[]): Promise<void> {
    if (this.quota.bytes === Infinity && this.quota.files === Infinity) return;
    const totals = await s.totals();
    if (totals.bytes > this.quota.bytes) throw noSpace(written[0]?.path ?? "");
    if (totals.files > this.quota.files) throw new WorkspaceError("ENOSPC", `workspace is limited to ${this.quota.files} files; nothing was written`);
  }

  /** Runs a change in one transaction, frees `contents` written for it if it fails, and announces what changed. */
  private async apply<T>(fn: (s: WorkspaceTx) => Promise<T>, contents: number[] = []): Promise<T> {
    let done: { result: T; changes: Change[] };
    try {
      done = await this.store.transaction(fn);
    } catch (e) {
      for (const id of contents) await this.store.dropContent(id).catch(() => {});
      throw e;
    }
    for (const change of done.changes) this.feed.announce(change);
    return done.result;
  }

  /** The content of a file, current or at a kept version. */
  private async contentAt(path: unknown, version: number | undefined, what: string): Promise<{ path: string; version: number; content: number; size: number }> {
    const p = normalisePath(path);
    if (version !== undefined) {
      const h = (await this.store.historyOf(p)).find((x) => x.version === Number(version));
      if (!h || h.content === null) tree.fail("ENOENT", `${what} (version ${version} is not kept)`, p);
      return { path: p, version: h.version, content: h.content, size: h.size };
    }
    const e = await tree.existing(this.store, p, what);
    if (e.type === "dir") tree.fail("EISDIR", what, p);
    return { path: p, version: e.version, content: e.content!, size: e.size };
  }

  /** A content's bytes whole; fewer than its size means it was freed while being read. */
  private async bytesOf(at: { content: number; size: number }): Promise<Buffer> {
    const bytes = await readContent(this.store, at.content);
    if (bytes.byteLength !== at.size) throw new WorkspaceError("EIO", "the file changed past its kept history while being read");
    return bytes;
  }

  private streamContent(content: number, size: number): ReadableStream<Uint8Array> {
    const chunks = this.store.chunksOf(content);
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const next = await chunks.next();
        if (!next.done) {
          sent += next.value.byteLength;
          return controller.enqueue(next.value);
        }
        // Fewer bytes than the file has: its content was freed while being read (overwritten past its history).
        if (sent !== size) controller.error(new WorkspaceError("EIO", "the file changed past its kept history while being read"));
        else controller.close();
      },
      cancel: async () => void await chunks.return(undefined),
    }, { highWaterMark: 0 });
  }
}

/** A stream that opens its source on the first read, so a synchronous caller gets errors through the stream. */
function lazyStream(open: () => Promise<ReadableStream<Uint8Array>>): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      reader ??= (await open()).getReader();
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel: async (reason) => void await reader?.cancel(reason),
  }, { highWaterMark: 0 });
}

/** A workspace for a worker's env (or for the host's own use). */
export function workspace(options: WorkspaceOptions): Workspace {
  return new Workspace(options);
}

function checkOptions(o: WorkspaceOptions): WorkspaceOptions {
  if (typeof o?.name !== "string") throw new TypeError("workspace() needs a name.");
  if (o.mode !== undefined && o.mode !== "read" && o.mode !== "read-write") throw new TypeError(`workspace() mode must be "read" or "read-write", not ${JSON.stringify(o.mode)}.`);
  if (o.history !== undefined && !(Number.isInteger(o.history) && o.history >= 1 && o.history <= 10_000)) throw new RangeError("workspace() history must be an integer from 1 to 10000.");
  if (o.spillOverBytes !== undefined && !(typeof o.spillOverBytes === "number" && o.spillOverBytes >= 0)) throw new RangeError("workspace() spillOverBytes must be a number of at least 0.");
  for (const [k, v] of Object.entries(o.quota ?? {})) {
    if (!(typeof v === "number" && v >= 0)) throw new RangeError(`workspace() quota.${k} must be a number of at least 0.`);
  }
  return o;
}

/** Data to store, as byte chunks. */
async function* chunksOf(data: WorkspaceData): AsyncGenerator<Uint8Array> {
  if (typeof data === "string") yield Buffer.from(data, "utf8");
  else if (ArrayBuffer.isView(data)) yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else if (data instanceof ArrayBuffer) yield new Uint8Array(data);
  else if (data && typeof (data as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") {
    for await (const chunk of data as AsyncIterable<Uint8Array>) {
      if (!(chunk instanceof Uint8Array)) throw new WorkspaceError("EINVAL", "a file's stream must yield bytes");
      yield chunk;
    }
  } else throw new WorkspaceError("EINVAL", "file data must be a string, bytes or a stream of bytes");
}
