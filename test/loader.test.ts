import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DataCloneError, InvalidWorkerCodeError, WorkerDisposedError, WorkerLoader } from "../src/index.ts";
import { fetchText, useLoader, worker } from "./helpers.ts";

const ctx = useLoader({ executors: 2 });
const reports = ctx.reports;

describe("load() and fetch()", () => {
  test("a worker's fetch handler answers with a standard Response in the host", async () => {
    const stub = ctx.loader.load(worker(`export default {
      async fetch(request, env, ctx) {
        const body = await request.text();
        return new Response(request.method + " " + request.url + " " + body + " " + request.headers.get("x-a"), {
          status: 201, statusText: "Made", headers: { "x-b": "2", "set-cookie": "a=1" } });
      } }`));
    const res = await stub.getEntrypoint().fetch("http://worker/path?q=1", { method: "POST", body: "hi", headers: { "x-a": "1" } });
    assert.ok(res instanceof Response);
    assert.equal(res.status, 201);
    assert.equal(res.statusText, "Made");
    assert.equal(res.headers.get("x-b"), "2");
    assert.deepEqual(res.headers.getSetCookie(), ["a=1"]);
    assert.equal(await res.text(), "POST http://worker/path?q=1 hi 1");
  });

  test("a Request object can be passed as input", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch(r) { return new Response(r.method + r.url) } }`));
    const res = await stub.getEntrypoint().fetch(new Request("http://worker/x", { method: "DELETE" }));
    assert.equal(await res.text(), "DELETEhttp://worker/x");
  });

  test("Response.json and binary bodies cross intact", async () => {
    const stub = ctx.loader.load(worker(`export default { async fetch(r) {
      const bytes = new Uint8Array(await r.arrayBuffer());
      return new Response(bytes.map((b) => 255 - b)); } }`));
    const res = await stub.getEntrypoint().fetch("http://w/", { method: "PUT", body: new Uint8Array([0, 1, 254]) });
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array([255, 254, 1]));
    const j = ctx.loader.load(worker(`export default { fetch() { return Response.json({ a: [1, "é"] }) } }`));
    const jr = await j.getEntrypoint().fetch("http://w/");
    assert.equal(jr.headers.get("content-type"), "application/json");
    assert.deepEqual(await jr.json(), { a: [1, "é"] });
  });

  test("env values arrive by structured clone, ctx.props carries props", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch(r, env, ctx) {
      return Response.json({ name: env.NAME, n: env.CONF.n, d: env.WHEN instanceof Date, m: env.MAP.get("k"), props: ctx.props }) } }`,
      { env: { NAME: "x", CONF: { n: [1, 2] }, WHEN: new Date(0), MAP: new Map([["k", "v"]]) } }));
    const res = await stub.getEntrypoint(null, { props: { user: "ada" } }).fetch("http://w/");
    assert.deepEqual(await res.json(), { name: "x", n: [1, 2], d: true, m: "v", props: { user: "ada" } });
  });

  test("a stub keeps its isolate between calls: module state persists", async () => {
    const stub = ctx.loader.load(worker(`let n = 0; export default { fetch() { return new Response(String(++n)) } }`));
    assert.equal(await fetchText(stub), "1");
    assert.equal(await fetchText(stub), "2");
  });

  test("every load() gets a fresh isolate: no state shared between workers", async () => {
    const src = `globalThis.count = (globalThis.count ?? 0) + 1; export default { fetch() { return new Response(String(globalThis.count)) } }`;
    for (let i = 0; i < 3; i++) assert.equal(await fetchText(ctx.loader.load(worker(src))), "1");
  });

  test("console output is captured per run, in order, with levels", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`export default { fetch() { console.log("a", 1, { b: 2 }); console.warn("w"); console.error(new TypeError("t")); return new Response("") } }`));
    await fetchText(stub);
    const logs = reports.at(-1)!.logs;
    assert.deepEqual(logs.map((l) => l.level), ["log", "warn", "error"]);
    assert.equal(logs[0]!.message, 'a 1 {"b":2}');
    assert.match(logs[2]!.message, /^TypeError: t/);
    assert.equal(reports.at(-1)!.outcome, "ok");
  });
});

describe("modules", () => {
  test("TypeScript modules are accepted directly and import each other by relative path", async () => {
    const stub = ctx.loader.load({
      compatibilityDate: "2025-06-01",
      mainModule: "src/main.ts",
      modules: {
        "src/main.ts": `import { twice } from "./lib/math.ts"; import type { Num } from "./lib/types.ts"; import { label } from "../shared.js";
          const n: Num = 21; export default { fetch(): Response { return new Response(label + twice(n)) } }`,
        "src/lib/math.ts": `export function twice(x: number): number { return x * 2 }`,
        "src/lib/types.ts": `export type Num = number;`,
        "shared.ts": `export const label: string = "answer=";`,
      },
    });
    assert.equal(await fetchText(stub), "answer=42");
  });

  test("text, data, json, cjs and wasm modules", async () => {
    // (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
    const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11]);
    const stub = ctx.loader.load({
      compatibilityDate: "2025-06-01",
      mainModule: "main.js",
      modules: {
        "main.js": `import text from "./hello.txt"; import data from "./bytes.bin"; import conf from "./conf.json";
          import cjs from "./legacy.cjs"; import mod from "./add.wasm";
          const { exports } = new WebAssembly.Instance(mod);
          export default { fetch() { return Response.json({ text, data: [...new Uint8Array(data)], conf, cjs: cjs.hi(), add: exports.add(2, 3) }) } }`,
        "hello.txt": { text: "hello" },
        "bytes.bin": { data: new Uint8Array([1, 2, 3]) },
        "conf.json": { json: { a: 1 } },
        "legacy.cjs": { cjs: `exports.hi = () => "cjs"; module.exports.extra = 1;` },
        "add.wasm": { wasm },
      },
    });
    assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), { text: "hello", data: [1, 2, 3], conf: { a: 1 }, cjs: "cjs", add: 5 });
  });

  test("a CommonJS main module can be the entrypoint", async () => {
    const stub = ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "main.cjs", modules: { "main.cjs": { cjs: `module.exports = { fetch() { return new Response("from cjs") } }` } } });
    assert.equal(await fetchText(stub), "from cjs");
  });

  test("importing a module outside the worker's modules fails at start with the specifier named", async () => {
    const stub = ctx.loader.load(worker(`import fs from "node:fs"; export default { fetch() { return new Response("") } }`));
    await assert.rejects(fetchText(stub), (e: Error) => /Failed to start Worker: .*node:fs/.test(e.message) && (e as { remote?: boolean }).remote === true);
  });
});

describe("entrypoints and RPC", () => {
  const src = `import { WorkerEntrypoint } from "cloudflare:workers";
    export default class extends WorkerEntrypoint {
      fetch(request) { return new Response("default " + this.env.WHO + " " + JSON.stringify(this.ctx.props)) }
      hello(name) { return "hi " + name }
    }
    export class Maths extends WorkerEntrypoint {
      add(a, b) { return a + b }
      async slow(x) { await null; return { x, when: new Date(0), bytes: new Uint8Array([1]) } }
      boom() { const e = new RangeError("too big"); throw e }
      whoami() { return this.ctx.props }
    }
    export const plain = { mul(a, b) { return a * b } };`;

  test("class-based WorkerEntrypoint written for Cloudflare runs unchanged (this.env, this.ctx)", async () => {
    const stub = ctx.loader.load(worker(src, { env: { WHO: "env" } }));
    assert.equal(await fetchText({ getEntrypoint: () => stub.getEntrypoint(null, { props: { p: 1 } }) }), 'default env {"p":1}');
    assert.equal(await stub.getEntrypoint().hello("bob"), "hi bob");
  });

  test("named entrypoints expose their methods as RPC", async () => {
    const stub = ctx.loader.load(worker(src));
    const maths = stub.getEntrypoint<{ add(a: number, b: number): number; slow(x: number): { x: number; when: Date; bytes: Uint8Array }; whoami(): unknown }>("Maths", { props: { tenant: "t1" } });
    assert.equal(await maths.add(1, 2), 3);
    const r = await maths.slow(7);
    assert.equal(r.x, 7);
    assert.ok(r.when instanceof Date);
    assert.deepEqual([...r.bytes], [1]);
    assert.deepEqual(await maths.whoami(), { tenant: "t1" });
    assert.equal(await stub.getEntrypoint("plain").mul(3, 4), 12);
  });

  test("guest errors keep name and message and are marked remote", async () => {
    const stub = ctx.loader.load(worker(src));
    await assert.rejects(stub.getEntrypoint("Maths").boom(), (e: Error) => e instanceof RangeError && e.name === "RangeError" && e.message === "too big" && (e as { remote?: boolean }).remote === true);
  });

  test("unknown entrypoint, unknown method and missing fetch get clear errors", async () => {
    const stub = ctx.loader.load(worker(src));
    await assert.rejects(stub.getEntrypoint("Nope").add(1), /Worker has no entrypoint named "Nope"/);
    await assert.rejects(stub.getEntrypoint("Maths").nope(), /The RPC receiver does not implement the method "nope"/);
    await assert.rejects(stub.getEntrypoint("Maths").constructor(), /does not implement the method "constructor"/);
    await assert.rejects((stub.getEntrypoint("Maths") as { toString(): unknown }).toString() as Promise<unknown>, /does not implement the method "toString"/);
    await assert.rejects(stub.getEntrypoint("Maths").fetch("http://w/"), /Handler does not export a fetch\(\) function/);
    const noDefault = ctx.loader.load(worker(`export const x = 1;`));
    await assert.rejects(fetchText(noDefault), /no default export/);
  });

  test("a throw at startup gives 'Failed to start Worker' with the guest's message", async () => {
    const stub = ctx.loader.load(worker(`throw new TypeError("bad config"); export default {}`));
    await assert.rejects(fetchText(stub), (e: Error) => e.name === "TypeError" && e.message === "Failed to start Worker: bad config");
    assert.equal(reports.at(-1)!.outcome, "startupError");
  });

  test("CommonJS: require() of other modules (relative, extensionless, json), cached, cycles as in Node; clear errors otherwise", async () => {
    const stub = ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "main.js", modules: {
      "main.js": `import lib from "./lib/index.cjs"; export default { fetch() { return Response.json(lib.describe()) } }`,
      "lib/index.cjs": { cjs: `const { add } = require("./math"); const conf = require("../conf.json"); const a = require('./a.cjs');
        exports.describe = () => ({ sum: add(2, 3), conf, cycle: a.seenB, dirname: __dirname, cached: require("./math") === require("./math.cjs") });` },
      "lib/math.cjs": { cjs: `module.exports = { add(a, b) { return a + b } };` },
      "lib/a.cjs": { cjs: `exports.partial = true; exports.seenB = require("./b.cjs").sawPartial;` },
      "lib/b.cjs": { cjs: `const a = require("./a.cjs"); exports.sawPartial = a.partial === true && a.seenB === undefined;` },
      "conf.json": { json: { x: 1 } },
    } });
    assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), { sum: 5, conf: { x: 1 }, cycle: true, dirname: "lib", cached: true });
    const cjsWorker = (body: string, extra: Record<string, string> = {}) => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "m.cjs", modules: { "m.cjs": { cjs: body }, ...extra } });
    await assert.rejects(fetchText(cjsWorker(`require("node:fs"); module.exports = {}`)), /Failed to start Worker: Cannot find module 'node:fs' \(required from m\.cjs\)/);
    await assert.rejects(fetchText(cjsWorker(`require("./e.js"); module.exports = {}`, { "e.js": "export const x = 1" })), /require\(\) of the ES module '\.\/e\.js' from m\.cjs is not supported; use import/);
    assert.equal(await fetchText(cjsWorker(`module.exports = { fetch() { const n = "./x"; try { require(n) } catch (e) { return new Response(e.code) } } }`)), "MODULE_NOT_FOUND");
  });

  test("top-level await: microtask work finishes before the first call; a timer or I/O wait is a clear startup error", async () => {
    const awaited = ctx.loader.load({
      compatibilityDate: "2025-06-01", mainModule: "main.js",
      modules: {
        "main.js": `import { v } from "./dep.js"; const w = await Promise.resolve(v + 1); export default { fetch() { return new Response(String(w)) } }`,
        "dep.js": `export const v = await (async () => 41)();`,
      },
    });
    assert.equal(await fetchText(awaited), "42");
    const timer = ctx.loader.load(worker(`await new Promise((r) => setTimeout(r, 10)); export default { fetch() { return new Response("late") } }`));
    await assert.rejects(fetchText(timer), /^Error: Failed to start Worker: top-level await did not finish during startup/);
    assert.equal(reports.at(-1)!.outcome, "startupError");
  });

  test("a handler that throws rejects the host fetch with the guest error", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() { throw new SyntaxError("nope") } }`));
    await assert.rejects(fetchText(stub), { name: "SyntaxError", message: "nope" });
    assert.equal(await fetchText(ctx.loader.load(worker(`export default { fetch() { return new Response("still fine") } }`))), "still fine");
  });

  test("a fetch handler returning something other than a Response is an error", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() { return "str" } }`));
    await assert.rejects(fetchText(stub), /did not resolve to 'Response'/);
  });

  test("the entrypoint fetcher is not thenable", async () => {
    const ep = ctx.loader.load(worker(`export default { fetch() { return new Response("") } }`)).getEntrypoint();
    const awaited = await ep;
    assert.equal(awaited, ep);
  });
});

describe("validation at load()", () => {
  test("empty modules, two types, missing mainModule, bad names are refused synchronously", () => {
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "a.js", modules: {} }), (e: Error) => e instanceof InvalidWorkerCodeError && /at least one module/.test(e.message));
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "a.js", modules: { "a.js": { js: "", text: "" } as never } }), /exactly one of/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "b.js", modules: { "a.js": "" } }), /main module "b.js" is not among/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", modules: { "a.js": "" } } as never), (e: Error) => e.name === "InvalidWorkerCodeError" && /mainModule/.test(e.message));
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "a.txt", modules: { "a.txt": "x" } }), /only allowed for \.js, \.mjs and \.ts/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "../a.js", modules: { "../a.js": "" } }), /relative path/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "t.txt", modules: { "t.txt": { text: "x" } } }), /must be a JavaScript or TypeScript module/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "06/01/2025", mainModule: "a.js", modules: { "a.js": "" } }), /compatibilityDate/);
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "a.js", modules: { "a.js": { wasm: new Uint8Array([1, 2]) } } }), /not a valid WebAssembly module/);
  });

  test("a TypeScript syntax error is reported with its position", () => {
    assert.throws(() => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "a.ts", modules: { "a.ts": "const x: number = ;" } }), /a\.ts:1:\d+.*could not be transpiled/);
  });

  test("functions and class instances in env are refused with a DataCloneError naming the path", () => {
    class Thing { x = 1; }
    assert.throws(() => ctx.loader.load(worker("", { env: { F: () => 1 } })), (e: Error) => e instanceof DataCloneError && e.name === "DataCloneError" && /env\.F/.test(e.message));
    assert.throws(() => ctx.loader.load(worker("", { env: { deep: { t: new Thing() } } })), (e: Error) => e instanceof DataCloneError && /env\.deep\.t: an instance of class Thing/.test(e.message));
  });

  test("limits above the loader's ceiling are refused", () => {
    assert.throws(() => ctx.loader.load(worker("", { limits: { memoryMb: 100_000 } })), /maxMemoryMb/);
  });
});

describe("get(id) cache", () => {
  test("getCode is called once per live id; calls reuse the warm isolate", async () => {
    let calls = 0;
    const getCode = () => { calls++; return worker(`let n = 0; export default { fetch() { return new Response(String(++n)) } }`); };
    assert.equal(await fetchText(ctx.loader.get("counter", getCode)), "1");
    assert.equal(await fetchText(ctx.loader.get("counter", getCode)), "2");
    assert.equal(calls, 1);
  });

  test("async getCode works, concurrent get() share one getCode call", async () => {
    let calls = 0;
    const getCode = async () => { calls++; await new Promise((r) => setTimeout(r, 10)); return worker(`export default { fetch() { return new Response("async") } }`); };
    const [a, b] = await Promise.all([fetchText(ctx.loader.get("async-id", getCode)), fetchText(ctx.loader.get("async-id", getCode))]);
    assert.deepEqual([a, b, calls], ["async", "async", 1]);
  });

  test("getCode errors reach the caller and the id is not cached", async () => {
    let calls = 0;
    const failing = () => { calls++; throw new Error("no code for you"); };
    await assert.rejects(fetchText(ctx.loader.get("bad", failing)), /no code for you/);
    await assert.rejects(fetchText(ctx.loader.get("bad", async () => { calls++; throw new Error("async no"); })), /async no/);
    assert.equal(calls, 2);
    await assert.rejects(fetchText(ctx.loader.get("bad2", () => ({ compatibilityDate: "2025-06-01", mainModule: "x.js", modules: {} }))), InvalidWorkerCodeError);
  });

  test("eviction is bounded by count (LRU)", async () => {
    const small = new WorkerLoader({ executors: 1, cache: { maxWorkers: 2 } });
    try {
      let calls = 0;
      const code = () => { calls++; return worker(`export default { fetch() { return new Response("x") } }`); };
      await fetchText(small.get("a", code));
      await fetchText(small.get("b", code));
      await fetchText(small.get("a", code)); // a is now most recent
      await fetchText(small.get("c", code)); // evicts b
      assert.equal(calls, 3);
      await fetchText(small.get("a", code));
      assert.equal(calls, 3, "a stayed cached");
      await fetchText(small.get("b", code));
      assert.equal(calls, 4, "b was evicted and reloaded");
    } finally {
      await small.close();
    }
  });

  test("eviction is bounded by memory", async () => {
    const small = new WorkerLoader({ executors: 1, cache: { maxWorkers: 100, maxMemoryMb: 3 } });
    try {
      let calls = 0;
      const code = () => { calls++; return worker(`export default { fetch() { return new Response("x") } }`); };
      for (const id of ["m1", "m2", "m3", "m4", "m5"]) await fetchText(small.get(id, code));
      calls = 0;
      await fetchText(small.get("m1", code));
      assert.equal(calls, 1, "the oldest id was evicted once memory passed the bound");
    } finally {
      await small.close();
    }
  });
});

describe("lifecycle", () => {
  test("a disposed stub refuses calls with WorkerDisposedError", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() { return new Response("x") } }`));
    await fetchText(stub);
    stub.dispose();
    await assert.rejects(fetchText(stub), WorkerDisposedError);
  });

  test("an idle stub frees its isolate after the TTL and starts a fresh one on its next call", async () => {
    const l = new WorkerLoader({ executors: 1, idleTtlMs: 50 });
    try {
      const stub = l.load(worker(`let n = 0; export default { fetch() { return new Response(String(++n)) } }`));
      assert.equal(await fetchText(stub), "1");
      assert.equal(await fetchText(stub), "2");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await fetchText(stub), "1", "state was lost with the isolate");
      let calls = 0;
      const code = () => { calls++; return worker(`export default { fetch() { return new Response("c") } }`); };
      await fetchText(l.get("ttl", code));
      await new Promise((r) => setTimeout(r, 200));
      await fetchText(l.get("ttl", code));
      assert.equal(calls, 2, "an idle cached id was evicted");
    } finally {
      await l.close();
    }
  });

  test("close() disposes everything; later use fails with WorkerDisposedError", async () => {
    const l = new WorkerLoader({ executors: 1 });
    const stub = l.load(worker(`export default { fetch() { return new Response("x") } }`));
    await fetchText(stub);
    const pids = l.engine.stats().executors.map((e) => e.pid);
    await l.close();
    await assert.rejects(fetchText(stub), WorkerDisposedError);
    assert.throws(() => l.load(worker("")), WorkerDisposedError);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), "executor process is gone");
  });
});
