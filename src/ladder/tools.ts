/**
 * The ladder's rungs as Code Mode tools: `fs.*` over the workspace, `browser.*` over the browser
 * binding, `sh.exec` over the OS sandbox. Only granted rungs make tools, so a namespace that was not
 * granted is absent from `cm.types()` and, in the isolate, not defined at all (a ReferenceError).
 * Each tool is the binding's own call: the same egress policy, limits and workspace as a worker gets.
 */
import { z } from "zod";
import { functionTools } from "../codemode/sources/functions.ts";
import type { Tool } from "../codemode/tool.ts";
import { BINDING } from "../bindings/capability.ts";
import type { BrowserBinding } from "../bindings/browser/index.ts";
import type { Workspace } from "../bindings/workspace/index.ts";
import type { Sandbox } from "../bindings/sandbox/index.ts";
import type { Ladder } from "./index.ts";

export interface LadderToolsOptions {
  /** Namespaces (default fs, browser, sh). */
  namespaces?: { fs?: string; browser?: string; sh?: string };
}

/** Code Mode tools for every rung `ladder` grants: `new CodeMode({ loader, tools: ladderTools(l) })`. */
export function ladderTools(ladder: Ladder, options: LadderToolsOptions = {}): Tool[] {
  const ns = { fs: "fs", browser: "browser", sh: "sh", ...options.namespaces };
  return [
    ...(ladder.workspace ? functionTools(ns.fs, fsTools(ladder.workspace)) : []),
    ...(ladder.browser ? functionTools(ns.browser, browserTools(ladder.browser)) : []),
    ...(ladder.sandbox ? functionTools(ns.sh, shTools(ladder.sandbox)) : []),
  ];
}

const path = z.string().describe("A path in the workspace, relative to its root (\"src/a.ts\").");

function fsTools(ws: Workspace) {
  const read = {
    readFile: { description: "A file's text (UTF-8).", inputSchema: z.object({ path }), outputSchema: z.string(), execute: ({ path }: { path: string }) => ws.readFile(path, "utf8") },
    readdir: {
      description: "A directory's entries (recursive: everything below it, as paths relative to it).",
      inputSchema: z.object({ path: path.default(""), recursive: z.boolean().optional() }),
      outputSchema: z.array(z.object({ name: z.string(), type: z.enum(["file", "dir"]) })),
      execute: ({ path, recursive }: { path: string; recursive?: boolean }) => ws.readdir(path, { recursive: recursive === true }),
    },
    stat: {
      description: "A file's or directory's type, size, version and modification time.",
      inputSchema: z.object({ path }),
      outputSchema: z.object({ type: z.enum(["file", "dir"]), size: z.number(), version: z.number(), mtimeMs: z.number() }),
      execute: ({ path }: { path: string }) => ws.stat(path),
    },
    glob: {
      description: "Paths of the files matching a glob (\"src/**/*.ts\").",
      inputSchema: z.object({ pattern: z.string() }), outputSchema: z.array(z.string()),
      execute: ({ pattern }: { pattern: string }) => ws.glob(pattern),
    },
    grep: {
      description: "Lines matching a regular expression, in the files under `path` (default everywhere).",
      inputSchema: z.object({ pattern: z.string().describe("A regular expression's source."), flags: z.string().optional(), path: z.string().optional() }),
      execute: ({ pattern, flags, path }: { pattern: string; flags?: string; path?: string }) => ws.grep({ source: pattern, flags: flags ?? "" }, { path }),
    },
  };
  if (ws.mode === "read") return read;
  return {
    ...read,
    writeFile: {
      description: "Writes a file (text, UTF-8), creating its directories; returns its new version.",
      inputSchema: z.object({ path, content: z.string() }), outputSchema: z.number(),
      execute: ({ path, content }: { path: string; content: string }) => ws.writeFile(path, content),
    },
    mkdir: {
      description: "Makes a directory (recursive: its parents too).",
      inputSchema: z.object({ path, recursive: z.boolean().optional() }),
      execute: async ({ path, recursive }: { path: string; recursive?: boolean }) => void (await ws.mkdir(path, { recursive: recursive === true })),
    },
    rm: {
      description: "Removes a file, or a directory with recursive.",
      inputSchema: z.object({ path, recursive: z.boolean().optional(), force: z.boolean().optional() }),
      execute: ({ path, recursive, force }: { path: string; recursive?: boolean; force?: boolean }) => ws.rm(path, { recursive, force }),
    },
  };
}

function shTools(sh: Sandbox) {
  return {
    exec: {
      description: "Runs a program in the OS sandbox with the workspace as /workspace (the working directory); what it writes there is in the workspace afterwards.",
      inputSchema: z.object({
        command: z.string().describe("The program (\"cat\", \"git\", \"sh\")."),
        args: z.array(z.string()).default([]),
        stdin: z.string().optional(),
        cwd: z.string().optional().describe("Relative to /workspace."),
        timeoutMs: z.number().int().positive().optional(),
      }),
      outputSchema: z.object({ exitCode: z.number(), stdout: z.string(), stderr: z.string(), stdoutTruncated: z.boolean(), stderrTruncated: z.boolean() }),
      execute: async ({ command, args, stdin, cwd, timeoutMs }: { command: string; args: string[]; stdin?: string; cwd?: string; timeoutMs?: number }) => {
        const r = await sh.exec(command, args, { stdin, cwd, timeoutMs });
        return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, stdoutTruncated: r.stdoutTruncated, stderrTruncated: r.stderrTruncated };
      },
    },
  };
}

function browserTools(binding: BrowserBinding) {
  const url = z.object({ url: z.string().url() });
  return {
    content: {
      description: "Loads a page in headless Chromium and returns its HTML after load.",
      inputSchema: url, outputSchema: z.string(),
      execute: ({ url }: { url: string }) => onPage(binding, url, (call, page) => call("content", [page])),
    },
    title: {
      description: "Loads a page and returns its title.",
      inputSchema: url, outputSchema: z.string(),
      execute: ({ url }: { url: string }) => onPage(binding, url, (call, page) => call("title", [page])),
    },
    screenshot: {
      description: "Loads a page and returns a PNG screenshot of it, base64-encoded.",
      inputSchema: url.extend({ fullPage: z.boolean().optional() }), outputSchema: z.string(),
      execute: ({ url, fullPage }: { url: string; fullPage?: boolean }) =>
        onPage(binding, url, async (call, page) => Buffer.from((await call("screenshot", [page, { fullPage }])) as Uint8Array).toString("base64")),
    },
  };
}

type Call = (method: string, args: unknown[]) => Promise<unknown>;

/**
 * One tool call is one browser session, as one worker run is: a fresh context (no cookies from an
 * earlier call), every request through the binding's egress gateway, closed afterwards.
 */
async function onPage<T>(binding: BrowserBinding, url: string, fn: (call: Call, page: number) => Promise<unknown>): Promise<T> {
  const cap = binding[BINDING]();
  cap.runsBegan?.();
  try {
    const { page } = (await cap.call("newPage", [])) as { page: number };
    await cap.call("goto", [page, url, {}]);
    return (await fn((m, a) => cap.call(m, a), page)) as T;
  } finally {
    await cap.runsEnded?.();
  }
}
