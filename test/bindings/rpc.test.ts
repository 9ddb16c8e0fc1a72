import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DataCloneError, rpc } from "../../src/index.ts";
import { fetchText, runHandler, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

const run = (body: string, env: Record<string, unknown>, extra = {}) => runHandler(ctx.loader, body, env, extra);

describe("rpc() bindings: host objects as stubs in env", () => {
  test("methods cross by structured clone and return promises", async () => {
    const users = {
      calls: 0,
      async find(id: number) { this.calls++; return { id, name: "ada", since: new Date(0), tags: new Set(["x"]) }; },
      sum(...xs: number[]) { return xs.reduce((a, b) => a + b, 0); },
    };
    const out = await run(`
      const u = await env.USERS.find(7);
      return Response.json({ u, since: u.since instanceof Date, tags: [...u.tags], sum: await env.USERS.sum(1, 2, 3), thenable: typeof env.USERS.then });`,
      { USERS: rpc(users), PLAIN: 1 });
    assert.deepEqual(out, { u: { id: 7, name: "ada", since: "1970-01-01T00:00:00.000Z", tags: {} }, since: true, tags: ["x"], sum: 6, thenable: "undefined" });
    assert.equal(users.calls, 1);
  });

  test("a function binding is called directly", async () => {
    const out = await run(`return Response.json(await env.ADD(2, 3))`, { ADD: rpc((a: number, b: number) => a + b) });
    assert.equal(out, 5);
  });

  test("host errors arrive with name and message only: no host stack, no host paths", async () => {
    const out = await run(`
      try { await env.SVC.fail() } catch (e) { return Response.json({ name: e.name, message: e.message, stack: String(e.stack) }) }`,
      { SVC: rpc({ fail() { const e = new RangeError("bad range"); throw e; } }) });
    assert.equal(out.name, "RangeError");
    assert.equal(out.message, "bad range");
    assert.ok(!/\/work|node:|file:|\.ts:/.test(out.stack), `no host frames in ${out.stack}`);
  });

  test("unknown methods and Object.prototype names are refused", async () => {
    const out = await run(`
      const r = [];
      for (const m of ["nope", "constructor", "toString", "__proto__"]) { try { await env.SVC[m](); r.push("called") } catch (e) { r.push(e.message) } }
      return Response.json(r)`, { SVC: rpc({ ok() { return 1; } }) });
    assert.deepEqual(out, Array(4).fill(null).map((_, i) => `The RPC receiver does not implement the method "${["nope", "constructor", "toString", "__proto__"][i]}".`));
  });

  test("a call slower than its timeout fails with TimeoutError; the worker goes on", async () => {
    const out = await run(`
      try { await env.SLOW.wait() } catch (e) { return Response.json(e.name + ": " + e.message) }`,
      { SLOW: rpc({ wait: () => new Promise((r) => setTimeout(r, 1000)) }, { timeoutMs: 50 }) });
    assert.equal(out, "TimeoutError: RPC call wait() timed out after 50 ms.");
  });

  test("a result that cannot be cloned is a DataCloneError in the guest, not a crash", async () => {
    const out = await run(`try { await env.SVC.give() } catch (e) { return Response.json(e.name) }`, { SVC: rpc({ give: () => ({ f() {} }) }) });
    assert.equal(out, "DataCloneError");
    assert.equal(await fetchText(ctx.loader.load(worker(`export default { fetch() { return new Response("alive") } }`))), "alive");
  });

  test("bindings must be top-level env entries", () => {
    assert.throws(() => ctx.loader.load(worker("", { env: { nested: { svc: rpc({}) } } })), DataCloneError);
  });

  test("a worker's capability ids mean nothing to another worker", async () => {
    const secret = rpc({ read: () => "secret" });
    const a = await run(`return Response.json(await env.S.read())`, { S: secret });
    assert.equal(a, "secret");
    // A worker without bindings cannot name capability 1 of the other worker.
    const b = await run(`try { await env.X.read(); return Response.json("reached") } catch (e) { return Response.json(e.name) }`, { X: 1 });
    assert.equal(b, "TypeError");
  });
});

describe("service bindings and globalOutbound", () => {
  test("another worker's entrypoint in env: fetch and RPC both cross", async () => {
    const backend = ctx.loader.load(worker(`import { WorkerEntrypoint } from "cloudflare:workers";
      export default { fetch(r) { return new Response("backend saw " + r.method + " " + new URL(r.url).pathname) } };
      export class Api extends WorkerEntrypoint { double(x) { return x * 2 } }`));
    const out = await run(`
      const res = await env.BACKEND.fetch("http://backend/path", { method: "POST", body: "x" });
      return Response.json({ text: await res.text(), doubled: await env.API.double(21) });`,
      { BACKEND: backend.getEntrypoint(), API: backend.getEntrypoint("Api") });
    assert.deepEqual(out, { text: "backend saw POST /path", doubled: 42 });
  });

  test("a service's large streamed response reaches the caller a chunk at a time", async () => {
    // 24 MiB produced on demand by one 16 MB worker, read by another 16 MB worker: neither holds it whole.
    const producer = ctx.loader.load(worker(`export default { fetch() {
      let left = 384;
      const chunk = new Uint8Array(64 * 1024).fill(7);
      return new Response(new ReadableStream({ pull(c) { if (left-- > 0) c.enqueue(chunk); else c.close(); } }));
    } }`, { limits: { memoryMb: 16 } }));
    const out = await run(`
      const res = await env.PRODUCER.fetch("http://producer/");
      let bytes = 0;
      for await (const chunk of res.body) bytes += chunk.byteLength;
      return Response.json({ bytes });`, { PRODUCER: producer.getEntrypoint() }, { limits: { memoryMb: 16 } });
    assert.deepEqual(out, { bytes: 24 << 20 });
  });

  test("a streamed request body reaches a service a chunk at a time", async () => {
    const counter = ctx.loader.load(worker(`export default { async fetch(r) {
      let bytes = 0;
      for await (const chunk of r.body) bytes += chunk.byteLength;
      return Response.json({ bytes });
    } }`, { limits: { memoryMb: 16 } }));
    const out = await run(`
      let left = 384;
      const chunk = new Uint8Array(64 * 1024).fill(3);
      const body = new ReadableStream({ pull(c) { if (left-- > 0) c.enqueue(chunk); else c.close(); } });
      const res = await env.COUNTER.fetch("http://counter/", { method: "PUT", body });
      return new Response(await res.text());`, { COUNTER: counter.getEntrypoint() }, { limits: { memoryMb: 16 } });
    assert.deepEqual(out, { bytes: 24 << 20 });
  });

  test("globalOutbound: every global fetch() goes to the gateway", async () => {
    const seen: string[] = [];
    const gateway = { async fetch(req: Request) { seen.push(`${req.method} ${req.url} ${await req.text()}`); return new Response("from gateway", { status: 203, headers: { "x-g": "1" } }); } };
    const out = await run(`
      const res = await fetch("https://api.example.com/v1?q=1", { method: "PUT", body: "payload" });
      return Response.json({ status: res.status, h: res.headers.get("x-g"), text: await res.text() });`, {}, { globalOutbound: gateway });
    assert.deepEqual(out, { status: 203, h: "1", text: "from gateway" });
    assert.deepEqual(seen, ["PUT https://api.example.com/v1?q=1 payload"]);
  });

  test("without globalOutbound, fetch() is refused with Cloudflare's message", async () => {
    const out = await run(`try { await fetch("https://example.com") } catch (e) { return Response.json(e.message) }`, {});
    assert.match(out, /not permitted to access the internet via global functions like fetch\(\)/);
  });
});
