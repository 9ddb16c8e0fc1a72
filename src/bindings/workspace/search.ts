/**
 * glob, grep and diff over a workspace. Patterns come from guests and run in the host, so a regular
 * expression is run inside a node:vm context with a timeout: a catastrophic pattern costs its caller
 * an error after GREP_MS, not the host its event loop.
 */
import { posix } from "node:path";
import vm from "node:vm";
import { createTwoFilesPatch } from "diff";
import { WorkspaceError } from "../../errors.ts";
import type { Entry, WorkspaceStore } from "./store.ts";

const GREP_MS = 1000;
const GREP_MAX_MATCHES = 1000;
/** Lines longer than this are matched on their first LINE_MAX characters (minified files). */
const LINE_MAX = 4096;
/** Files larger than this are not diffed (a diff holds both sides in memory). */
export const DIFF_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Files (not directories) whose path matches a glob: `*`, `**`, `?`, `[...]`, `{a,b}` (path.matchesGlob).
 * Brace expansion and stars can cost exponential time ("{a,b}" × 20, "*a*a*a…b"), so the matching runs
 * under the same vm timeout as grep.
 */
export function glob(store: WorkspaceStore, pattern: string): string[] {
  if (typeof pattern !== "string" || pattern === "" || pattern.length > 1024) throw new WorkspaceError("EINVAL", "glob() takes a pattern string of 1 to 1024 characters");
  const paths = store.under("").filter((e) => e.type === "file").map((e) => e.path);
  const context = vm.createContext({ paths, pattern: pattern.replace(/^(\.\/)+/, ""), matches: posix.matchesGlob });
  try {
    return GLOB.runInContext(context, { timeout: GREP_MS }) as string[];
  } catch {
    throw new WorkspaceError("ETIMEDOUT", `glob took longer than ${GREP_MS} ms (simplify the pattern)`);
  }
}

const GLOB = new vm.Script("paths.filter((p) => matches(p, pattern))");

export interface GrepMatch { path: string; line: number; text: string }

/** Lines matching `source` (a RegExp's source and flags) in the files at or under `path`; binary files are skipped. */
export function grep(store: WorkspaceStore, files: Entry[], source: string, flags: string): { matches: GrepMatch[]; truncated: boolean } {
  const context = vm.createContext({ source, flags: flags.replace(/[gy]/g, ""), lines: [] as string[] });
  const compile = new vm.Script("re = new RegExp(source, flags)");
  const test = new vm.Script("lines.map((l) => re.test(l))");
  try {
    compile.runInContext(context, { timeout: GREP_MS });
  } catch (e) {
    throw new WorkspaceError("EINVAL", `grep pattern is not a valid regular expression (${(e as Error).message})`);
  }
  const deadline = Date.now() + GREP_MS;
  const matches: GrepMatch[] = [];
  for (const file of files) {
    if (file.type !== "file" || file.content === null) continue;
    let lineNo = 0;
    for (const lines of linesOf(store, file.content)) {
      if (lines === null) break; // binary
      context.lines = lines.map((l) => l.slice(0, LINE_MAX));
      const left = deadline - Date.now();
      let hits: boolean[] | undefined;
      try {
        if (left > 0) hits = test.runInContext(context, { timeout: left }) as boolean[];
      } catch {
        // The vm's timeout: the pattern backtracked too long.
      }
      if (!hits) throw new WorkspaceError("ETIMEDOUT", `grep took longer than ${GREP_MS} ms (simplify the pattern or narrow the path)`);
      for (let i = 0; i < lines.length; i++) {
        if (!hits[i]) continue;
        matches.push({ path: file.path, line: lineNo + i + 1, text: lines[i]!.slice(0, LINE_MAX) });
        if (matches.length >= GREP_MAX_MATCHES) return { matches, truncated: true };
      }
      lineNo += lines.length;
    }
  }
  return { matches, truncated: false };
}

/** A file's complete lines, a stored chunk at a time (a line split across chunks is joined); null if binary. */
function* linesOf(store: WorkspaceStore, content: number): Generator<string[] | null> {
  const decoder = new TextDecoder();
  let carry = "";
  let first = true;
  for (const chunk of store.chunksOf(content)) {
    if (first && chunk.subarray(0, 8000).includes(0)) return yield null;
    first = false;
    const lines = decoder.decode(chunk, { stream: true }).split("\n");
    lines[0] = carry + lines[0];
    // Only a line's first LINE_MAX characters are matched: a file with no newline never piles up in memory.
    carry = lines.pop()!.slice(0, LINE_MAX);
    yield lines;
  }
  carry += decoder.decode();
  if (carry !== "") yield [carry];
}

/**
 * A unified diff of two texts, headed by their paths (and versions). Two large, wholly different texts
 * cost the Myers diff O(N·D) time, so it gives up after GREP_MS (jsdiff's own timeout) with ETIMEDOUT.
 */
export function unifiedDiff(a: { label: string; text: string }, b: { label: string; text: string }): string {
  const patch = createTwoFilesPatch(a.label, b.label, a.text, b.text, undefined, undefined, { context: 3, timeout: GREP_MS });
  if (patch === undefined) throw new WorkspaceError("ETIMEDOUT", `diff took longer than ${GREP_MS} ms (the files differ too much to diff)`, a.label);
  return patch;
}
