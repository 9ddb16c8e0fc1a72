// Two tenants spinning `for(;;){}` and two running heap bombs, continuously, on a 2-executor loader
// (this machine has 2 cores), while a benign tenant makes small requests one after another. Every
// runaway is cut within 1.2× its cpuMs (as its RunReport counts CPU), every bomb is a MemoryLimitError
// of its own run, the benign tenant never fails, and no executor dies. Latency under this load is a
// benchmark's business (bench/run.ts), not asserted here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useLoader, worker } from "./helpers.ts";

const CPU_MS = 50;
const SECONDS = 3;
const ctx = useLoader({ executors: 2 });

const spin = worker("export default { fetch() { for (;;) {} } }", { limits: { cpuMs: CPU_MS } });
const bomb = worker("export default { fetch() { const a = []; for (;;) a.push({ x: new Array(1000).fill(1) }) } }", { limits: { memoryMb: 32, cpuMs: 5_000 } });
const benign = "export default { fetch(r) { return Response.json({ n: new Array(1000).fill(1).length, url: r.url }) } }";

/** Runs `code` again and again until `until`, collecting what each run ended with. */
async function tenant(code: ReturnType<typeof worker>, until: number, seen: string[]): Promise<void> {
  while (performance.now() < until) {
    const stub = ctx.loader.load(code);
    try {
      await stub.getEntrypoint().fetch("http://tenant/");
      seen.push("answered");
    } catch (e) {
      seen.push((e as Error).name);
    } finally {
      stub.dispose();
    }
  }
}

// The cut is timely because the executor's own thread (the watchdog's tick) outranks the threads that
// run guest code (guestThreadNice, default 19): with equal priority it waited for a core behind the
// runaways, and cuts landed at up to 2× cpuMs (2026-12-06).
test("runaways are cut within 1.2× cpuMs, bombs end their own run, a benign tenant never fails", async () => {
  const until = performance.now() + SECONDS * 1000;
  const spins: string[] = [], bombs: string[] = [];
  const noisy = [tenant(spin, until, spins), tenant(spin, until, spins), tenant(bomb, until, bombs), tenant(bomb, until, bombs)];
  let benignRuns = 0;
  while (performance.now() < until) {
    const stub = ctx.loader.load(worker(benign));
    const res = await stub.getEntrypoint().fetch("http://benign/" + benignRuns);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { n: 1000, url: "http://benign/" + benignRuns });
    stub.dispose();
    benignRuns++;
  }
  await Promise.all(noisy);
  assert.ok(spins.length >= 4 && bombs.length >= 2, `enough noisy runs: ${spins.length} spins, ${bombs.length} bombs`);
  assert.deepEqual([...new Set(spins)], ["CpuTimeLimitError"]);
  assert.deepEqual([...new Set(bombs)], ["MemoryLimitError"]);
  const cut = ctx.reports.filter((r) => r.outcome === "exceededCpu").map((r) => r.cpuMs);
  assert.equal(cut.length, spins.length);
  const worst = Math.max(...cut);
  assert.ok(worst <= CPU_MS * 1.2, `the latest cut came at ${worst.toFixed(1)} ms of CPU (limit ${CPU_MS} ms): ${cut.map((c) => c.toFixed(1)).join(", ")}`);
  assert.ok(benignRuns > 0);
  assert.equal(ctx.loader.engine.stats().restarts, 0, "no executor died");
});
