import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WallTimeLimitError } from "../../src/index.ts";
import { fetchText, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const reports = ctx.reports;

async function json(body: string, extra = {}): Promise<unknown> {
  const stub = ctx.loader.load(worker(`export default { async fetch(request, env, ctx) { ${body} } }`, extra));
  return JSON.parse(await fetchText(stub));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("timers (HTML §8.6)", () => {
  test("setTimeout fires in order of delay, with arguments; Date.now() moves on across it", async () => {
    const out = await json(`
      const order = []; const t0 = Date.now();
      await new Promise((done) => {
        setTimeout((x) => order.push(x), 30, "b");
        setTimeout((x) => order.push(x), 5, "a");
        setTimeout(() => done(), 60);
      });
      return Response.json({ order, advanced: Date.now() - t0 >= 50, perf: performance.now() >= 50 });`);
    assert.deepEqual(out, { order: ["a", "b"], advanced: true, perf: true });
  });

  test("clearTimeout cancels; setInterval repeats until cleared", async () => {
    const out = await json(`
      let fired = false; const id = setTimeout(() => { fired = true }, 5); clearTimeout(id);
      let n = 0;
      await new Promise((done) => { const iv = setInterval(() => { if (++n === 3) { clearInterval(iv); done(); } }, 2); });
      await new Promise((r) => setTimeout(r, 20));
      return Response.json({ fired, n });`);
    assert.deepEqual(out, { fired: false, n: 3 });
  });

  test("a string callback is refused (no code generation from strings)", async () => {
    const out = await json(`try { setTimeout("1+1", 1); return Response.json("accepted") } catch (e) { return Response.json(e.name) }`);
    assert.equal(out, "TypeError");
  });

  test("queueMicrotask runs before timers", async () => {
    const out = await json(`const o = []; setTimeout(() => o.push("timer"), 0); queueMicrotask(() => o.push("micro")); await new Promise((r) => setTimeout(r, 5)); return Response.json(o);`);
    assert.deepEqual(out, ["micro", "timer"]);
  });

  test("no timer fires after the run ends", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`export default { fetch() { setTimeout(() => console.log("late"), 30); return new Response("now") } }`));
    assert.equal(await fetchText(stub), "now");
    await sleep(80);
    assert.equal(await fetchText(stub), "now", "the same isolate still serves");
    await sleep(80);
    assert.ok(reports.every((r) => r.logs.every((l) => l.message !== "late")), "the pending timer was cancelled");
  });

  test("a run awaiting a timer longer than its wall limit ends with WallTimeLimitError", async () => {
    const stub = ctx.loader.load(worker(`export default { async fetch() { await new Promise((r) => setTimeout(r, 10_000)); return new Response("") } }`, { limits: { wallMs: 100 } }));
    await assert.rejects(fetchText(stub), WallTimeLimitError);
  });
});

describe("ctx.waitUntil", () => {
  test("the response leaves at once; the run stays alive for waitUntil work, whose logs reach the report", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`export default { fetch(r, env, ctx) {
      ctx.waitUntil(new Promise((done) => setTimeout(() => { console.log("after response"); done(); }, 50)));
      return new Response("early") } }`));
    const t0 = performance.now();
    assert.equal(await fetchText(stub), "early");
    assert.ok(performance.now() - t0 < 45, "the response did not wait for waitUntil");
    for (let i = 0; i < 50 && reports.length === 0; i++) await sleep(10);
    assert.equal(reports.length, 1);
    assert.deepEqual(reports[0]!.logs.map((l) => l.message), ["after response"]);
    assert.equal(reports[0]!.outcome, "ok");
    assert.ok(reports[0]!.wallMs >= 45);
  });

  test("waitUntil work past the wall limit is ended and reported as exceededWall", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`export default { fetch(r, env, ctx) {
      ctx.waitUntil(new Promise(() => {})); return new Response("ok") } }`, { limits: { wallMs: 100 } }));
    assert.equal(await fetchText(stub), "ok");
    for (let i = 0; i < 50 && reports.length === 0; i++) await sleep(10);
    assert.equal(reports[0]!.outcome, "exceededWall");
  });
});

describe("structuredClone, crypto randomness, performance", () => {
  test("structuredClone keeps Maps, Dates, cycles and typed arrays; refuses functions with DataCloneError", async () => {
    const out = await json(`
      const a = { m: new Map([[1, { d: new Date(5) }]]), u: new Uint8Array([1, 2]) }; a.self = a;
      const c = structuredClone(a);
      let err; try { structuredClone({ f() {} }) } catch (e) { err = e.name }
      return Response.json({ same: c === a, cyc: c.self === c, d: c.m.get(1).d.getTime(), u: [...c.u], isDate: c.m.get(1).d instanceof Date, err });`);
    assert.deepEqual(out, { same: false, cyc: true, d: 5, u: [1, 2], isDate: true, err: "DataCloneError" });
  });

  test("crypto.getRandomValues fills integer arrays, refuses floats and > 65536 bytes; randomUUID is v4", async () => {
    const out = await json(`
      const a = crypto.getRandomValues(new Uint32Array(8));
      const errs = [];
      try { crypto.getRandomValues(new Float32Array(2)) } catch (e) { errs.push(e.name) }
      try { crypto.getRandomValues(new Uint8Array(65537)) } catch (e) { errs.push(e.name) }
      return Response.json({ nonzero: a.some((x) => x !== 0), uuid: crypto.randomUUID(), errs });`);
    const o = out as { nonzero: boolean; uuid: string; errs: string[] };
    assert.ok(o.nonzero);
    assert.match(o.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(o.errs, ["TypeError", "QuotaExceededError"]);
  });
});

describe("unhandled rejections", () => {
  test("are logged as Uncaught (in promise) and do not fail the run, in the handler or in waitUntil work", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`export default { fetch(r, env, ctx) {
      Promise.reject(new Error("first"));
      ctx.waitUntil(new Promise((done) => setTimeout(() => { Promise.reject(new Error("later")); setTimeout(done, 5); }, 5)));
      return new Response("fine") } }`));
    assert.equal(await fetchText(stub), "fine");
    for (let i = 0; i < 50 && reports.length === 0; i++) await sleep(10);
    assert.equal(reports[0]!.outcome, "ok");
    assert.deepEqual(reports[0]!.logs.map((l) => l.message), ["Uncaught (in promise) first", "Uncaught (in promise) later"]);
  });
});

describe("timer quota", () => {
  test("more than 10,000 pending timers are refused, without harm to the executor", async () => {
    const out = await json(`
      const ids = [];
      let error = null;
      try { for (let i = 0; i < 10_050; i++) ids.push(setTimeout(() => {}, 60_000)); } catch (e) { error = e.name + ": " + e.message; }
      const pending = ids.length;
      ids.slice(0, 100).forEach(clearTimeout);
      const again = await new Promise((r) => setTimeout(() => r("fired"), 5));
      return Response.json({ pending, error, again })`, { limits: { cpuMs: 5000 } });
    assert.deepEqual(out, { pending: 10_000, error: "RangeError: Too many pending timers (at most 10000).", again: "fired" });
    assert.equal(await fetchText(ctx.loader.load(worker(`export default { fetch() { return new Response("fine") } }`))), "fine");
  });
});
