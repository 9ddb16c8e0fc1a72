/**
 * glob, grep and diff over a workspace. Patterns come from guests, so the matching itself runs on the
 * matcher's thread (matcher.ts) under a deadline: a catastrophic pattern costs its caller an error
 * after GREP_MS, never the host's event loop.
 */
import type { Entry, WorkspaceStore } from "./store.ts";
import { WorkspaceError } from "../../errors.ts";
import { matcher, MatcherError, MatcherTimeout } from "./matcher.ts";

const GREP_MS = 1000;
const GREP_MAX_MATCHES = 1000;
/** Lines longer than this are matched on their first LINE_MAX characters (minified files). */
const LINE_MAX = 4096;
/** Files larger than this are not diffed (a diff holds both sides in memory). */
export const DIFF_MAX_BYTES = 8 * 1024 * 1024;

/** Files (not directories) whose path matches a glob: `*`, `**`, `?`, `[...]`, `{a,b}` (path.matchesGlob). */
export async function glob(store: WorkspaceStore, pattern: string): Promise<string[]> {
  if (typeof pattern !== "string" || pattern === "" || pattern.length > 1024) throw new WorkspaceError("EINVAL", "glob() takes a pattern string of 1 to 1024 characters");
  const paths = (await store.under("")).filter((e) => e.type === "file").map((e) => e.path);
  try {
    return await matcher.session(GREP_MS, (ask) => ask({ op: "glob", paths, pattern: pattern.replace(/^(\.\/)+/, "") })) as string[];
  } catch (e) {
    throw timedOut(e, `glob took longer than ${GREP_MS} ms (simplify the pattern)`) ?? e;
  }
}

export interface GrepMatch { path: string; line: number; text: string }

/** Lines matching `source` (a RegExp's source and flags) in the files at or under `path`; binary files are skipped. */
export async function grep(store: WorkspaceStore, files: Entry[], source: string, flags: string): Promise<{ matches: GrepMatch[]; truncated: boolean }> {
  try {
    return await matcher.session(GREP_MS, async (ask) => {
      try {
        await ask({ op: "compile", source, flags: flags.replace(/[gy]/g, "") });
      } catch (e) {
        if (e instanceof MatcherError) throw new WorkspaceError("EINVAL", `grep pattern is not a valid regular expression (${e.message})`);
        throw e;
      }
      const matches: GrepMatch[] = [];
      for (const file of files) {
        if (file.type !== "file" || file.content === null) continue;
        let lineNo = 0;
        for await (const lines of linesOf(store, file.content)) {
          if (lines === null) break; // binary
          const cut = lines.map((l) => l.slice(0, LINE_MAX));
          const hits = await ask({ op: "test", lines: cut }) as boolean[];
          for (let i = 0; i < cut.length; i++) {
            if (!hits[i]) continue;
            matches.push({ path: file.path, line: lineNo + i + 1, text: cut[i]! });
            if (matches.length >= GREP_MAX_MATCHES) return { matches, truncated: true };
          }
          lineNo += lines.length;
        }
      }
      return { matches, truncated: false };
    });
  } catch (e) {
    throw timedOut(e, `grep took longer than ${GREP_MS} ms (simplify the pattern or narrow the path)`) ?? e;
  }
}

/** A file's complete lines, a stored chunk at a time (a line split across chunks is joined); null if binary. */
async function* linesOf(store: WorkspaceStore, content: number): AsyncGenerator<string[] | null> {
  const decoder = new TextDecoder();
  let carry = "";
  let first = true;
  for await (const chunk of store.chunksOf(content)) {
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
 * cost the Myers diff O(N·D) time, so it runs on the matcher's thread and gives up after GREP_MS.
 */
export async function unifiedDiff(a: { label: string; text: string }, b: { label: string; text: string }): Promise<string> {
  try {
    return await matcher.session(GREP_MS, (ask) => ask({ op: "diff", a, b })) as string;
  } catch (e) {
    throw timedOut(e, `diff took longer than ${GREP_MS} ms (the files differ too much to diff)`, a.label) ?? e;
  }
}

function timedOut(e: unknown, message: string, path?: string): WorkspaceError | undefined {
  return e instanceof MatcherTimeout ? new WorkspaceError("ETIMEDOUT", message, path) : undefined;
}
