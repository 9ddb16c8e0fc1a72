import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { ConfigError, WorkerLoader } from "../../index.ts";

/** Each thread of a process: its name and nice value, from /proc. */
function threads(pid: number): { tid: number; name: string; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((t) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      // Fields after the ")" that closes comm: nice is field 19, the 17th after it.
      return [{ tid: Number(t), name, nice: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]) }];
    } catch {
      return []; // the thread ended while we looked
    }
  });
}

async function runSome(loader: WorkerLoader): Promise<number> {
  await loader.ready();
  // Concurrent runs, so isolated-vm starts several pool threads.
  await Promise.all(Array.from({ length: 6 }, async (_, i) => {
    const stub = loader.load({ compatibilityDate: "2025-06-01", mainModule: "m.js", modules: { "m.js": `export default { async fetch() { await new Promise((r) => setTimeout(r, 20)); return new Response("${i}") } }` } });
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/")).text(), String(i));
    stub.dispose();
  }));
  await new Promise((r) => setTimeout(r, 100)); // one sweep of the executor's priority check
  return loader.engine.stats().executors[0]!.pid;
}

test("threads that run guest code get the configured nice value; the executor's own thread keeps its own", { skip: process.platform !== "linux" && "per-thread nice is read from Linux's /proc" }, async () => {
  const loader = new WorkerLoader({ executors: 1, guestThreadNice: 15 });
  try {
    const pid = await runSome(loader);
    const all = threads(pid);
    const main = all.find((t) => t.tid === pid)!;
    const guest = all.filter((t) => t.tid !== pid && t.name === "MainThread");
    assert.equal(main.nice, 0);
    assert.ok(guest.length >= 1, `isolated-vm's pool threads: ${JSON.stringify(all)}`);
    assert.deepEqual([...new Set(guest.map((t) => t.nice))], [15]);
  } finally {
    await loader.close();
  }
});

test("guestThreadNice 0 leaves every thread alone; out of range is a ConfigError", { skip: process.platform !== "linux" && "per-thread nice is read from Linux's /proc" }, async () => {
  assert.throws(() => new WorkerLoader({ guestThreadNice: 20 }), (e: Error) => e instanceof ConfigError && /0 to 19/.test(e.message));
  assert.throws(() => new WorkerLoader({ guestThreadNice: -1 }), ConfigError);
  const loader = new WorkerLoader({ executors: 1, guestThreadNice: 0 });
  try {
    const pid = await runSome(loader);
    assert.deepEqual([...new Set(threads(pid).map((t) => t.nice))], [0]);
  } finally {
    await loader.close();
  }
});
