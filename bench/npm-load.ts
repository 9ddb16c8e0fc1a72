// npm at load time (issue 11): how long a worker importing zod and date-fns takes to prepare with an
// empty cache (resolve, fetch and verify tarballs, bundle), and what a cache hit adds to a fresh
// request over a worker with no dependencies. Each kind runs as its own sequence, one request every
// GAP_MS (a host at low load, whose executors refill their isolate pools between requests), and the
// executor CPU of each request is reported beside its latency. The packages are served by the tests' in-process
// registry from this repository's node_modules, so the figures do not depend on a network.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerLoader, type WorkerCode } from "../src/index.ts";
import { TestRegistry } from "../test/npm-registry.ts";
import { percentile } from "./stats.ts";

const WITH_DEPS = `import { z } from "zod";
import { addDays, formatISO } from "date-fns";
const Day = z.object({ day: z.string() });
export default { fetch() {
  const { day } = Day.parse({ day: "2026-12-07" });
  return Response.json({ next: formatISO(addDays(new Date(day + "T00:00:00Z"), 1), { representation: "date" }) });
} };`;
const NO_DEPS = `export default { fetch() { return Response.json({ next: "2026-12-08" }) } };`;

function code(source: string, deps: Record<string, string> | undefined): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": source }, ...(deps ? { packageJson: { dependencies: deps } } : {}) };
}

const GAP_MS = 20;

export interface NpmLoad {
  coldMs: number;
  diskCacheMs: number;
  warmP50: number;
  plainP50: number;
  warmCpuP50: number;
  plainCpuP50: number;
  bundleBytes: number;
  packages: string;
  n: number;
}

const cpuOf = new WeakMap<WorkerLoader, number[]>();

async function timeOne(loader: WorkerLoader, c: WorkerCode): Promise<number> {
  const t0 = performance.now();
  const stub = loader.load(c);
  try {
    const res = await stub.getEntrypoint().fetch("http://w/");
    const body = await res.json() as { next?: string };
    if (body.next !== "2026-12-08") throw new Error(`unexpected answer ${JSON.stringify(body)}`);
    return performance.now() - t0;
  } finally {
    stub.dispose();
  }
}

export async function benchNpmLoad(executors: number, n = 40): Promise<NpmLoad> {
  const registry = await new TestRegistry().start();
  const cacheDir = mkdtempSync(join(tmpdir(), "mayfly-bench-npm-"));
  const loaders: WorkerLoader[] = [];
  const loader = () => {
    const cpu: number[] = [];
    const l = new WorkerLoader({ executors, npm: { registry: registry.url, cacheDir }, onRun: (r) => cpu.push(r.cpuMs) });
    cpuOf.set(l, cpu);
    loaders.push(l);
    return l;
  };
  try {
    for (const name of ["zod", "date-fns"]) await registry.publishDir(join(import.meta.dirname, "..", "node_modules", name));
    const deps = { zod: "^4.0.0", "date-fns": "^4.0.0" };
    const first = loader();
    await first.ready();
    const coldMs = await timeOne(first, code(WITH_DEPS, deps));
    const stub = first.load(code(WITH_DEPS, deps));
    const report = (await stub.npmReport())!;
    stub.dispose();
    // A new loader (a restarted host) finds the bundle on disk.
    const second = loader();
    await second.ready();
    const diskCacheMs = await timeOne(second, code(WITH_DEPS, deps));
    const sequence = async (c: WorkerCode): Promise<{ ms: number[]; cpu: number[] }> => {
      // Warm-up: the executors see the bundle run (and image it, see engine option packageImages).
      for (let i = 0; i < 10; i++) { await timeOne(second, c); await sleep(GAP_MS); }
      await sleep(1_500);
      const cpu = cpuOf.get(second)!;
      cpu.length = 0;
      const ms: number[] = [];
      for (let i = 0; i < n; i++) { ms.push(await timeOne(second, c)); await sleep(GAP_MS); }
      return { ms, cpu: [...cpu] };
    };
    const plain = await sequence(code(NO_DEPS, undefined));
    const warm = await sequence(code(WITH_DEPS, deps));
    return {
      coldMs, diskCacheMs, warmP50: percentile(warm.ms, 50), plainP50: percentile(plain.ms, 50), n,
      warmCpuP50: percentile(warm.cpu, 50), plainCpuP50: percentile(plain.cpu, 50),
      bundleBytes: report.bytes,
      packages: report.packages.filter((p) => p.bytes > 0).map((p) => `${p.name}@${p.version}`).join(", "),
    };
  } finally {
    await Promise.all(loaders.map((l) => l.close()));
    await registry.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

export function npmLoadTable(r: NpmLoad): string {
  const added = r.warmP50 - r.plainP50;
  return [
    `npm at load time (mayfly only; a worker importing zod and date-fns — ${r.packages}, ${(r.bundleBytes / 1024).toFixed(0)} KB bundled — from a local registry):`,
    "",
    "| metric | value | goal |",
    "| --- | --- | --- |",
    `| cold: empty cache, resolve + fetch + verify + bundle + first request | ${ms(r.coldMs)} | — |`,
    `| a new loader, bundle from the disk cache, first request | ${ms(r.diskCacheMs)} | — |`,
    `| fresh request with the cached bundle, p50 (n=${r.n}, one every ${GAP_MS} ms) | ${ms(r.warmP50)} | — |`,
    `| fresh request, a worker with no dependencies, p50 | ${ms(r.plainP50)} | — |`,
    `| added by the dependencies (cache hit) | ${ms(added)} | < 5 ms |`,
    `| executor CPU per request (start + run), with the bundle / without, p50 | ${ms(r.warmCpuP50)} / ${ms(r.plainCpuP50)} | — |`,
  ].join("\n");
}
