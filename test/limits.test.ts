import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CpuTimeLimitError, MemoryLimitError, OutputLimitError, WallTimeLimitError, WorkerLoader,
} from "../src/index.ts";
import { fetchText, useLoader, worker } from "./helpers.ts";

const ctx = useLoader({ executors: 2 });
const reports = ctx.reports;

/** After every breach, the engine must still serve a plain worker. */
async function stillServes(): Promise<void> {
  assert.equal(await fetchText(ctx.loader.load(worker(`export default { fetch() { return new Response("alive") } }`))), "alive");
}

function handler(body: string, limits: Record<string, number>) {
  return ctx.loader.load(worker(`export default { async fetch(request, env, ctx) { ${body} } }`, { limits }));
}

describe("CPU time", () => {
  test("a busy loop is ended with CpuTimeLimitError", async () => {
    await assert.rejects(fetchText(handler("while (true) {}", { cpuMs: 50 })), CpuTimeLimitError);
    assert.equal(reports.at(-1)!.outcome, "exceededCpu");
    // The report carries the CPU really used (the isolate is gone by then: the last reading stands).
    assert.ok(reports.at(-1)!.cpuMs >= 50, `cpuMs ${reports.at(-1)!.cpuMs}`);
    await stillServes();
  });

  test("an endless microtask chain counts as CPU time", async () => {
    await assert.rejects(fetchText(handler("const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => {})", { cpuMs: 50, wallMs: 20_000 })), CpuTimeLimitError);
    await stillServes();
  });

  test("a busy loop at startup (top-level code) is ended too", async () => {
    const stub = ctx.loader.load(worker(`while (true) {} export default {}`, { limits: { cpuMs: 50 } }));
    await assert.rejects(fetchText(stub), CpuTimeLimitError);
    await stillServes();
  });

  test("the CPU budget is per invocation: a warm worker's later calls get a fresh budget", async () => {
    const stub = handler("const t = Date.now(); let x = 0; for (let i = 0; i < 2e6; i++) x += i; return new Response(String(x > 0))", { cpuMs: 200 });
    for (let i = 0; i < 5; i++) assert.equal(await fetchText(stub), "true");
  });

  test("a worker ended by a limit starts afresh on its next call", async () => {
    const stub = ctx.loader.load(worker(`let n = 0; export default { fetch(r) { n++; if (r.url.endsWith("spin")) while (true) {} return new Response(String(n)) } }`, { limits: { cpuMs: 50 } }));
    assert.equal(await fetchText(stub, "http://w/a"), "1");
    await assert.rejects(fetchText(stub, "http://w/spin"), CpuTimeLimitError);
    assert.equal(await fetchText(stub, "http://w/a"), "1", "a fresh isolate: module state starts over");
  });
});

describe("wall-clock time", () => {
  test("a run awaiting forever is ended with WallTimeLimitError", async () => {
    await assert.rejects(fetchText(handler("await new Promise(() => {})", { wallMs: 200 })), WallTimeLimitError);
    assert.equal(reports.at(-1)!.outcome, "exceededWall");
    await stillServes();
  });
});

describe("memory", () => {
  test("a growing JS heap is ended with MemoryLimitError", async () => {
    await assert.rejects(
      fetchText(handler("const keep = []; for (;;) keep.push({ a: Math.random(), s: 'x' + Math.random() })", { memoryMb: 16, cpuMs: 10_000 })),
      MemoryLimitError,
    );
    assert.equal(reports.at(-1)!.outcome, "exceededMemory");
    await stillServes();
  });

  test("ArrayBuffers count against the limit", async () => {
    await assert.rejects(fetchText(handler("const keep = []; for (;;) keep.push(new Uint8Array(4 * 1024 * 1024))", { memoryMb: 32, cpuMs: 10_000 })), MemoryLimitError);
    await stillServes();
  });

  test("a resizable ArrayBuffer's reservation counts against the limit", async () => {
    await assert.rejects(fetchText(handler("const b = new ArrayBuffer(1, { maxByteLength: 1024 * 1024 * 1024 }); b.resize(1024 * 1024 * 1024); return new Response('')", { memoryMb: 64 })), MemoryLimitError);
    await stillServes();
    // Within budget it works as usual.
    assert.equal(await fetchText(handler("const b = new ArrayBuffer(1, { maxByteLength: 1024 * 1024 }); b.resize(4096); return new Response(String(b.byteLength))", { memoryMb: 64 })), "4096");
  });

  test("Wasm memory counts against the limit", async () => {
    await assert.rejects(fetchText(handler("const m = new WebAssembly.Memory({ initial: 1, maximum: 16384 }); m.grow(16000); return new Response('')", { memoryMb: 64 })), MemoryLimitError);
    await stillServes();
    assert.equal(await fetchText(handler("const m = new WebAssembly.Memory({ initial: 1, maximum: 16 }); m.grow(1); return new Response(String(m.buffer.byteLength))", { memoryMb: 64 })), "131072");
  });

  test("Wasm memory growth from inside Wasm stops at the executor's per-memory ceiling", async () => {
    // (module (memory (export "mem") 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))
    const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 14, 2, 3, 109, 101, 109, 2, 0, 4, 103, 114, 111, 119, 0, 0, 10, 8, 1, 6, 0, 32, 0, 64, 0, 11]);
    const l = new WorkerLoader({ executors: 1, maxMemoryMb: 64 });
    try {
      const stub = l.load({
        compatibilityDate: "2025-06-01", mainModule: "main.js", limits: { memoryMb: 64 },
        modules: { "main.js": `import mod from "./g.wasm"; export default { fetch() {
          const { exports } = new WebAssembly.Instance(mod);
          return Response.json({ small: exports.grow(10), huge: exports.grow(60000) }) } }`, "g.wasm": { wasm } },
      });
      assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), { small: 1, huge: -1 });
    } finally {
      await l.close();
    }
  });
});

describe("output", () => {
  test("a response body larger than outputBytes is refused with OutputLimitError", async () => {
    await assert.rejects(fetchText(handler("return new Response(new Uint8Array(2 * 1024 * 1024))", { outputBytes: 1024 * 1024 })), OutputLimitError);
    assert.equal(reports.at(-1)!.outcome, "exceededOutput");
    await stillServes();
  });

  test("an RPC result larger than outputBytes is refused", async () => {
    const stub = ctx.loader.load(worker(`export class Big { get() { return "x".repeat(300000) } } export default {}`, { limits: { outputBytes: 100_000 } }));
    await assert.rejects(stub.getEntrypoint("Big").get(), OutputLimitError);
  });

  test("log volume past logBytes ends the run with OutputLimitError", async () => {
    await assert.rejects(fetchText(handler("for (let i = 0; i < 1e6; i++) console.log('line ' + i); return new Response('')", { logBytes: 10_000, cpuMs: 10_000 })), OutputLimitError);
    const r = reports.at(-1)!;
    assert.ok(r.logs.length > 0 && r.logs.length < 2000, `kept the logs up to the limit (${r.logs.length})`);
    await stillServes();
  });
});

describe("isolation between tenants", () => {
  test("a runaway tenant does not stall others on the same loader", async () => {
    const runaway = fetchText(handler("while (true) {}", { cpuMs: 1500 })).catch((e) => e);
    const started = performance.now();
    for (let i = 0; i < 10; i++) assert.equal(await fetchText(ctx.loader.load(worker(`export default { fetch() { return new Response("ok") } }`))), "ok");
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1500, `10 other runs finished while the runaway spun (${elapsed.toFixed(0)} ms)`);
    assert.ok((await runaway) instanceof CpuTimeLimitError);
  });
});

describe("startup", () => {
  test("top-level code slower than the synchronous start budget is restarted asynchronously, once", async () => {
    reports.length = 0;
    const stub = ctx.loader.load(worker(`
      let n = 0; const t = Date.now(); let x = 0; for (let i = 0; i < 3e7; i++) x = (x + i) | 0;
      console.log("top-level ran");
      export default { fetch() { return new Response(String(++n) + " " + (x !== 0.5)) } }`, { limits: { cpuMs: 5000 } }));
    assert.equal(await fetchText(stub), "1 true");
    assert.equal(await fetchText(stub), "2 true");
    assert.deepEqual(reports[0]!.logs.map((l) => l.message), ["top-level ran"], "logs of the cut-off attempt are not reported");
  });

  test("a top-level infinite loop still ends with CpuTimeLimitError after the async restart", async () => {
    const stub = ctx.loader.load(worker(`for (;;) {} export default {}`, { limits: { cpuMs: 100 } }));
    await assert.rejects(fetchText(stub), CpuTimeLimitError);
    await stillServes();
  });
});
