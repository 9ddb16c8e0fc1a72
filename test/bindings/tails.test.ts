import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { rpc, type TailEvent } from "../../src/index.ts";
import { fetchText, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

async function eventually<T>(get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no tail event arrived");
}

describe("tails receive each run's trace", () => {
  test("outcome, logs, CPU and wall time, subrequests", async () => {
    const events: TailEvent[] = [];
    const gateway = { fetch: () => new Response("ok") };
    const stub = ctx.loader.load(worker(`export default { async fetch() {
      console.log("one"); console.warn("two");
      await fetch("https://a.example/"); await fetch("https://b.example/");
      return new Response("done") } }`, { globalOutbound: gateway, tails: [(e: TailEvent) => events.push(e)] }));
    assert.equal(await fetchText(stub), "done");
    const e = await eventually(() => events[0]);
    assert.equal(e.outcome, "ok");
    assert.deepEqual(e.logs.map((l) => [l.level, l.message]), [["log", ["one"]], ["warn", ["two"]]]);
    assert.equal(e.subrequests, 2);
    assert.ok(e.cpuTime > 0 && e.wallTime >= e.cpuTime * 0);
    assert.deepEqual(e.event, { kind: "fetch" });
  });

  test("uncaught exceptions and limit outcomes", async () => {
    const events: TailEvent[] = [];
    const tails = [(e: TailEvent) => events.push(e)];
    await assert.rejects(fetchText(ctx.loader.load(worker(`export default { fetch() { throw new TypeError("boom") } }`, { tails }))));
    await assert.rejects(fetchText(ctx.loader.load(worker(`export default { fetch() { for (;;) {} } }`, { tails, limits: { cpuMs: 30 } }))));
    await eventually(() => events[1]);
    assert.equal(events[0]!.outcome, "exception");
    assert.deepEqual(events[0]!.exceptions.map((x) => [x.name, x.message]), [["TypeError", "boom"]]);
    assert.equal(events[1]!.outcome, "exceededCpu");
  });

  test("a tail worker's tail() handler receives the events in its own isolate", async () => {
    const received: unknown[] = [];
    const tailWorker = ctx.loader.load(worker(`export default {
      async tail(events, env) { for (const e of events) await env.SINK.record({ outcome: e.outcome, logs: e.logs.map((l) => l.message[0]) }) } }`,
      { env: { SINK: rpc({ record: (x: unknown) => received.push(x) }) } }));
    const stub = ctx.loader.load(worker(`export default { fetch() { console.log("traced"); return new Response("x") } }`, { tails: [tailWorker.getEntrypoint()] }));
    await fetchText(stub);
    assert.deepEqual(await eventually(() => received[0]), { outcome: "ok", logs: ["traced"] });
  });

  test("a failing tail does not affect the run or the other tails", async () => {
    const events: TailEvent[] = [];
    const stub = ctx.loader.load(worker(`export default { fetch() { return new Response("fine") } }`, {
      tails: [() => { throw new Error("tail broke"); }, { tail: async () => { throw new Error("async tail broke"); } }, (e: TailEvent) => events.push(e)],
    }));
    assert.equal(await fetchText(stub), "fine");
    assert.equal((await eventually(() => events[0])).outcome, "ok");
  });
});
