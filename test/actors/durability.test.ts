import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { WorkerLoader, actorNamespace, type WorkerCode } from "../../src/index.ts";
import { useTempDir, worker } from "../helpers.ts";

const dir = useTempDir("mayfly-actors-durable-");

const NOTES: WorkerCode = worker(`
import { DurableObject } from "cloudflare:workers";
export class Notes extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.started = Date.now();
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)");
  }
  add(text) { return this.ctx.storage.sql.exec("INSERT INTO notes (text) VALUES (?) RETURNING id", text).one().id; }
  all() { return this.ctx.storage.sql.exec("SELECT text FROM notes ORDER BY id").toArray().map((r) => r.text); }
  startedAt() { return this.started; }
  async remindAt(time, text) { await this.ctx.storage.put("reminder", text); await this.ctx.storage.setAlarm(time); }
  async alarmTime() { return this.ctx.storage.getAlarm(); }
  async alarm(info) { this.add("alarm:" + (await this.ctx.storage.get("reminder")) + ":" + info.retryCount); }
}`);

function notes(loader: WorkerLoader, extra: { idleTtlMs?: number } = {}) {
  return actorNamespace({ loader, worker: NOTES, className: "Notes", dataDir: dir, ...extra });
}

test("an actor's data survives a host restart (a new loader over the same data directory)", async () => {
  let loader = new WorkerLoader({ executors: 1 });
  let ns = notes(loader);
  await ns.getByName("restart").add("one");
  await ns.getByName("restart").add("two");
  await ns.close();
  await loader.close();
  loader = new WorkerLoader({ executors: 1 });
  ns = notes(loader);
  try {
    assert.deepEqual(await ns.getByName("restart").all(), ["one", "two"]);
  } finally {
    await ns.close();
    await loader.close();
  }
});

test("an alarm set before a restart fires after it", async () => {
  let loader = new WorkerLoader({ executors: 1 });
  let ns = notes(loader);
  const at = Date.now() + 4_000;
  await ns.getByName("alarm").remindAt(at, "wake");
  assert.equal(await ns.getByName("alarm").alarmTime(), at);
  await ns.close(); // before the alarm is due: it must not fire in this host
  await loader.close();
  assert.ok(Date.now() < at, "the first host closed before the alarm was due");
  loader = new WorkerLoader({ executors: 1 });
  ns = notes(loader);
  try {
    const deadline = Date.now() + 15_000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      seen = await ns.getByName("alarm").all();
      if (seen.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(seen, ["alarm:wake:0"]);
    assert.ok(Date.now() >= at);
    assert.equal(await ns.getByName("alarm").alarmTime(), null, "a fired alarm is gone");
  } finally {
    await ns.close();
    await loader.close();
  }
});

test("an idle actor is evicted (its isolate freed) and comes back with its state", async () => {
  const loader = new WorkerLoader({ executors: 1 });
  const ns = notes(loader, { idleTtlMs: 100 });
  try {
    const stub = ns.getByName("evicted");
    await stub.add("kept");
    const first = await stub.startedAt();
    assert.equal(ns.liveActors, 1);
    const deadline = Date.now() + 5_000;
    while (ns.liveActors > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(ns.liveActors, 0, "evicted");
    assert.equal(loader.liveWorkers.total, 0, "its worker disposed");
    assert.deepEqual(await stub.all(), ["kept"]);
    assert.ok((await stub.startedAt()) > first, "a new instance, rebuilt from storage");
  } finally {
    await ns.close();
    await loader.close();
  }
});

test("acknowledged writes survive kill -9 of the host process, whose namespace no other process could open meanwhile", async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/writer.ts", import.meta.url)), dir], { stdio: ["ignore", "pipe", "inherit"] });
  after(() => child.kill("SIGKILL"));
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    child.on("exit", () => reject(new Error("the writer exited before it was killed")));
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const m of buffered.matchAll(/acked (\d+)\n/g)) acked = Math.max(acked, Number(m[1]));
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
      if (acked >= 30) {
        child.stdout!.removeAllListeners("data");
        child.removeAllListeners("exit");
        resolve();
      }
    });
  });
  // While the writer lives, its namespace is its own: a second process cannot run the same actors.
  const second = new WorkerLoader({ executors: 1 });
  try {
    assert.throws(() => actorNamespace({ loader: second, dataDir: dir, className: "Counter", name: "killed", worker: worker("") }), { name: "ConfigError", message: /another process/ });
  } finally {
    await second.close();
  }
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  const loader = new WorkerLoader({ executors: 1 });
  const ns = actorNamespace({
    loader, dataDir: dir, className: "Reader", name: "killed",
    worker: worker(`import { DurableObject } from "cloudflare:workers";
      export class Reader extends DurableObject {
        async state() { return { n: await this.ctx.storage.get("n"), log: this.ctx.storage.sql.exec("SELECT count(*) AS c, max(n) AS m FROM log").one() }; }
      }`),
  });
  try {
    const { n, log } = await ns.getByName("c").state();
    assert.ok(n >= acked, `every acknowledged increment is there (${n} >= ${acked})`);
    assert.ok(log.c >= acked && log.m >= acked);
  } finally {
    await ns.close();
    await loader.close();
  }
});

test("an actor does not move off a recycled executor while a call of its is in flight (one live instance)", async () => {
  const loader = new WorkerLoader({ executors: 1, recycleAfterRuns: 3 });
  const ns = actorNamespace({
    loader, dataDir: dir, className: "Who", name: "recycled",
    worker: worker(`import { DurableObject } from "cloudflare:workers";
      export class Who extends DurableObject {
        me = crypto.randomUUID();
        async slow() { await new Promise((r) => setTimeout(r, 5_000)); return this.me; }
        now() { return this.me; }
      }`),
  });
  try {
    const stub = ns.getByName("w");
    const first = await stub.now();
    const slow = stub.slow();
    let settled = false;
    void slow.then(() => (settled = true), () => {});
    // Other workers start on the executor until it is past recycleAfterRuns and drains.
    for (let i = 0; i < 3; i++) {
      const other = loader.load(worker("export default { fetch() { return new Response('x') } }"));
      await other.getEntrypoint().fetch("http://x/");
      other.dispose();
    }
    assert.ok(loader.engine.stats().recycles >= 1, "the executor was recycled");
    assert.equal(settled, false, "slow() is still in flight");
    assert.equal(await stub.now(), first, "while slow() runs, calls reach the same instance");
    assert.equal(await slow, first);
    assert.notEqual(await stub.now(), first, "between calls it moves to the new executor");
  } finally {
    await ns.close();
    await loader.close();
  }
});
