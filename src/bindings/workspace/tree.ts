/**
 * File system semantics over the store, as node:fs/promises has them (ENOENT, EEXIST, ENOTDIR,
 * EISDIR, ENOTEMPTY), each function run inside the caller's transaction (a WorkspaceTx). One difference, for agents
 * that write deep paths without a mkdir first: writing a file creates its missing parent directories.
 */
import { WorkspaceError } from "../../errors.ts";
import { ancestorsOf, isWithin, parentOf } from "./paths.ts";
import type { Entry, WorkspaceReads, WorkspaceTx } from "./store.ts";

export function fail(code: string, what: string, path: string): never {
  const messages: Record<string, string> = {
    ENOENT: "no such file or directory", EEXIST: "file already exists", ENOTDIR: "not a directory",
    EISDIR: "illegal operation on a directory", ENOTEMPTY: "directory not empty", EINVAL: "invalid argument",
  };
  throw new WorkspaceError(code, `${messages[code] ?? code}, ${what}`, path);
}

/** The entry at `path`, or ENOENT. The root is a directory that always exists. */
export async function existing(store: WorkspaceReads, path: string, what: string): Promise<Entry> {
  if (path === "") return { path: "", type: "dir", version: 0, size: 0, mtime: 0, content: null };
  return (await store.entry(path)) ?? fail("ENOENT", what, path);
}

/** Creates `path`'s missing parents; a parent that is a file is ENOTDIR. */
export async function ensureParents(store: WorkspaceTx, path: string, what: string): Promise<void> {
  for (const dir of ancestorsOf(path)) {
    const e = await store.entry(dir);
    if (!e) await store.addDir(dir);
    else if (e.type !== "dir") fail("ENOTDIR", what, dir);
  }
}

/** Checks, before any bytes are stored, that a file may be written at `path`. */
export async function checkWritable(store: WorkspaceReads, path: string, what: string): Promise<Entry | undefined> {
  if (path === "") fail("EISDIR", what, path);
  for (const dir of ancestorsOf(path)) {
    const e = await store.entry(dir);
    if (!e) break;
    if (e.type !== "dir") fail("ENOTDIR", what, dir);
  }
  const e = await store.entry(path);
  if (e?.type === "dir") fail("EISDIR", what, path);
  return e;
}

export async function writeFile(store: WorkspaceTx, path: string, content: number, size: number, what = "write"): Promise<number> {
  await checkWritable(store, path, what);
  await ensureParents(store, path, what);
  return await store.setFile(path, content, size);
}

export async function mkdir(store: WorkspaceTx, path: string, recursive: boolean): Promise<string | undefined> {
  if (path === "") return recursive ? undefined : fail("EEXIST", "mkdir", path);
  const e = await store.entry(path);
  if (e) return e.type === "dir" && recursive ? undefined : fail("EEXIST", "mkdir", path);
  const parent = parentOf(path);
  const p = parent === "" ? undefined : await store.entry(parent);
  if (parent !== "" && !p && !recursive) fail("ENOENT", "mkdir", path);
  if (p && p.type !== "dir") fail("ENOTDIR", "mkdir", path);
  // Node answers the first directory it created, for a recursive mkdir.
  let first = path;
  for (const d of ancestorsOf(path)) {
    if (!(await store.entry(d))) {
      first = d;
      break;
    }
  }
  await ensureParents(store, path, "mkdir");
  await store.addDir(path);
  return recursive ? first : undefined;
}

export async function rm(store: WorkspaceTx, path: string, recursive: boolean, force: boolean): Promise<void> {
  if (path === "") fail("EINVAL", "rm of the workspace root", path);
  const e = await store.entry(path);
  if (!e) return force ? undefined : fail("ENOENT", "rm", path);
  if (e.type === "dir" && !recursive) fail("EISDIR", "rm (use recursive)", path);
  // Deepest first, so every directory is empty when it goes.
  for (const child of (await store.under(path)).reverse()) await store.removeEntry(child);
  await store.removeEntry(e);
}

export async function rename(store: WorkspaceTx, from: string, to: string): Promise<void> {
  const src = await existing(store, from, "rename");
  if (from === "" || to === "") fail("EINVAL", "rename of the workspace root", from);
  if (from === to) return;
  if (src.type === "dir" && isWithin(to, from)) fail("EINVAL", "rename of a directory into itself", to);
  await replaceable(store, src, to, "rename");
  await ensureParents(store, to, "rename");
  const moved = [src, ...await store.under(from)];
  for (const e of moved) await placeCopy(store, e, to + e.path.slice(from.length));
  for (const e of [...moved].reverse()) await store.removeEntry(e);
}

export async function cp(store: WorkspaceTx, from: string, to: string, recursive: boolean): Promise<void> {
  const src = await existing(store, from, "cp");
  if (src.type === "dir" && !recursive) fail("EISDIR", "cp (use recursive)", from);
  if (from === to) fail("EINVAL", "cp to itself", to);
  if (src.type === "dir" && isWithin(to, from)) fail("EINVAL", "cp of a directory into itself", to);
  const dest = await store.entry(to);
  if (dest && dest.type !== src.type) fail(dest.type === "dir" ? "EISDIR" : "ENOTDIR", "cp", to);
  await ensureParents(store, to, "cp");
  for (const e of [src, ...await store.under(from)]) {
    const target = to + e.path.slice(from.length);
    const there = await store.entry(target);
    if (there && there.type !== e.type) fail(there.type === "dir" ? "EISDIR" : "ENOTDIR", "cp", target);
    if (e.type === "file") await store.setFile(target, e.content!, e.size);
    else if (!there) await store.addDir(target);
  }
}

/** `to` may take `src`'s place: absent, a file replaced by a file, or an empty directory by a directory. */
async function replaceable(store: WorkspaceTx, src: Entry, to: string, what: string): Promise<void> {
  const dest = await store.entry(to);
  if (!dest) {
    await checkWritable(store, to, what);
    return;
  }
  if (src.type === "file" && dest.type === "dir") fail("EISDIR", what, to);
  if (src.type === "dir" && dest.type === "file") fail("ENOTDIR", what, to);
  if (dest.type === "dir") {
    if ((await store.children(to)).length > 0) fail("ENOTEMPTY", what, to);
    await store.removeEntry(dest);
  }
}

async function placeCopy(store: WorkspaceTx, e: Entry, target: string): Promise<void> {
  if (e.type === "file") await store.setFile(target, e.content!, e.size);
  else await store.addDir(target);
}
