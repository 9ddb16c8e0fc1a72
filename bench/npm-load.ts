// npm at load time (issue 11): how long a worker importing zod and date-fns takes to prepare with an
// empty cache (resolve, fetch and verify tarballs, bundle), and what a cache hit adds to a fresh
// request over a worker with no dependencies. The packages are served by the tests' in-process
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

export interface NpmLoad {
  coldMs: number;
  diskCacheMs: number;
  warmP50: number;
  plainP50: number;
  bundleBytes: number;
  packages: string;
  n: number;
}

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
    const l = new WorkerLoader({ executors, npm: { registry: registry.url, cacheDir } });
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
    const warm: number[] = [], plain: number[] = [];
    for (let i = 0; i < 5; i++) { await timeOne(second, code(WITH_DEPS, deps)); await timeOne(second, code(NO_DEPS, undefined)); }
    for (let i = 0; i < n; i++) {
      warm.push(await timeOne(second, code(WITH_DEPS, deps)));
      plain.push(await timeOne(second, code(NO_DEPS, undefined)));
    }
    return {
      coldMs, diskCacheMs, warmP50: percentile(warm, 50), plainP50: percentile(plain, 50), n,
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

export function npmLoadTable(r: NpmLoad): string {
  const added = r.warmP50 - r.plainP50;
  return [
    `npm at load time (mayfly only; a worker importing zod and date-fns — ${r.packages}, ${(r.bundleBytes / 1024).toFixed(0)} KB bundled — from a local registry):`,
    "",
    "| metric | value | goal |",
    "| --- | --- | --- |",
    `| cold: empty cache, resolve + fetch + verify + bundle + first request | ${ms(r.coldMs)} | — |`,
    `| a new loader, bundle from the disk cache, first request | ${ms(r.diskCacheMs)} | — |`,
    `| fresh request with the cached bundle, p50 (n=${r.n}) | ${ms(r.warmP50)} | — |`,
    `| fresh request, a worker with no dependencies, p50 | ${ms(r.plainP50)} | — |`,
    `| added by the dependencies (cache hit) | ${ms(added)} | < 5 ms |`,
  ].join("\n");
}
