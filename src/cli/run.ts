/**
 * `mayfly run <file>`: the file as a worker in a fresh isolate, sent one request; prints the
 * response (or, with --json, the response with logs, outcome and cost). Nothing is allowed out
 * without --allow-net, as with Deno.
 */
import { WorkerLoader } from "../loader/worker-loader.ts";
import type { RunReport } from "../loader/run-report.ts";
// `--allow-net=api.example.com,127.0.0.1:8080`: https on its default port unless an origin is given; a
// host named on the command line is trusted even when it resolves to a private address.
import { allowNetRules, egress } from "../bindings/egress/index.ts";
import { kv } from "../bindings/kv/index.ts";
import { sql } from "../bindings/sql/index.ts";
import { bundleWorker } from "../bundler/index.ts";
import { readFileSync } from "node:fs";
import { dirname, relative, sep } from "node:path";
import type { ModuleSource } from "../loader/worker-code.ts";
import { readProjectPackages, registryConfigFromEnvironment, type NpmReport } from "../bundler/npm/index.ts";
import { resolve } from "node:path";
import { workspace } from "../bindings/workspace/index.ts";
import { ladder, type Ladder } from "../ladder/index.ts";

export interface RunOptions {
  allowNet?: string[];
  kv?: string[];
  sql?: string[];
  /** NAME[=workspace]: env.NAME is the workspace (named NAME unless given), read-write or read-only. */
  workspace?: string[];
  workspaceRead?: string[];
  dataDir: string;
  cpuMs?: number;
  memoryMb?: number;
  wallMs?: number;
  json?: boolean;
  method: string;
  header: string[];
  data?: string;
  url: string;
  /** Run the worker's scheduled() handler with this cron string instead of sending a request. */
  scheduled?: string;
  /** A package.json whose dependencies the worker imports (resolved from the registry npm uses here). */
  packageJson?: string;
  /** The lockfile to install exactly (default: package-lock.json beside the package.json, if any). */
  lockfile?: string;
  /** Where resolved packages and bundles are cached (default .mayfly/npm). */
  npmCacheDir?: string;
  /** Packages that may be installed (default: any). */
  npmAllow?: string[];
  /** Type-check the worker's TypeScript before running it. */
  typecheck?: boolean;
  /** env.BROWSER: headless Chromium whose pages reach only what --allow-net allows. */
  allowBrowser?: boolean;
  /** Pages one run may open with --allow-browser (default 4). */
  browserMaxPages?: number;
  /** env.SH: the OS sandbox on the first --workspace (else on workspace "default", bound as env.FS); network as --allow-net. */
  allowExec?: boolean;
}

/** The workspace the sandbox mounts with --allow-exec when none is given: bound as env.FS. */
export const DEFAULT_EXEC_WORKSPACE = "default";

/**
 * The worker as one bundled module; or, to type-check it, as its own files (mayfly links relative
 * imports between modules itself), so the compiler sees the TypeScript as written.
 */
function workerModules(file: string, packages: string[], asFiles: boolean): { mainModule: string; modules: Record<string, ModuleSource> } {
  const bundle = bundleWorker(file, { packages });
  if (!asFiles) return { mainModule: "worker.js", modules: { "worker.js": bundle.code } };
  const root = dirname(resolve(file));
  const modules: Record<string, ModuleSource> = {};
  for (const input of bundle.inputs) {
    const name = relative(root, input).split(sep).join("/");
    if (name.startsWith("..")) throw new Error(`--typecheck loads the worker's files as modules, so they must sit under ${root}; ${input} does not.`);
    const text = readFileSync(input, "utf8");
    modules[name] = /\.(m?[jt]s)$/.test(name) ? text : name.endsWith(".json") ? { json: JSON.parse(text) } : { text };
  }
  return { mainModule: relative(root, resolve(file)).split(sep).join("/"), modules };
}

export interface RunResult {
  exitCode: number;
  stdout: string | Uint8Array;
  stderr: string;
}

export async function runWorkerFile(file: string, opts: RunOptions, stdinBody: () => Promise<Uint8Array | undefined>): Promise<RunResult> {
  const reports: RunReport[] = [];
  // The front door: npm's registry configuration (npm_config_registry, .npmrc) is read here, once.
  const npm = opts.packageJson
    ? { ...registryConfigFromEnvironment(), cacheDir: resolve(opts.npmCacheDir ?? ".mayfly/npm"), allow: opts.npmAllow }
    : undefined;
  const loader = new WorkerLoader({ executors: 1, poolSize: 1, onRun: (r) => reports.push(r), npm });
  let npmReport: NpmReport | undefined;
  let rungs: Ladder | undefined;
  try {
    const project = opts.packageJson ? readProjectPackages(resolve(opts.packageJson), opts.lockfile && resolve(opts.lockfile)) : undefined;
    const env: Record<string, unknown> = {};
    for (const spec of opts.kv ?? []) {
      const [name, dir] = spec.split("=");
      env[name!] = kv({ name: name!, dataDir: dir || opts.dataDir });
    }
    for (const spec of opts.sql ?? []) {
      const [name, dir] = spec.split("=");
      env[name!] = sql({ name: name!, dataDir: dir || opts.dataDir });
    }
    // One gateway for everything --allow-net lets out: the worker's fetch(), the browser's pages, the sandbox's proxy.
    const net = opts.allowNet?.length ? egress({ allow: allowNetRules(opts.allowNet, { allowPrivateAddresses: true }) }) : null;
    const workspaces = [
      ...(opts.workspace ?? []).map((spec) => ({ spec, mode: "read-write" as const })),
      ...(opts.workspaceRead ?? []).map((spec) => ({ spec, mode: "read" as const })),
    ].map(({ spec, mode }) => {
      const [binding, ws] = spec.split("=");
      return { binding: binding!, name: ws || binding!, mode };
    });
    // --allow-exec runs on a workspace: the first one given, else "default" (bound as FS, so the worker sees what commands wrote).
    const execOn = opts.allowExec ? workspaces[0] ?? { binding: "FS", name: DEFAULT_EXEC_WORKSPACE, mode: "read-write" as const } : undefined;
    if (execOn || opts.allowBrowser) {
      rungs = ladder({
        ...(execOn ? { workspace: { name: execOn.name, dataDir: opts.dataDir, mode: execOn.mode }, sandbox: { network: net } } : {}),
        // Chromium refuses its own sandbox to root; the egress gateway still decides every request.
        ...(opts.allowBrowser ? { browser: { egress: net ?? { allow: [] }, maxPages: opts.browserMaxPages ?? 4, sandbox: process.getuid?.() !== 0 } } : {}),
      });
      if (execOn) env[execOn.binding] = rungs.env.FS;
      if (rungs.env.SH) env.SH = rungs.env.SH;
      if (rungs.env.BROWSER) env.BROWSER = rungs.env.BROWSER;
    }
    for (const w of workspaces) {
      if (w !== execOn) env[w.binding] = workspace({ name: w.name, dataDir: opts.dataDir, mode: w.mode });
    }
    const stub = loader.load({
      compatibilityDate: "2025-06-01",
      ...workerModules(file, Object.keys(project?.packageJson.dependencies ?? {}), opts.typecheck === true),
      typecheck: opts.typecheck,
      ...project,
      env,
      globalOutbound: net,
      limits: { cpuMs: opts.cpuMs, memoryMb: opts.memoryMb, wallMs: opts.wallMs },
    });
    const headers = new Headers();
    for (const h of opts.header) {
      const i = h.indexOf(":");
      if (i <= 0) return failure(`bad --header "${h}": expected "Name: value"`);
      headers.append(h.slice(0, i).trim(), h.slice(i + 1).trim());
    }
    const body = opts.data !== undefined ? (opts.data === "-" ? await stdinBody() : opts.data) : undefined;
    await loader.ready();
    npmReport = await stub.npmReport();
    if (opts.scheduled !== undefined) return await runScheduledOnce(stub, opts, reports);
    const started = performance.now();
    const res = await stub.getEntrypoint().fetch(opts.url, { method: opts.method, headers, body: body as BodyInit | undefined });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const elapsedMs = performance.now() - started;
    await waitForReport(reports);
    const report = reports[0];
    if (opts.json) {
      return {
        exitCode: res.ok ? 0 : 1,
        stdout: JSON.stringify({
          response: { status: res.status, headers: Object.fromEntries(res.headers), body: new TextDecoder().decode(bytes) },
          outcome: report?.outcome ?? "ok", logs: report?.logs ?? [], cpuMs: report?.cpuMs, wallMs: report?.wallMs, memoryBytes: report?.memoryBytes, elapsedMs,
          subRequests: report?.subRequests ?? 0,
          ...(npmReport ? { npm: npmSummary(npmReport) } : {}),
        }, null, 2) + "\n",
        stderr: "",
      };
    }
    const logs = logLines(report);
    return { exitCode: res.ok ? 0 : 1, stdout: bytes, stderr: logs + (res.ok ? "" : `mayfly: the worker answered ${res.status}\n`) };
  } catch (e) {
    await waitForReport(reports);
    const report = reports[0];
    const err = e as Error;
    if (opts.json) {
      return { exitCode: 1, stdout: JSON.stringify({ error: { name: err.name, message: err.message }, outcome: report?.outcome ?? "internalError", logs: report?.logs ?? [], cpuMs: report?.cpuMs, wallMs: report?.wallMs }, null, 2) + "\n", stderr: "" };
    }
    const logs = logLines(report);
    return failure(`${err.name}: ${err.message}`, logs);
  } finally {
    await loader.close();
    await rungs?.close();
  }
}

/** `--scheduled [cron]`: the scheduled() handler once, as a Cron Trigger would run it. */
async function runScheduledOnce(stub: ReturnType<WorkerLoader["load"]>, opts: RunOptions, reports: RunReport[]): Promise<RunResult> {
  const cron = opts.scheduled || "* * * * *";
  await (stub.getEntrypoint() as unknown as { scheduled(e: { scheduledTime: number; cron: string }): Promise<unknown> }).scheduled({ scheduledTime: Date.now(), cron });
  await waitForReport(reports);
  const report = reports[0];
  if (opts.json) {
    return { exitCode: 0, stdout: JSON.stringify({ scheduled: { cron }, outcome: report?.outcome ?? "ok", logs: report?.logs ?? [], cpuMs: report?.cpuMs, wallMs: report?.wallMs, memoryBytes: report?.memoryBytes }, null, 2) + "\n", stderr: "" };
  }
  const logs = logLines(report);
  return { exitCode: 0, stdout: `scheduled (${cron}): ok\n`, stderr: logs };
}

/** What was bundled from npm, and the lockfile to pin it with. */
function npmSummary(r: NpmReport) {
  return { packages: r.packages.map((p) => ({ name: p.name, version: p.version, bytes: p.bytes })), bytes: r.bytes, cached: r.cached, lockfile: r.lockfile };
}

/** A run's console output as the terminal shows it: "[level] message" lines. */
function logLines(report: RunReport | undefined): string {
  return (report?.logs ?? []).map((l) => `[${l.level}] ${l.message}\n`).join("");
}

function failure(reason: string, before = ""): RunResult {
  return { exitCode: 1, stdout: "", stderr: `${before}mayfly: ${reason}\n` };
}

async function waitForReport(reports: RunReport[]): Promise<void> {
  for (let i = 0; i < 100 && reports.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
}
