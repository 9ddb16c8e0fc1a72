/**
 * Workspace paths: relative to the workspace root, "/"-separated, normalised to "a/b/c" ("" is the
 * root). Anything that could mean another place to some later consumer (an export to disk, an HTTP
 * path, a shell) is refused with EINVAL rather than rewritten: "..", absolute or drive paths,
 * backslashes, NUL and control characters, percent-encoded dots/separators, and Unicode characters
 * that look like or normalise to a separator or a dot segment.
 */
import { WorkspaceError } from "../../errors.ts";

export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

/** Separators and dots in disguise. NFKC folds some (U+FF0F → "/"); these it leaves alone. */
const LOOKALIKES = /[\u2215\u2044\u29F8\u2216\u29F5\u29F9\uFE68\uFF3C\uFF0F\u2024\uFE52\uFF0E\u3002\u2027]/u;
/** Encoded ".", "/", "\", NUL, and an encoded "%" (a second decoding would reveal the others). */
const ENCODED = /%(2e|2f|5c|00|25)/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function refuse(raw: string, why: string): never {
  throw new WorkspaceError("EINVAL", `invalid workspace path (${why})`, raw.length > 200 ? `${raw.slice(0, 200)}…` : raw);
}

/** The normal form of a guest's path, or EINVAL naming why it was refused. */
export function normalisePath(raw: unknown): string {
  if (typeof raw !== "string") throw new WorkspaceError("EINVAL", `a workspace path must be a string, not ${raw === null ? "null" : typeof raw}`);
  if (CONTROL.test(raw)) refuse(raw, "NUL or control character");
  if (raw.includes("\\")) refuse(raw, "backslash");
  if (raw.startsWith("/")) refuse(raw, "absolute path; paths are relative to the workspace root");
  if (/^[a-z]:/i.test(raw)) refuse(raw, "drive path");
  if (ENCODED.test(raw)) refuse(raw, "percent-encoded dot, separator or percent");
  if (LOOKALIKES.test(raw)) refuse(raw, "look-alike of a separator or dot");
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) refuse(raw, `longer than ${MAX_PATH_BYTES} bytes`);
  const segments: string[] = [];
  for (const segment of raw.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") refuse(raw, "\"..\" segment");
    // Zero-width characters removed too: ".\u200b." must not pass for a plain name where they are dropped.
    const folded = segment.normalize("NFKC").replace(/[\u200b-\u200d\u2060\ufeff]/g, "");
    if (/[/\\]/.test(folded) || folded === "." || folded === "..") refuse(raw, "a name that normalises to a separator or dot segment");
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) refuse(raw, `a name longer than ${MAX_SEGMENT_BYTES} bytes`);
    segments.push(segment);
  }
  return segments.join("/");
}

/** The directory holding `path` ("" for a top-level name). */
export function parentOf(path: string): string {
  const cut = path.lastIndexOf("/");
  return cut < 0 ? "" : path.slice(0, cut);
}

/** Every ancestor directory of `path`, outermost first, the root excluded. */
export function ancestorsOf(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** Whether `path` is `dir` or lies under it. */
export function isWithin(path: string, dir: string): boolean {
  return dir === "" || path === dir || path.startsWith(`${dir}/`);
}
