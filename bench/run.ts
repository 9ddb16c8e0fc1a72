// mayfly vs workerd, side by side in one run:  npm run bench   (node bench/run.ts)
//
// 1. Fresh isolate per request, sequential (concurrency 1): p50 / p99 ms.
//      mayfly:  load() + fetch() + res.text() + dispose(), in process.
//      workerd: GET /load on a local workerd (LOADER.load() + one fetch), through a loopback HTTP
//               hop; the p50 of a trivial round trip (GET /health) is measured too so it can be
//               subtracted.
// 2. Fresh-isolate throughput with `--concurrency` callers for `--seconds`: req/s, plus the CPU
//    time each runtime spent per request (mayfly: host + executor processes; workerd: its process).
// 3. Warm get(id) on the same id, sequential: p50 ms.
// 4. Memory per live isolate: hold `--hold` isolates alive, RSS delta / N, each side measured on
//    freshly started processes (mayfly: sum of executor VmRSS; workerd: its VmRSS).
//
// 5. Over HTTP: `mayfly serve` with a named worker (fresh isolate per request) vs workerd's /load,
//    both loaded by autocannon with --concurrency connections for --seconds (bench/http-load.ts).
//
// 7. Workspace binding and npm at load time (issue 11): bench/workspace-ops.ts, bench/npm-load.ts.
// 8. Durable actors (issue 13): warm RPC, storage put+get, cold start from storage, 10,000 actors
//    created then evicted with the memory left afterwards (bench/actors.ts).
// 9. Many hosts (issue 15): D1 on PostgreSQL, three stores compared (bench/d1-postgres.ts); three
//    `mayfly serve --cluster` processes with PostgreSQL and HAProxy: throughput one host vs three, KV and
//    D1 read-after-write across hosts, actor calls on the owner vs forwarded, failover (bench/cluster.ts,
//    run as its own process because it starts and kill -9s hosts).
// 6. Noisy neighbour: a benign tenant's p50/p99 alone and beside 2 runaways and 2 heap bombs, and the
//    CPU at which each runaway was cut (bench/noisy-neighbour.ts).
//
// 1b. The same at low load: --rate requests per second, one at a time (open loop): p50 / p99 ms.
// Options: --n 300 --warmup 30 --seconds 3 --concurrency 8 --hold 200 --rate 50 --paced-n 150
//          --executors <cores> --no-snapshot --actors 10000
// Every worker runs the same code on both sides; every fresh one has a unique nonce comment so no
// cache keyed on the source can be hit.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { WorkerLoader, type RunReport, type WorkerCode } from "../src/index.ts";
import { startWorkerdPeer, type WorkerdPeer } from "./peers/workerd.ts";
import { benchHttpLoad, type HttpLoad } from "./http-load.ts";
import { percentile, summarize, type Summary } from "./stats.ts";
import { codemodeTokensTable } from "./codemode-tokens.ts";
import { benchNoisyNeighbour, noisyNeighbourTable } from "./noisy-neighbour.ts";
import { benchWorkspace, workspaceTable } from "./workspace-ops.ts";
import { benchNpmLoad, npmLoadTable } from "./npm-load.ts";
import { actorsTable, benchActors } from "./actors.ts";
import { benchD1Postgres, d1PostgresTable } from "./d1-postgres.ts";

// node:util's parseArgs: the standard library's CLI parser, no dependency needed for a bench script.
const { values: args } = parseArgs({
  options: {
    n: { type: "string", default: "300" },
    warmup: { type: "string", default: "30" },
    seconds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "8" },
    hold: { type: "string", default: "200" },
    rate: { type: "string", default: "50" },
    "paced-n": { type: "string", default: "150" },
    executors: { type: "string", default: String(availableParallelism()) },
    "no-snapshot": { type: "boolean", default: false },
    actors: { type: "string", default: "10000" },
  },
});

function positive(name: keyof typeof args): number {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${args[name]}`);
  return v;
}

const N = positive("n");
const WARMUP = positive("warmup");
const SECONDS = positive("seconds");
const CONCURRENCY = positive("concurrency");
const HOLD = positive("hold");
const RATE = positive("rate");
const PACED_N = positive("paced-n");
const LOADER_OPTIONS = { executors: positive("executors"), snapshot: !args["no-snapshot"] };

const DYN_SRC =
  'export default { async fetch(req, env) { return new Response(JSON.stringify({ hello: "world", url: req.url })) } }';

function code(nonce: string | null): WorkerCode {
  return {
    compatibilityDate: "2025-06-01",
    mainModule: "main.js",
    modules: { "main.js": (nonce ? "// " + nonce + "\n" : "") + DYN_SRC },
  };
}

let nonceCounter = 0;
function nonce(): string {
  return `${process.pid}-${Date.now()}-${nonceCounter++}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// /proc helpers

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m || m[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process in ms (resolution 1000/CLK_TCK ms). */
function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function executorPids(loader: WorkerLoader): number[] {
  return loader.engine.stats().executors.map((e) => e.pid).filter((p) => p > 0);
}

async function executorsRssKiB(loader: WorkerLoader): Promise<number> {
  let sum = 0;
  for (const pid of executorPids(loader)) sum += await rssKiB(pid);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// the two sides' operations

async function mayflyFresh(loader: WorkerLoader): Promise<string> {
  const stub = loader.load(code(nonce()));
  try {
    const res = await stub.getEntrypoint().fetch("https://example.com/");
    return await res.text();
  } finally {
    stub.dispose();
  }
}

async function mayflyGet(loader: WorkerLoader, id: string, nonceForCode: string | null): Promise<string> {
  const stub = loader.get(id, () => code(nonceForCode));
  const res = await stub.getEntrypoint().fetch("https://example.com/");
  return await res.text();
}

async function httpGet(url: string): Promise<string> {
  const res = await fetch(url);
  const body = await res.text();
  if (!res.ok) throw new Error(`${url} -> ${res.status}: ${body}`);
  return body;
}

function checkBody(side: string, body: string): void {
  const parsed = JSON.parse(body) as { hello?: unknown };
  if (parsed.hello !== "world") throw new Error(`${side}: unexpected body ${body}`);
}

// ---------------------------------------------------------------------------------------------
// drivers

/**
 * Runs `op` warmup + n times, one at a time, and returns the n measured durations. An op that
 * returns a number reports its own duration (so it can do untimed work after the timed part).
 */
async function sequential(n: number, warmup: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await op(i);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const own = await op(warmup + i);
    times.push(typeof own === "number" ? own : performance.now() - t0);
  }
  return times;
}

/** Low load: one request every 1/rate s (open loop, never more than one in flight); each latency. */
async function paced(n: number, rate: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  const interval = 1000 / rate;
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    await op(i);
    times.push(performance.now() - t0);
  }
  return times;
}

interface Throughput {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  latencies: number[];
  cpuMsPerReq: number;
}

async function closedLoop(
  seconds: number,
  concurrency: number,
  op: () => Promise<unknown>,
  cpuNow: () => number,
): Promise<Throughput> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const lane = async () => {
    while (performance.now() < deadline) {
      const s = performance.now();
      try {
        await op();
        latencies.push(performance.now() - s);
      } catch (e) {
        errors++;
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuNow() - cpu0;
  if (errors) log(`${errors} errors during the throughput run; first: ${String((firstError as Error)?.stack ?? firstError)}`);
  return {
    requests: latencies.length,
    errors,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    latencies,
    cpuMsPerReq: cpu / Math.max(1, latencies.length),
  };
}

// ---------------------------------------------------------------------------------------------
// the run

interface Results {
  mayfly: {
    fresh: Summary;
    freshPaced: Summary;
    execWall: Summary;
    execCpu: Summary;
    tput: Throughput;
    warm: Summary;
    memMBPerIsolate: number;
    memBeforeMB: number;
    memAfterMB: number;
    recycles: number;
    restarts: number;
  };
  workerd: {
    fresh: Summary;
    freshPaced: Summary;
    health: Summary;
    tput: Throughput;
    warm: Summary;
    memMBPerIsolate: number;
    memBeforeMB: number;
    memAfterMB: number;
  };
}

async function benchLatencyAndThroughput(): Promise<Omit<Results["mayfly"], "memMBPerIsolate" | "memBeforeMB" | "memAfterMB"> & { w: Omit<Results["workerd"], "memMBPerIsolate" | "memBeforeMB" | "memAfterMB"> }> {
  const reports: RunReport[] = [];
  let collect = false;
  const loader = new WorkerLoader({ ...LOADER_OPTIONS, onRun: (r) => { if (collect) reports.push(r); } });
  let peer: WorkerdPeer | undefined;
  try {
    await loader.ready();
    peer = await startWorkerdPeer();
    const base = peer.url;
    const wpid = peer.pid;
    log(`mayfly executors ${executorPids(loader).join(",")}; workerd pid ${wpid} at ${base}`);

    checkBody("mayfly", await mayflyFresh(loader));
    checkBody("workerd", await httpGet(`${base}/load?n=check`));

    // 1. fresh isolate per request, sequential
    log(`fresh, sequential: mayfly (${WARMUP} warm-up + ${N})`);
    for (let i = 0; i < WARMUP; i++) await mayflyFresh(loader);
    collect = true;
    const mFresh = await sequential(N, 0, () => mayflyFresh(loader));
    collect = false;
    const freshReports = reports.splice(0);
    log(`fresh, sequential: workerd /load (${WARMUP} warm-up + ${N})`);
    const wFresh = await sequential(N, WARMUP, (i) => httpGet(`${base}/load?n=${i}`));

    // 1b. fresh isolate per request at low load: paced, so pool refills finish between requests
    log(`fresh, paced at ${RATE} req/s: mayfly and workerd (${PACED_N} each)`);
    const mPaced = await paced(PACED_N, RATE, () => mayflyFresh(loader));
    const wPaced = await paced(PACED_N, RATE, (i) => httpGet(`${base}/load?n=p${i}`));

    // 2. throughput
    log(`throughput: mayfly, concurrency ${CONCURRENCY}, ${SECONDS} s`);
    const mCpu = () => selfCpuMs() + executorPids(loader).reduce((s, pid) => s + procCpuMs(pid), 0);
    const mTput = await closedLoop(SECONDS, CONCURRENCY, () => mayflyFresh(loader), mCpu);
    log(`throughput: workerd /load, concurrency ${CONCURRENCY}, ${SECONDS} s`);
    const wTput = await closedLoop(SECONDS, CONCURRENCY, () => httpGet(`${base}/load`), () => procCpuMs(wpid));

    // 3. warm get(id)
    log(`warm get: mayfly (${WARMUP} warm-up + ${N})`);
    checkBody("mayfly get", await mayflyGet(loader, "warm", null));
    const mWarm = await sequential(N, WARMUP, () => mayflyGet(loader, "warm", null));
    // The trivial round trip (/health) is sampled alternately with the warm /get calls, so both see
    // the same conditions (sampled on its own right after the /load phases it reads high: workerd
    // is still tearing down isolates in the background).
    log(`warm get: workerd /get, alternating with /health (${WARMUP} warm-up + ${N} each)`);
    checkBody("workerd get", await httpGet(`${base}/get?id=warm`));
    const wHealth: number[] = [];
    const wWarm = await sequential(N, WARMUP, async (i) => {
      const t0 = performance.now();
      await httpGet(`${base}/get?id=warm`);
      const t1 = performance.now();
      await httpGet(`${base}/health`);
      if (i >= WARMUP) wHealth.push(performance.now() - t1);
      return t1 - t0;
    });

    const st = loader.engine.stats();
    return {
      fresh: summarize(mFresh),
      freshPaced: summarize(mPaced),
      execWall: summarize(freshReports.map((r) => r.wallMs)),
      execCpu: summarize(freshReports.map((r) => r.cpuMs)),
      tput: mTput,
      warm: summarize(mWarm),
      recycles: st.recycles,
      restarts: st.restarts,
      w: { fresh: summarize(wFresh), freshPaced: summarize(wPaced), health: summarize(wHealth), tput: wTput, warm: summarize(wWarm) },
    };
  } finally {
    await peer?.close();
    await loader.close();
  }
}

async function holdInLanes(count: number, lanes: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, count) }, lane));
}

async function benchMemoryMayfly(): Promise<{ perIsolate: number; before: number; after: number }> {
  const loader = new WorkerLoader({ ...LOADER_OPTIONS, idleTtlMs: 3_600_000, cache: { maxWorkers: 1000 } });
  try {
    await loader.ready();
    // Run each code path once so lazily created runtime state is not counted as isolate cost.
    for (let i = 0; i < 4; i++) await mayflyFresh(loader);
    await mayflyGet(loader, "mem-warmup", "mem-warmup");
    await sleep(500); // pool refill
    const before = await executorsRssKiB(loader);
    const prefix = `hold-${nonce()}-`;
    await holdInLanes(HOLD, 8, (i) => mayflyGet(loader, prefix + i, prefix + i));
    await sleep(1000); // pool refill, heap sampling
    const after = await executorsRssKiB(loader);
    // Every held worker must still be cached (getCode not called again), i.e. nothing was evicted.
    let evicted = 0;
    for (let i = 0; i < HOLD; i++) loader.get(prefix + i, () => (evicted++, code(prefix + i)));
    if (evicted) throw new Error(`${evicted} of ${HOLD} held mayfly workers were evicted`);
    return { perIsolate: (after - before) / 1024 / HOLD, before: before / 1024, after: after / 1024 };
  } finally {
    await loader.close();
  }
}

async function benchMemoryWorkerd(): Promise<{ perIsolate: number; before: number; after: number }> {
  const peer = await startWorkerdPeer();
  try {
    for (let i = 0; i < 4; i++) await httpGet(`${peer.url}/load?n=mem-warmup`);
    await httpGet(`${peer.url}/get?id=mem-warmup`);
    await sleep(500);
    const before = await rssKiB(peer.pid);
    const prefix = `hold-${nonce()}-`;
    const body = JSON.parse(await httpGet(`${peer.url}/hold?count=${HOLD}&prefix=${prefix}&concurrency=8`)) as { held: number };
    if (body.held !== HOLD) throw new Error(`workerd held ${body.held} of ${HOLD}`);
    await sleep(1000);
    const after = await rssKiB(peer.pid);
    return { perIsolate: (after - before) / 1024 / HOLD, before: before / 1024, after: after / 1024 };
  } finally {
    await peer.close();
  }
}

// ---------------------------------------------------------------------------------------------
// report

function machineLine(): string {
  let cpu = "unknown CPU";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) cpu = m[1].trim();
  } catch {}
  let workerdVersion = "?";
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    workerdVersion = (JSON.parse(readFileSync(join(here, "..", "node_modules", "workerd", "package.json"), "utf8")) as { version: string }).version;
  } catch {}
  const memGiB = (totalmem() / 1024 ** 3).toFixed(1);
  return `${availableParallelism()} cores (nproc), ${cpu}, ${memGiB} GiB RAM, Node ${process.version}, workerd ${workerdVersion}`;
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : "n/a");
const mb = (x: number) => `${x.toFixed(2)} MB`;
/** A difference of two p50s; a negative one means the effect is below the noise of the hop. */
const diff = (x: number) => (x < 0 ? `≈ 0 (${x.toFixed(2)} ms, below noise)` : ms(x));
const ratio = (x: number) => (Number.isFinite(x) && x > 0 ? `${x.toFixed(1)}×` : "n/a");

function table(r: Results): string {
  const m = r.mayfly;
  const w = r.workerd;
  const hop = w.health.p50;
  const rows: string[][] = [
    [`fresh isolate per request at low load (${RATE} req/s paced), p50`, ms(m.freshPaced.p50), `${ms(w.freshPaced.p50)} ¹`, ratio(w.freshPaced.p50 / m.freshPaced.p50)],
    [`fresh isolate per request at low load (${RATE} req/s paced), p99`, ms(m.freshPaced.p99), `${ms(w.freshPaced.p99)} ¹`, ratio(w.freshPaced.p99 / m.freshPaced.p99)],
    ["fresh isolate per request, back to back, p50 (c=1)", ms(m.fresh.p50), `${ms(w.fresh.p50)} ¹`, ratio(w.fresh.p50 / m.fresh.p50)],
    ["fresh isolate per request, back to back, p99 (c=1)", ms(m.fresh.p99), `${ms(w.fresh.p99)} ¹`, ratio(w.fresh.p99 / m.fresh.p99)],
    ["trivial HTTP round trip p50 (workerd `/health`) ⁴", "—", ms(hop), "—"],
    ["fresh p50 minus the HTTP round trip", ms(m.fresh.p50), diff(w.fresh.p50 - hop), ratio((w.fresh.p50 - hop) / m.fresh.p50)],
    [`fresh-isolate throughput (c=${CONCURRENCY}, ${SECONDS} s)`, `${m.tput.rps.toFixed(0)} req/s`, `${w.tput.rps.toFixed(0)} req/s ¹`, ratio(m.tput.rps / w.tput.rps)],
    [`fresh latency p50 under load (c=${CONCURRENCY})`, ms(percentile(m.tput.latencies, 50)), `${ms(percentile(w.tput.latencies, 50))} ¹`, ratio(percentile(w.tput.latencies, 50) / percentile(m.tput.latencies, 50))],
    [`runtime CPU per fresh request (c=${CONCURRENCY}) ²`, ms(m.tput.cpuMsPerReq), ms(w.tput.cpuMsPerReq), ratio(w.tput.cpuMsPerReq / m.tput.cpuMsPerReq)],
    ["warm `get(id)` call p50 (same id, c=1)", ms(m.warm.p50), `${ms(w.warm.p50)} ¹`, ratio(w.warm.p50 / m.warm.p50)],
    ["warm `get(id)` p50 minus the HTTP round trip", ms(m.warm.p50), diff(w.warm.p50 - hop), ratio((w.warm.p50 - hop) / m.warm.p50)],
    [`memory per live isolate (N=${HOLD}, RSS delta / N) ³`, mb(m.memMBPerIsolate), mb(w.memMBPerIsolate), ratio(w.memMBPerIsolate / m.memMBPerIsolate)],
    ["mayfly executor-side wall p50, fresh path (`RunReport.wallMs`)", ms(m.execWall.p50), "—", "—"],
  ];
  const out = [
    "| metric | mayfly | workerd | ratio |",
    "| --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  return out.join("\n");
}

function details(r: Results): string {
  const s = (x: Summary) =>
    `n=${x.n} min ${x.min.toFixed(2)} p50 ${x.p50.toFixed(2)} p90 ${x.p90.toFixed(2)} p99 ${x.p99.toFixed(2)} max ${x.max.toFixed(2)} mean ${x.mean.toFixed(2)} ms`;
  const m = r.mayfly;
  const w = r.workerd;
  return [
    `mayfly  fresh paced      ${s(m.freshPaced)}`,
    `workerd fresh paced      ${s(w.freshPaced)}`,
    `mayfly  fresh c=1        ${s(m.fresh)}`,
    `workerd fresh c=1        ${s(w.fresh)}`,
    `workerd /health c=1      ${s(w.health)}`,
    `mayfly  warm get c=1     ${s(m.warm)}`,
    `workerd warm get c=1     ${s(w.warm)}`,
    `mayfly  RunReport.wallMs ${s(m.execWall)}`,
    `mayfly  RunReport.cpuMs  ${s(m.execCpu)}`,
    `mayfly  throughput       ${m.tput.requests} requests in ${m.tput.seconds.toFixed(2)} s, ${m.tput.errors} errors, p99 ${percentile(m.tput.latencies, 99).toFixed(2)} ms`,
    `workerd throughput       ${w.tput.requests} requests in ${w.tput.seconds.toFixed(2)} s, ${w.tput.errors} errors, p99 ${percentile(w.tput.latencies, 99).toFixed(2)} ms`,
    `mayfly  memory           executors' RSS ${m.memBeforeMB.toFixed(1)} -> ${m.memAfterMB.toFixed(1)} MB for ${HOLD} live isolates`,
    `workerd memory           RSS ${w.memBeforeMB.toFixed(1)} -> ${w.memAfterMB.toFixed(1)} MB for ${HOLD} live isolates`,
    `mayfly  supervisor       ${m.recycles} executor recycles, ${m.restarts} restarts during the latency/throughput phases`,
  ].join("\n");
}

function httpTable(h: { mayfly: HttpLoad; workerd: HttpLoad }, libraryRps: number): string {
  const m = h.mayfly;
  const w = h.workerd;
  return [
    `over HTTP, fresh isolate per request (autocannon, ${CONCURRENCY} connections, ${SECONDS} s; mayfly: \`mayfly serve\` /w/<name>/, workerd: /load):`,
    "",
    "| metric | mayfly | workerd | ratio |",
    "| --- | --- | --- | --- |",
    `| requests per second | ${m.rps.toFixed(0)} req/s | ${w.rps.toFixed(0)} req/s | ${ratio(m.rps / w.rps)} |`,
    `| latency p50 | ${ms(m.p50)} | ${ms(w.p50)} | ${ratio(w.p50 / m.p50)} |`,
    `| latency p99 | ${ms(m.p99)} | ${ms(w.p99)} | ${ratio(w.p99 / m.p99)} |`,
    `| errors / non-2xx | ${m.errors} / ${m.non2xx} | ${w.errors} / ${w.non2xx} | — |`,
    `| the same, in process through the library (throughput row above) | ${libraryRps.toFixed(0)} req/s | — | — |`,
  ].join("\n");
}

/** The in-isolate runtime's cost per fresh isolate, by technique (bench/runtime-cost.ts, own process). */
function runtimeCostTable(): string {
  const script = join(dirname(fileURLToPath(import.meta.url)), "runtime-cost.ts");
  const out = JSON.parse(execFileSync(process.execPath, ["--no-node-snapshot", script], { encoding: "utf8" })) as {
    runtimeBytes: number; techniques: Record<string, number>; phases: Record<string, number>;
  };
  const bare = Object.values(out.techniques)[0]!;
  const phaseTotal = Object.values(out.phases).reduce((a, b) => a + b, 0);
  return [
    `runtime cost per fresh isolate (create + dispose, one thread; runtime bundle ${(out.runtimeBytes / 1024).toFixed(1)} KB):`,
    "",
    "| technique | CPU ms per isolate | runtime's share |",
    "| --- | --- | --- |",
    ...Object.entries(out.techniques).map(([name, v]) => `| ${name} | ${ms(v)} | ${ms(v - bare)} |`),
    "",
    "where a snapshot isolate's time goes (median per step, one thread; the rest of a request's CPU is IPC, module compile, dispatch and GC):",
    "",
    "| step | ms | share |",
    "| --- | --- | --- |",
    ...Object.entries(out.phases).map(([step, v]) => `| ${step} | ${ms(v)} | ${((100 * v) / phaseTotal).toFixed(0)}% |`),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
const lat = await benchLatencyAndThroughput();
log("memory: mayfly");
const mMem = await benchMemoryMayfly();
log("memory: workerd");
const wMem = await benchMemoryWorkerd();
log(`HTTP load (autocannon, ${CONCURRENCY} connections, ${SECONDS} s each): mayfly serve, then workerd`);
const http = await benchHttpLoad({ connections: CONCURRENCY, seconds: SECONDS, executors: LOADER_OPTIONS.executors });
log(`noisy neighbour: a benign tenant alone, then beside 2 runaways and 2 heap bombs (${SECONDS} s each)`);
const noisy = await benchNoisyNeighbour(LOADER_OPTIONS, SECONDS);
log("workspace: 1,000 small files, a 50 MB file through a 32 MB isolate, 4 KB readFile ops/s");
const wsOps = await benchWorkspace(LOADER_OPTIONS.executors);
log("npm: a worker importing zod and date-fns, cold (empty cache) and cached (registry on loopback)");
const npmLoad = await benchNpmLoad(LOADER_OPTIONS.executors);
log(`actors: warm RPC, storage put+get, cold start from storage, ${args.actors} actors created then evicted`);
const actors = await benchActors(LOADER_OPTIONS.executors, positive("actors"));
log("many hosts: D1 on PostgreSQL (three stores), then a three-host cluster with PostgreSQL and HAProxy");
const d1Pg = await benchD1Postgres();
const cluster = execFileSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), "cluster.ts"), "--seconds", String(SECONDS)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

const results: Results = {
  mayfly: {
    fresh: lat.fresh, freshPaced: lat.freshPaced, execWall: lat.execWall, execCpu: lat.execCpu, tput: lat.tput, warm: lat.warm,
    recycles: lat.recycles, restarts: lat.restarts,
    memMBPerIsolate: mMem.perIsolate, memBeforeMB: mMem.before, memAfterMB: mMem.after,
  },
  workerd: {
    ...lat.w,
    memMBPerIsolate: wMem.perIsolate, memBeforeMB: wMem.before, memAfterMB: wMem.after,
  },
};

console.log(`mayfly vs workerd — ${new Date().toISOString().slice(0, 10)}`);
console.log(`machine: ${machineLine()}`);
console.log(`settings: n=${N} after ${WARMUP} warm-up, throughput c=${CONCURRENCY} for ${SECONDS} s, hold N=${HOLD}; mayfly executors=${LOADER_OPTIONS.executors}, poolSize 4, runtime ${LOADER_OPTIONS.snapshot ? "snapshot" : "evaluated per isolate"}`);
console.log("");
console.log(table(results));
console.log("");
console.log("¹ workerd's figure includes a loopback HTTP hop from the benchmark process (Node fetch) to workerd; its p50 is the `/health` row.");
console.log("² CPU time (utime+stime) spent per request during the throughput run: mayfly = host process (incl. the benchmark loop) + executors; workerd = the workerd process only (the benchmark's HTTP client is not counted).");
console.log("³ mayfly: sum of the executors' VmRSS; workerd: its VmRSS; each measured on freshly started processes. Ratios: workerd/mayfly for latency, CPU and memory; mayfly/workerd for throughput.");
console.log("⁴ sampled alternately with the warm `/get` calls; the \"minus the HTTP round trip\" rows subtract it.");
console.log("");
console.log(httpTable(http, lat.tput.rps));
console.log("");
console.log(runtimeCostTable());
console.log("");
console.log(noisyNeighbourTable(noisy));
console.log("");
console.log(workspaceTable(wsOps));
console.log("");
console.log(npmLoadTable(npmLoad));
console.log("");
console.log(actorsTable(actors));
console.log("");
console.log(d1PostgresTable(d1Pg));
console.log("");
console.log(cluster.trim());
console.log("");
console.log("details:");
console.log(details(results));
console.log("");
console.log(await codemodeTokensTable());
console.log(`\ntotal bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);

// Everything is closed; the process should exit on its own. If something still holds the event
// loop, say so (that would be a bug) and exit anyway.
setTimeout(() => {
  log("warning: something kept the event loop alive after close(); forcing exit");
  process.exit(0);
}, 10_000).unref();
