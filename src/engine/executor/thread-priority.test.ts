import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { ConfigError, WorkerLoader } from "../../index.ts";

/** Each thread of a process: its id and nice value, from /proc. */
function threads(pid: number): { tid: number; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((t) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      // Fields after the ")" that closes comm: nice is field 19, the 17th after it.
      return [{ tid: Number(t), nice: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]) }];
    } catch {
      return []; // the thread ended while we looked
    }
  });
}

/** Runs several workers at once (isolated-vm starts pool threads for them), then lets a sweep pass. */
async function runSome(loader: WorkerLoader): Promise<{ pid: number; raised: boolean }> {
  await loader.ready();
  await Promise.all(Array.from({ length: 6 }, async (_, i) => {
    const stub = loader.load({ compatibilityDate: "2025-06-01", mainModule: "m.js", modules: { "m.js": `export default { async fetch() { await new Promise((r) => setTimeout(r, 20)); return new Response("${i}") } }` } });
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/")).text(), String(i));
    stub.dispose();
  }));
  await new Promise((r) => setTimeout(r, 100));
  const e = loader.engine.stats().executors[0]!;
  return { pid: e.pid, raised: e.mainThreadRaised };
}

const linux = process.platform === "linux";
const mayRaise = linux && process.getuid?.() === 0;

test("the executor's main thread is raised above every other thread of the process, which stay at the process's priority", { skip: !mayRaise && "raising a thread's priority needs CAP_SYS_NICE (run as root to test it)" }, async () => {
  const loader = new WorkerLoader({ executors: 1, mainThreadBoost: 7 });
  try {
    const { pid, raised } = await runSome(loader);
    assert.equal(raised, true);
    const all = threads(pid);
    assert.equal(all.find((t) => t.tid === pid)!.nice, -7);
    const others = all.filter((t) => t.tid !== pid);
    assert.ok(others.length >= 4, `isolated-vm's and V8's threads: ${JSON.stringify(all)}`);
    assert.deepEqual([...new Set(others.map((t) => t.nice))], [0], "a thread started by the raised main thread kept its raised priority");
  } finally {
    await loader.close();
  }
});

test("mainThreadBoost 0 leaves every thread alone; out of range is a ConfigError", { skip: !linux && "per-thread nice is read from Linux's /proc" }, async () => {
  assert.throws(() => new WorkerLoader({ mainThreadBoost: 21 }), (e: Error) => e instanceof ConfigError && /0 to 20/.test(e.message));
  assert.throws(() => new WorkerLoader({ mainThreadBoost: -1 }), ConfigError);
  const loader = new WorkerLoader({ executors: 1, mainThreadBoost: 0 });
  try {
    const { pid, raised } = await runSome(loader);
    assert.equal(raised, false);
    assert.deepEqual([...new Set(threads(pid).map((t) => t.nice))], [0]);
  } finally {
    await loader.close();
  }
});
