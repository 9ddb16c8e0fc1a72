import { after, before } from "node:test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WorkerLoader, type RunReport, type WorkerCode, type WorkerLoaderOptions } from "../src/index.ts";

/** A one-module worker from its source, with the compatibility date every test uses. */
export function worker(source: string, extra: Partial<WorkerCode> = {}): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": source }, ...extra };
}

export async function fetchText(stub: { getEntrypoint(): { fetch(u: string, i?: RequestInit): Promise<Response> } }, url = "http://worker/", init?: RequestInit): Promise<string> {
  const res = await stub.getEntrypoint().fetch(url, init);
  return res.text();
}

/**
 * One loader for a test file: started before its tests, closed after them, with every RunReport kept.
 * Use `ctx.loader` inside tests (it exists once `before` has run).
 */
export function useLoader(options: WorkerLoaderOptions = {}): { loader: WorkerLoader; reports: RunReport[] } {
  const ctx = { loader: undefined as unknown as WorkerLoader, reports: [] as RunReport[] };
  before(async () => {
    ctx.loader = new WorkerLoader({ ...options, onRun: (r) => ctx.reports.push(r) });
    await ctx.loader.ready();
  });
  after(() => ctx.loader.close());
  return ctx;
}

/** A worker's response body as JSON, or an error that shows what came back instead. */
export async function responseJson(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (status ${res.status}): ${text}`);
  }
}

/** Loads a worker whose fetch handler has `body`, calls it once and returns its JSON response. */
export async function runHandler(loader: WorkerLoader, body: string, env: Record<string, unknown>, extra: Partial<WorkerCode> = {}): Promise<any> {
  const stub = loader.load(worker(`export default { async fetch(request, env, ctx) { ${body} } }`, { env, ...extra }));
  return responseJson(await stub.getEntrypoint().fetch("http://w/"));
}

/** A temporary directory for this test file, removed after its tests. */
export function useTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The command-line entry, as `node <CLI> ...` runs it. */
export const CLI = fileURLToPath(new URL("../src/cli/index.ts", import.meta.url));

export interface CliRun { code: number; stdout: string; stdoutBytes: Buffer; stderr: string }

/** Runs `mayfly <args>` as a child process to its end; `stdin` (default empty) is written and closed. */
export function runCli(args: string[], options: { stdin?: string | Uint8Array; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString(), stdoutBytes, stderr });
    });
    child.stdin.end(options.stdin ?? "");
  });
}
