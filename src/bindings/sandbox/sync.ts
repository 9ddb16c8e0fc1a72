/**
 * The workspace's round trip through a real directory: copied out before a command (owned by the
 * sandbox's user, so the command can write it) and, after it, what changed is written back in one
 * workspace commit that expects each file still to be at the version copied out, so a concurrent
 * writer is never overwritten (WorkspaceConflictError instead, nothing written). The directory is
 * read back without following links: a symbolic link (which the workspace cannot hold) or any other
 * special file is skipped, never read through, since it could point at the host's files.
 */
import { createHash } from "node:crypto";
import { chownSync, constants, fstatSync, lstatSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WorkspaceError } from "../../errors.ts";
import type { CommitOp, Workspace } from "../workspace/index.ts";

/** What was copied out: each file's version and content hash, and the directories. */
export interface Snapshot {
  files: Map<string, { version: number; sha256: string }>;
  dirs: Set<string>;
}

export interface SyncReport {
  /** Files written (new or changed) and deleted in the workspace. */
  written: string[];
  deleted: string[];
  /** Entries the workspace cannot hold (symbolic links, sockets, fifos), left out. */
  skipped: string[];
}

/** Copies every file and directory of the workspace into `dir`, owned by `uid` when given. */
export async function materialise(ws: Workspace, dir: string, uid: number | undefined): Promise<Snapshot> {
  const snapshot: Snapshot = { files: new Map(), dirs: new Set() };
  const own = (path: string) => uid !== undefined && chownSync(path, uid, uid);
  own(dir);
  for (const entry of await ws.list()) {
    const target = join(dir, entry.path);
    if (entry.type === "dir") {
      mkdirSync(target, { recursive: true, mode: 0o755 });
      snapshot.dirs.add(entry.path);
    } else {
      const file = await ws.open(entry.path);
      const bytes = await file.bytes();
      writeFileSync(target, bytes, { mode: 0o644 });
      snapshot.files.set(entry.path, { version: file.version, sha256: sha256(bytes) });
    }
    own(target);
  }
  return snapshot;
}

/**
 * Writes what the command changed in `dir` back to the workspace: one commit, then directories. The
 * files are read into memory for the commit, so more than `maxBytes` of them in all is refused
 * (ENOSPC, nothing written) before any is read.
 */
export async function writeBack(ws: Workspace, dir: string, before: Snapshot, maxBytes: number): Promise<SyncReport> {
  const found = { files: new Map<string, number>(), dirs: new Set<string>() };
  const skipped: string[] = [];
  walk(dir, "", found, skipped);
  const total = [...found.files.values()].reduce((a, b) => a + b, 0);
  if (total > maxBytes) throw new WorkspaceError("ENOSPC", `the command left ${total} bytes in /workspace, over the ${maxBytes} the sandbox writes back; nothing was written`);
  const after = { files: new Map([...found.files.keys()].map((p) => [p, readRegular(join(dir, p))])), dirs: found.dirs };

  const ops: CommitOp[] = [];
  const expect: Record<string, number> = {};
  for (const [path, bytes] of after.files) {
    const old = before.files.get(path);
    if (old && old.sha256 === sha256(bytes)) continue;
    ops.push({ path, content: bytes });
    expect[path] = old?.version ?? 0;
  }
  const deleted = [...before.files.keys()].filter((p) => !after.files.has(p));
  for (const path of deleted) {
    ops.push({ path, delete: true });
    expect[path] = before.files.get(path)!.version;
  }
  // A directory replaced by a file (or the reverse) is removed first, or the commit could not write.
  for (const path of [...before.dirs].filter((d) => after.files.has(d))) await ws.rm(path, { recursive: true, force: true });
  if (ops.length > 0) await ws.commit(ops, { expect });
  // Directories are not part of a commit: new empty ones are made, vanished ones removed (deepest first).
  for (const path of [...after.dirs].filter((d) => !before.dirs.has(d)).sort()) await ws.mkdir(path, { recursive: true });
  for (const path of [...before.dirs].filter((d) => !after.dirs.has(d) && !after.files.has(d)).sort().reverse()) await ws.rm(path, { recursive: true, force: true });
  return { written: ops.filter((o) => !("delete" in o)).map((o) => o.path), deleted, skipped };
}

function walk(root: string, rel: string, out: { files: Map<string, number>; dirs: Set<string> }, skipped: string[]): void {
  for (const name of readdirSync(join(root, rel))) {
    const path = rel === "" ? name : `${rel}/${name}`;
    const st = lstatSync(join(root, path));
    if (st.isDirectory()) {
      out.dirs.add(path);
      walk(root, path, out, skipped);
    } else if (st.isFile()) {
      out.files.set(path, st.size);
    } else {
      skipped.push(path);
    }
  }
}

/** A regular file's bytes, opened without following a link (the check and the read are the same file). */
function readRegular(path: string): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
