// Durable actors (issue 13): an RPC call into a warm actor (p50), a storage put+get round trip, a cold
// start from storage (the actor's isolate evicted, rebuilt on the next call, p50), and N actors created
// with one row each, then left idle until evicted: host and executor memory afterwards.
// Alone: `node bench/actors.ts [actors]` (default 10,000; try 200 for a quick look).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { WorkerLoader, actorNamespace, type WorkerCode } from "../src/index.ts";
import { percentile } from "./stats.ts";

export interface ActorsBench {
  rpcP50Ms: number;
  rpcP99Ms: number;
  /** One put and one get, measured over a batch inside one call. */
  putGetUs: number;
  coldStartP50Ms: number;
  coldStarts: number;
  actors: number;
  createMs: number;
  hostRssBefore: number;
  hostRssAfter: number;
  hostHeapAfter: number;
  executorsRssAfter: number;
  liveAfter: number;
}

const CODE: WorkerCode = {
  compatibilityDate: "2025-06-01", mainModule: "m.js", limits: { cpuMs: 10_000, wallMs: 60_000 },
  modules: { "m.js": `
    import { DurableObject } from "cloudflare:workers";
    export class Bench extends DurableObject {
      constructor(ctx, env) { super(ctx, env); ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT)"); }
      ping() { return 1; }
      async putGet(n) {
        let sum = 0;
        for (let i = 0; i < n; i++) { await this.ctx.storage.put("k", i); sum += await this.ctx.storage.get("k"); }
        return sum;
      }
      addRow(v) { this.ctx.storage.sql.exec("INSERT INTO rows (v) VALUES (?)", v); }
      count() { return this.ctx.storage.sql.exec("SELECT count(*) AS c FROM rows").one().c; }
    }` },
};

function gc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

export async function benchActors(executors: number, actors = 10_000, calls = 1_000, coldStarts = 50): Promise<ActorsBench> {
  const dataDir = mkdtempSync(join(tmpdir(), "mayfly-bench-actors-"));
  const loader = new WorkerLoader({ executors });
  const ns = actorNamespace({ loader, worker: CODE, className: "Bench", dataDir, idleTtlMs: 500 });
  try {
    await loader.ready();
    const warm = ns.getByName("warm");
    for (let i = 0; i < 50; i++) await warm.ping();
    const rpc: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await warm.ping();
      rpc.push(performance.now() - t0);
    }
    const ops = 2_000;
    const t0 = performance.now();
    await warm.putGet(ops);
    const putGetUs = ((performance.now() - t0) * 1000) / ops;

    const cold: number[] = [];
    for (let i = 0; i < coldStarts; i++) {
      const stub = ns.getByName(`cold-${i}`);
      for (let r = 0; r < 10; r++) await stub.addRow(`row ${r}`);
      ns.abort(stub.id); // as eviction does: the isolate goes, the storage stays
      const t = performance.now();
      if ((await stub.count()) !== 10) throw new Error("actors bench: a cold actor lost its rows");
      cold.push(performance.now() - t);
      ns.abort(stub.id);
    }

    gc();
    const hostRssBefore = process.memoryUsage().rss;
    const created = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < actors) {
        const i = next++;
        await ns.getByName(`many-${i}`).addRow(`the only row of ${i}`);
      }
    }));
    const createMs = performance.now() - created;
    const deadline = Date.now() + 60_000;
    while (ns.liveActors > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // executors free the isolates they were told to
    gc();
    const mem = process.memoryUsage();
    return {
      rpcP50Ms: percentile(rpc, 50), rpcP99Ms: percentile(rpc, 99), putGetUs,
      coldStartP50Ms: percentile(cold, 50), coldStarts,
      actors, createMs, hostRssBefore, hostRssAfter: mem.rss, hostHeapAfter: mem.heapUsed,
      executorsRssAfter: loader.engine.stats().executors.reduce((s, e) => s + e.rssBytes, 0),
      liveAfter: ns.liveActors,
    };
  } finally {
    await ns.close();
    await loader.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function actorsTable(r: ActorsBench): string {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
  return [
    "durable actors (mayfly only; host → actor RPC through the loader's executors):",
    "",
    "| measure | value |",
    "| --- | --- |",
    `| RPC call into a warm actor, p50 / p99 | ${r.rpcP50Ms.toFixed(2)} / ${r.rpcP99Ms.toFixed(2)} ms |`,
    `| storage put + get round trip (inside the actor; each put is a durable commit) | ${r.putGetUs.toFixed(0)} µs |`,
    `| cold start from storage (evicted actor, 10 rows, first call), p50 of ${r.coldStarts} | ${r.coldStartP50Ms.toFixed(2)} ms |`,
    `| ${r.actors.toLocaleString("en")} actors created, one row each | ${(r.createMs / 1000).toFixed(1)} s (${(r.actors / (r.createMs / 1000)).toFixed(0)} actors/s) |`,
    `| host memory after they were all evicted (RSS before → after; heap) | ${mb(r.hostRssBefore)} → ${mb(r.hostRssAfter)}; heap ${mb(r.hostHeapAfter)}; ${r.liveAfter} live |`,
    `| executors' RSS after eviction | ${mb(r.executorsRssAfter)} |`,
  ].join("\n");
}

if (import.meta.main) {
  const n = Number(process.argv[2] ?? 10_000);
  console.log(actorsTable(await benchActors(1, n, Math.min(1_000, n * 5), Math.min(50, n))));
}
