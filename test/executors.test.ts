import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorCrashedError, WorkerLoader } from "../src/index.ts";
import { fetchText, worker } from "./helpers.ts";

const ok = () => worker(`export default { fetch() { return new Response("ok") } }`);
const hang = () => worker(`export default { async fetch() { await new Promise(() => {}) } }`, { limits: { wallMs: 60_000 } });

async function waitFor<T>(fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("executor processes", () => {
  test("isolates never live in the host: runs happen in executor child processes", async () => {
    const l = new WorkerLoader({ executors: 2 });
    try {
      await l.ready();
      const pids = l.engine.stats().executors.map((e) => e.pid);
      assert.equal(pids.length, 2);
      assert.ok(pids.every((p) => p > 0 && p !== process.pid));
    } finally {
      await l.close();
    }
  });

  test("SIGKILL of an executor mid-run fails only its runs; the next run succeeds within a second", async () => {
    const l = new WorkerLoader({ executors: 2 });
    try {
      await l.ready();
      const victim = l.load(hang());
      const pending = fetchText(victim).catch((e) => e);
      const busy = await waitFor(() => l.engine.stats().executors.find((e) => e.inFlight > 0));
      // A run on the other executor, in flight while its neighbour dies.
      const bystander = l.load(worker(`export default { async fetch() { let x = 0; for (let i = 0; i < 1e6; i++) x += i; return new Response("bystander " + (x > 0)) } }`));
      const bystanderRun = fetchText(bystander);
      process.kill(busy.pid, "SIGKILL");
      const err = await pending;
      assert.ok(err instanceof ExecutorCrashedError, `got ${err}`);
      assert.equal(err.name, "ExecutorCrashedError");
      assert.match(err.message, /SIGKILL/);
      assert.equal(await bystanderRun, "bystander true");
      const t = performance.now();
      assert.equal(await fetchText(l.load(ok())), "ok");
      assert.ok(performance.now() - t < 1000, "next run within a second");
      // The killed executor is replaced.
      await waitFor(() => (l.engine.stats().executors.length === 2 && l.engine.stats().restarts === 1 ? true : undefined));
      assert.ok(!l.engine.stats().executors.some((e) => e.pid === busy.pid));
      // The stub whose executor died starts afresh on its next call.
      const again = l.load(worker(`export default { fetch() { return new Response("back") } }`));
      assert.equal(await fetchText(again), "back");
    } finally {
      await l.close();
    }
  });

  test("a segfaulting executor (SIGSEGV) is handled the same way", async () => {
    const l = new WorkerLoader({ executors: 1 });
    try {
      await l.ready();
      const pending = fetchText(l.load(hang())).catch((e) => e);
      const busy = await waitFor(() => l.engine.stats().executors.find((e) => e.inFlight > 0));
      process.kill(busy.pid, "SIGSEGV");
      assert.ok((await pending) instanceof ExecutorCrashedError);
      assert.equal(await fetchText(l.load(ok())), "ok");
    } finally {
      await l.close();
    }
  });

  test("executors are recycled after N workers, draining without failing any run", async () => {
    const l = new WorkerLoader({ executors: 1, recycleAfterRuns: 5 });
    try {
      await l.ready();
      const long = l.load(worker(`export default { async fetch() { let x = 0; for (let i = 0; i < 3e6; i++) x += i; return new Response("long") } }`));
      const results = await Promise.all([
        fetchText(long),
        ...Array.from({ length: 20 }, (_, i) => fetchText(l.load(worker(`export default { fetch() { return new Response("r${i}") } }`)))),
      ]);
      assert.equal(results[0], "long");
      assert.deepEqual(results.slice(1), Array.from({ length: 20 }, (_, i) => `r${i}`));
      for (let i = 0; i < 10; i++) assert.equal(await fetchText(l.load(ok())), "ok");
      const stats = l.engine.stats();
      assert.ok(stats.recycles >= 3, `recycled ${stats.recycles} times`);
      assert.equal(stats.restarts, 0, "no executor crashed");
    } finally {
      await l.close();
    }
  });

  test("after a warm-up, sequential load() runs leave RSS flat (no growth in every window of 400)", async () => {
    const l = new WorkerLoader({ executors: 1, recycleAfterRuns: 100_000 });
    try {
      await l.ready();
      const rss = () => {
        const [e] = l.engine.stats().executors;
        return e!.rssBytes;
      };
      const run = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const stub = l.load(worker(`const big = new Array(1000).fill("x" + ${i}); export default { fetch() { return new Response(String(big.length)) } }`));
          assert.equal(await fetchText(stub), "1000");
          stub.dispose();
        }
      };
      // Warm-up: pools, code caches and the allocator's arenas grow for the first few hundred runs
      // (measured: ~15 MB over runs 200-1000, ~5 MB over runs 1000-1800, old and new code alike), and
      // freed memory goes back to the system late and unevenly: one window of runs can read +12 MB on a
      // busy machine. A leak grows in every window, so the least growth of three windows of 400 runs
      // is the figure (each reading after a pause).
      const settled = async () => {
        await new Promise((r) => setTimeout(r, 500));
        await fetchText(l.load(worker(`export default { fetch() { return new Response("x") } }`)));
        return { executor: rss(), host: process.memoryUsage.rss() };
      };
      await run(1000);
      const growth = { executor: [] as number[], host: [] as number[] };
      let before = await settled();
      for (let w = 0; w < 3; w++) {
        await run(400);
        const after = await settled();
        growth.executor.push((after.executor - before.executor) / 1024 / 1024);
        growth.host.push((after.host - before.host) / 1024 / 1024);
        before = after;
      }
      // 8 MB over 400 runs: a leak of 20 KB per run would fail every window.
      const shown = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
      assert.ok(Math.min(...growth.executor) < 8, `executor RSS grew in every window: ${shown(growth.executor)} MB`);
      assert.ok(Math.min(...growth.host) < 8, `host RSS grew in every window: ${shown(growth.host)} MB`);
    } finally {
      await l.close();
    }
  });
});
