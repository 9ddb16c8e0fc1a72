import { test } from "node:test";
import assert from "node:assert/strict";
import { actorNamespace, type ActorNamespace } from "../../src/index.ts";
import { useLoader, useTempDir, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dir = useTempDir("mayfly-actors-");

const COUNTER = `
import { DurableObject } from "cloudflare:workers";
export class Counter extends DurableObject {
  async increment(by = 1) {
    const n = (await this.ctx.storage.get("n")) ?? 0;
    await this.ctx.storage.put("n", n + by);
    return n + by;
  }
  async value() { return (await this.ctx.storage.get("n")) ?? 0; }
  async fetch(request) { return new Response(String(await this.increment())); }
}
export default { fetch() { return new Response("main") } };
`;

function counters(name: string, extra: Partial<Parameters<typeof actorNamespace>[0]> = {}): ActorNamespace {
  return actorNamespace({ loader: ctx.loader, worker: worker(COUNTER), className: "Counter", dataDir: dir, name, ...extra });
}

test("a counter actor incremented by 100 concurrent calls ends at exactly 100", async () => {
  const ns = counters("concurrent");
  try {
    const stub = ns.getByName("c");
    const results = await Promise.all(Array.from({ length: 100 }, () => stub.increment()));
    assert.equal(await stub.value(), 100);
    assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(await (await stub.fetch("http://actor/")).text(), "101");
  } finally {
    await ns.close();
  }
});

test("two names get two independent stores", async () => {
  const ns = counters("independent");
  try {
    await ns.getByName("a").increment(5);
    await ns.getByName("b").increment(7);
    assert.equal(await ns.getByName("a").value(), 5);
    assert.equal(await ns.getByName("b").value(), 7);
    assert.equal(ns.idFromName("a").toString(), ns.idFromName("a").toString());
    assert.notEqual(ns.idFromName("a").toString(), ns.idFromName("b").toString());
    assert.match(ns.newUniqueId().toString(), /^[0-9a-f]{64}$/);
  } finally {
    await ns.close();
  }
});

test("limits apply per call: a call past cpuMs ends with CpuTimeLimitError and the actor carries on from its storage", async () => {
  const code = worker(`
    import { DurableObject } from "cloudflare:workers";
    export class Spinner extends DurableObject {
      async save(v) { await this.ctx.storage.put("v", v); this.mem = v; }
      async read() { return { stored: await this.ctx.storage.get("v"), inMemory: this.mem ?? null }; }
      spin() { for (;;) {} }
    }`, { limits: { cpuMs: 50 } });
  const ns = actorNamespace({ loader: ctx.loader, worker: code, className: "Spinner", dataDir: dir, name: "limits" });
  try {
    const stub = ns.getByName("s");
    await stub.save("kept");
    await assert.rejects(stub.spin(), { name: "CpuTimeLimitError" });
    assert.deepEqual(await stub.read(), { stored: "kept", inMemory: null }, "a fresh isolate, rebuilt from storage");
  } finally {
    await ns.close();
  }
});

test("a namespace is validated, and one data directory has one open namespace", () => {
  assert.throws(() => actorNamespace({ loader: ctx.loader, worker: worker(COUNTER), className: "", dataDir: dir }), { name: "ConfigError" });
  const ns = counters("single");
  try {
    assert.throws(() => counters("single"), { name: "ConfigError", message: /already open/ });
    assert.throws(() => ns.idFromString("xyz"), TypeError);
  } finally {
    void ns.close();
  }
});

test("maxStorageBytes: a write past an actor's quota fails with QuotaExceededError and changes nothing", async () => {
  const code = worker(`
    import { DurableObject } from "cloudflare:workers";
    export class Big extends DurableObject {
      constructor(ctx, env) { super(ctx, env); ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS blobs (b BLOB)"); }
      add(kb) { this.ctx.storage.sql.exec("INSERT INTO blobs VALUES (zeroblob(?))", kb * 1024); }
      inTransaction(kb) {
        try { this.ctx.storage.transactionSync(() => { this.add(1); this.add(kb); }); } catch (e) { return e.name; }
        return "committed";
      }
      async put(kb) { try { await this.ctx.storage.put("k", new Uint8Array(kb * 1024)); return "ok"; } catch (e) { return e.name; } }
      count() { return this.ctx.storage.sql.exec("SELECT count(*) AS n FROM blobs").one().n; }
    }`);
  const ns = actorNamespace({ loader: ctx.loader, worker: code, className: "Big", dataDir: dir, name: "quota", maxStorageBytes: 256 * 1024 });
  try {
    const stub = ns.getByName("q");
    await stub.add(10);
    await assert.rejects(stub.add(400), { name: "QuotaExceededError" });
    assert.equal(await stub.inTransaction(400), "QuotaExceededError");
    assert.equal(await stub.put(400), "QuotaExceededError");
    assert.equal(await stub.count(), 1, "only the write within the quota is there");
    assert.equal(await stub.inTransaction(10), "committed", "the actor goes on writing within its quota");
    assert.equal(await stub.count(), 3);
  } finally {
    await ns.close();
  }
});

test("as on Cloudflare, an await on something other than storage lets other calls in; blockConcurrencyWhile holds them", async () => {
  const code = worker(`
    import { DurableObject } from "cloudflare:workers";
    export class Gate extends DurableObject {
      async step(key) {
        const n = (await this.ctx.storage.get(key)) ?? 0;
        await new Promise((r) => setTimeout(r, 200)); // not storage: the input gate opens
        await this.ctx.storage.put(key, n + 1);
      }
      open() { return this.step("open"); }
      held() { return this.ctx.blockConcurrencyWhile(() => this.step("held")); }
      async read() { return [await this.ctx.storage.get("open"), await this.ctx.storage.get("held")]; }
    }`);
  const ns = actorNamespace({ loader: ctx.loader, worker: code, className: "Gate", dataDir: dir, name: "gates" });
  try {
    const stub = ns.getByName("g");
    await Promise.all(Array.from({ length: 5 }, () => stub.open()));
    await Promise.all(Array.from({ length: 5 }, () => stub.held()));
    const [open, held] = await stub.read();
    assert.ok(open < 5, `calls interleaved at the timer and overwrote each other (${open})`);
    assert.equal(held, 5);
  } finally {
    await ns.close();
  }
});
