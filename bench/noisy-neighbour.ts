// Noisy neighbour (issue 10, item 2): a benign tenant's latency alone, then beside 2 tenants spinning
// `for(;;){}` and 2 running heap bombs, all re-launched continuously on the same loader; plus where
// each runaway was cut, as its RunReport counts CPU. workerd is not measured here: its open-source
// runtime enforces no CPU limit, so its runaways would never end.
import { WorkerLoader, type RunReport, type WorkerCode, type WorkerLoaderOptions } from "../src/index.ts";
import { percentile, summarize, type Summary } from "./stats.ts";

const CPU_MS = 50;
const BOMB_MB = 32;

function code(source: string, limits: WorkerCode["limits"] = {}): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": source }, limits };
}

const BENIGN = code('export default { fetch(r) { return Response.json({ n: new Array(1000).fill(1).length, url: r.url }) } }');
const SPIN = code("export default { fetch() { for (;;) {} } }", { cpuMs: CPU_MS });
const BOMB = code("export default { fetch() { const a = []; for (;;) a.push({ x: new Array(1000).fill(1) }) } }", { memoryMb: BOMB_MB, cpuMs: 5_000 });

export interface NoisyNeighbour {
  quiet: Summary;
  noisy: Summary;
  cutsMs: number[];
  spins: Record<string, number>;
  bombs: Record<string, number>;
  benignFailures: number;
  restarts: number;
  seconds: number;
}

/** One fresh isolate per call: load, fetch, read, dispose; what it ended with. */
async function once(loader: WorkerLoader, c: WorkerCode, url: string): Promise<string> {
  const stub = loader.load(c);
  try {
    const res = await stub.getEntrypoint().fetch(url);
    await res.text();
    return res.ok ? "answered" : `status ${res.status}`;
  } catch (e) {
    return (e as Error).name;
  } finally {
    stub.dispose();
  }
}

/** The benign tenant: one request after another until `until`; each latency, and its failures. */
async function benign(loader: WorkerLoader, until: number): Promise<{ latencies: number[]; failures: number }> {
  const latencies: number[] = [];
  let failures = 0;
  for (let i = 0; performance.now() < until; i++) {
    const t0 = performance.now();
    const outcome = await once(loader, BENIGN, `http://benign/${i}`);
    latencies.push(performance.now() - t0);
    if (outcome !== "answered") failures++;
  }
  return { latencies, failures };
}

async function noisyTenant(loader: WorkerLoader, c: WorkerCode, until: number, seen: Record<string, number>): Promise<void> {
  while (performance.now() < until) {
    const outcome = await once(loader, c, "http://noisy/");
    seen[outcome] = (seen[outcome] ?? 0) + 1;
  }
}

export async function benchNoisyNeighbour(options: WorkerLoaderOptions, seconds: number): Promise<NoisyNeighbour> {
  const reports: RunReport[] = [];
  const loader = new WorkerLoader({ ...options, onRun: (r) => reports.push(r) });
  try {
    await loader.ready();
    await benign(loader, performance.now() + 500); // warm-up
    const quiet = await benign(loader, performance.now() + seconds * 1000);
    reports.length = 0;
    const until = performance.now() + seconds * 1000;
    const spins: Record<string, number> = {}, bombs: Record<string, number> = {};
    const noisy = [noisyTenant(loader, SPIN, until, spins), noisyTenant(loader, SPIN, until, spins), noisyTenant(loader, BOMB, until, bombs), noisyTenant(loader, BOMB, until, bombs)];
    const loud = await benign(loader, until);
    await Promise.all(noisy);
    return {
      quiet: summarize(quiet.latencies),
      noisy: summarize(loud.latencies),
      cutsMs: reports.filter((r) => r.outcome === "exceededCpu").map((r) => r.cpuMs),
      spins, bombs,
      benignFailures: quiet.failures + loud.failures,
      restarts: loader.engine.stats().restarts,
      seconds,
    };
  } finally {
    await loader.close();
  }
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : "n/a");
const counts = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${v} ${k}`).join(", ") || "none";

export function noisyNeighbourTable(r: NoisyNeighbour): string {
  const cut = r.cutsMs;
  const worst = cut.length ? Math.max(...cut) : NaN;
  return [
    `noisy neighbour (mayfly only; ${r.seconds} s each: a benign tenant alone, then beside 2 tenants looping \`for(;;){}\` with cpuMs ${CPU_MS} and 2 heap bombs with memoryMb ${BOMB_MB}, each re-launched as soon as it ends):`,
    "",
    "| metric | quiet | noisy | ratio | goal |",
    "| --- | --- | --- | --- | --- |",
    `| benign p50 (fresh isolate per request) | ${ms(r.quiet.p50)} | ${ms(r.noisy.p50)} | ${(r.noisy.p50 / r.quiet.p50).toFixed(1)}× | — |`,
    `| benign p99 | ${ms(r.quiet.p99)} | ${ms(r.noisy.p99)} | ${(r.noisy.p99 / r.quiet.p99).toFixed(1)}× | ≤ 3× |`,
    `| benign requests (failed) | ${r.quiet.n} | ${r.noisy.n} | — | 0 failed: ${r.benignFailures} |`,
    `| runaway CPU at the cut: p50 / p99 / max | — | ${ms(percentile(cut, 50))} / ${ms(percentile(cut, 99))} / ${ms(worst)} | ${(worst / CPU_MS).toFixed(2)}× cpuMs (max) | ≤ 1.2× |`,
    `| runaways ended with | — | ${counts(r.spins)} | — | CpuTimeLimitError |`,
    `| bombs ended with | — | ${counts(r.bombs)} | — | MemoryLimitError |`,
    `| executor restarts | — | ${r.restarts} | — | 0 |`,
  ].join("\n");
}
