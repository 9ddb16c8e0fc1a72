/**
 * File system semantics over the store, as node:fs/promises has them (ENOENT, EEXIST, ENOTDIR,
 * EISDIR, ENOTEMPTY), each function run inside the caller's transaction. One difference, for agents
 * that write deep paths without a mkdir first: writing a file creates its missing parent directories.
 */
import { WorkspaceError } from "../../errors.ts";
import { ancestorsOf, isWithin, parentOf } from "./paths.ts";
import type { Entry, WorkspaceStore } from "./store.ts";

export function fail(code: string, what: string, path: string): never {
  const messages: Record<string, string> = {
    ENOENT: "no such file or directory", EEXIST: "file already exists", ENOTDIR: "not a directory",
    EISDIR: "illegal operation on a directory", ENOTEMPTY: "directory not empty", EINVAL: "invalid argument",
  };
  throw new WorkspaceError(code, `${messages[code] ?? code}, ${what}`, path);
}

/** The entry at `path`, or ENOENT. The root is a directory that always exists. */
export function existing(store: WorkspaceStore, path: string, what: string): Entry {
  if (path === "") return { path: "", type: "dir", version: 0, size: 0, mtime: 0, content: null };
  return store.entry(path) ?? fail("ENOENT", what, path);
}

/** Creates `path`'s missing parents; a parent that is a file is ENOTDIR. */
export function ensureParents(store: WorkspaceStore, path: string, what: string): void {
  for (const dir of ancestorsOf(path)) {
    const e = store.entry(dir);
    if (!e) store.addDir(dir);
    else if (e.type !== "dir") fail("ENOTDIR", what, dir);
  }
}

/** Checks, before any bytes are stored, that a file may be written at `path`. */
export function checkWritable(store: WorkspaceStore, path: string, what: string): Entry | undefined {
  if (path === "") fail("EISDIR", what, path);
  for (const dir of ancestorsOf(path)) {
    const e = store.entry(dir);
    if (!e) break;
    if (e.type !== "dir") fail("ENOTDIR", what, dir);
  }
  const e = store.entry(path);
  if (e?.type === "dir") fail("EISDIR", what, path);
  return e;
}

export function writeFile(store: WorkspaceStore, path: string, content: number, size: number, what = "write"): number {
  checkWritable(store, path, what);
  ensureParents(store, path, what);
  return store.setFile(path, content, size);
}

export function mkdir(store: WorkspaceStore, path: string, recursive: boolean): string | undefined {
  if (path === "") return recursive ? undefined : fail("EEXIST", "mkdir", path);
  const e = store.entry(path);
  if (e) return e.type === "dir" && recursive ? undefined : fail("EEXIST", "mkdir", path);
  const parent = parentOf(path);
  const p = parent === "" ? undefined : store.entry(parent);
  if (parent !== "" && !p && !recursive) fail("ENOENT", "mkdir", path);
  if (p && p.type !== "dir") fail("ENOTDIR", "mkdir", path);
  // Node answers the first directory it created, for a recursive mkdir.
  const first = ancestorsOf(path).find((d) => !store.entry(d)) ?? path;
  ensureParents(store, path, "mkdir");
  store.addDir(path);
  return recursive ? first : undefined;
}

export function rm(store: WorkspaceStore, path: string, recursive: boolean, force: boolean): void {
  if (path === "") fail("EINVAL", "rm of the workspace root", path);
  const e = store.entry(path);
  if (!e) return force ? undefined : fail("ENOENT", "rm", path);
  if (e.type === "dir" && !recursive) fail("EISDIR", "rm (use recursive)", path);
  // Deepest first, so every directory is empty when it goes.
  for (const child of store.under(path).reverse()) store.removeEntry(child);
  store.removeEntry(e);
}

export function rename(store: WorkspaceStore, from: string, to: string): void {
  const src = existing(store, from, "rename");
  if (from === "" || to === "") fail("EINVAL", "rename of the workspace root", from);
  if (from === to) return;
  if (src.type === "dir" && isWithin(to, from)) fail("EINVAL", "rename of a directory into itself", to);
  replaceable(store, src, to, "rename");
  ensureParents(store, to, "rename");
  const moved = [src, ...store.under(from)];
  for (const e of moved) placeCopy(store, e, to + e.path.slice(from.length));
  for (const e of [...moved].reverse()) store.removeEntry(e);
}

export function cp(store: WorkspaceStore, from: string, to: string, recursive: boolean): void {
  const src = existing(store, from, "cp");
  if (src.type === "dir" && !recursive) fail("EISDIR", "cp (use recursive)", from);
  if (from === to) fail("EINVAL", "cp to itself", to);
  if (src.type === "dir" && isWithin(to, from)) fail("EINVAL", "cp of a directory into itself", to);
  const dest = store.entry(to);
  if (dest && dest.type !== src.type) fail(dest.type === "dir" ? "EISDIR" : "ENOTDIR", "cp", to);
  ensureParents(store, to, "cp");
  for (const e of [src, ...store.under(from)]) {
    const target = to + e.path.slice(from.length);
    const there = store.entry(target);
    if (there && there.type !== e.type) fail(there.type === "dir" ? "EISDIR" : "ENOTDIR", "cp", target);
    if (e.type === "file") store.setFile(target, e.content!, e.size);
    else if (!there) store.addDir(target);
  }
}

/** `to` may take `src`'s place: absent, a file replaced by a file, or an empty directory by a directory. */
function replaceable(store: WorkspaceStore, src: Entry, to: string, what: string): void {
  const dest = store.entry(to);
  if (!dest) {
    checkWritable(store, to, what);
    return;
  }
  if (src.type === "file" && dest.type === "dir") fail("EISDIR", what, to);
  if (src.type === "dir" && dest.type === "file") fail("ENOTDIR", what, to);
  if (dest.type === "dir") {
    if (store.children(to).length > 0) fail("ENOTEMPTY", what, to);
    store.removeEntry(dest);
  }
}

function placeCopy(store: WorkspaceStore, e: Entry, target: string): void {
  if (e.type === "file") store.setFile(target, e.content!, e.size);
  else store.addDir(target);
}
