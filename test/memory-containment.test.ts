// Every way a guest can breach its memory limit ends that run with MemoryLimitError, and only that
// run: each breach happens while a benign worker is in flight on the same (only) executor, and the
// benign one must answer. The executor must never die (restarts stay 0).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryLimitError, WorkerLoader } from "../src/index.ts";
import { worker } from "./helpers.ts";

/** Each breach, as the body of a fetch handler; all run under `memoryMb: 32`. */
export const BOMBS: Record<string, string> = {
  "object heap bomb": "const a = []; for (;;) a.push({ x: new Array(1000).fill(1) })",
  "array growth": "const a = []; for (;;) a.push(1.5)",
  "string doubling": "let s = 'x'; for (;;) s = s + s",
  "'x'.repeat(2**28)": "return new Response(String('x'.repeat(2 ** 28).length))",
  "JSON.parse of a huge text": "const t = '[' + '1,'.repeat(1e7) + '1]'; return new Response(String(JSON.parse(t).length))",
  "a huge JSON text built by joining": "const parts = []; for (let i = 0; i < 2e6; i++) parts.push('{\"k\":' + i + '}'); return new Response(String(JSON.parse('[' + parts.join(',') + ']').length))",
  "Array(1e9) fill": "return new Response(String(Array(1e9).fill(0).length))",
  "Map growth": "const m = new Map(); for (let i = 0; ; i++) m.set(i, { i })",
  "Set growth": "const s = new Set(); for (let i = 0; ; i++) s.add('k' + i)",
  "typed array beyond the limit": "return new Response(String(new Uint8Array(2 ** 30).length))",
  "resizable buffer growth": "const b = new ArrayBuffer(1, { maxByteLength: 2 ** 31 }); for (let n = 1; n <= 2 ** 31; n *= 2) b.resize(n); return new Response(String(b.byteLength))",
  "Wasm memory growth": "const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); for (;;) m.grow(100)",
  "deep recursion with big frames": "function r(n) { const frame = new Array(8192).fill(n); return r(n + 1) + frame.length } return new Response(String(r(0)))",
};

/** Awaits timers and allocates a little on both sides of the bomb, then answers. */
const BENIGN = `export default { async fetch() {
  let sum = 0;
  for (let i = 0; i < 20; i++) { await new Promise((r) => setTimeout(r, 10)); sum += new Array(100).fill(i).length }
  return new Response("ok " + sum);
} }`;

let loader: WorkerLoader;
before(async () => {
  loader = new WorkerLoader({ executors: 1, limits: { cpuMs: 5_000, wallMs: 20_000 } });
  await loader.ready();
});
after(() => loader.close());

async function bombBesideBenign(body: string): Promise<void> {
  const benign = loader.load(worker(BENIGN)).getEntrypoint().fetch("http://benign/");
  const bomb = loader.load(worker(`export default { async fetch() { ${body} } }`, { limits: { memoryMb: 32 } })).getEntrypoint().fetch("http://bomb/");
  const [b, n] = await Promise.allSettled([bomb, benign]);
  assert.equal(n.status, "fulfilled", `the benign neighbour failed: ${n.status === "rejected" ? n.reason : ""}`);
  assert.equal(await n.value.text(), "ok 2000");
  if (b.status === "fulfilled") assert.fail(`the bomb answered: ${await b.value.text()}`);
  assert.ok(b.reason instanceof MemoryLimitError, `expected MemoryLimitError, got ${b.reason?.name}: ${b.reason?.message}`);
}

/** Stack exhaustion is bounded by V8's stack limit, not the heap: the guest's own catchable RangeError. */
const STACK: Record<string, string> = {
  "deep recursion with many arguments": "function r(a, b, c, d, e, f, g, h) { return r(b, c, d, e, f, g, h, a) + 1 } return new Response(String(r(1, 2, 3, 4, 5, 6, 7, 8)))",
  "stack exhaustion, then a host call at the deepest frame": "let depth = 0; function r() { depth++; try { return r() } catch { console.log('deepest', depth); crypto.getRandomValues(new Uint8Array(8)); return 0 } } return new Response(String(r()))",
};

describe("every memory breach is a MemoryLimitError of that run only", () => {
  for (const [name, body] of Object.entries(BOMBS)) {
    test(name, async () => {
      await bombBesideBenign(body);
      assert.equal(loader.engine.stats().restarts, 0, "an executor died");
    });
  }
});

describe("breaches in top-level code", () => {
  const TOP_LEVEL: Record<string, string> = {
    "a Set grown at startup": "const s = new Set(); for (let i = 0; ; i++) s.add('k' + i);",
    // The limit is on live memory: a parse result kept (not garbage by the time V8 looks).
    "a huge JSON.parse at startup": "globalThis.kept = JSON.parse('[' + '1,'.repeat(1e7) + '1]');",
  };
  for (const [name, top] of Object.entries(TOP_LEVEL)) {
    test(name, async () => {
      const benign = loader.load(worker(BENIGN)).getEntrypoint().fetch("http://benign/");
      const bomb = loader.load(worker(`${top}\nexport default { fetch() { return new Response("started") } }`, { limits: { memoryMb: 32 } })).getEntrypoint().fetch("http://bomb/");
      const [b, n] = await Promise.allSettled([bomb, benign]);
      assert.equal(n.status, "fulfilled");
      assert.equal(await n.value.text(), "ok 2000");
      assert.equal(b.status, "rejected");
      assert.ok(b.reason instanceof MemoryLimitError, `expected MemoryLimitError, got ${b.reason?.name}: ${b.reason?.message}`);
      assert.equal(loader.engine.stats().restarts, 0, "an executor died");
    });
  }
});

describe("stack exhaustion never takes down the executor", () => {
  for (const [name, body] of Object.entries(STACK)) {
    test(name, async () => {
      const benign = loader.load(worker(BENIGN)).getEntrypoint().fetch("http://benign/");
      const deep = loader.load(worker(`export default { async fetch() { ${body} } }`)).getEntrypoint().fetch("http://deep/");
      const [d, n] = await Promise.allSettled([deep, benign]);
      assert.equal(n.status, "fulfilled");
      assert.equal(await n.value.text(), "ok 2000");
      // Either the guest caught the overflow and answered, or it is the guest's own RangeError.
      if (d.status === "rejected") assert.match(String(d.reason?.message), /Maximum call stack size exceeded/);
      else assert.equal(d.value.status, 200);
      assert.equal(loader.engine.stats().restarts, 0, "an executor died");
    });
  }
});

describe("100 rounds of the whole mix", () => {
  test("every breach is a MemoryLimitError, every neighbour answers, no executor dies", { timeout: 15 * 60_000 }, async () => {
    const names = Object.keys(BOMBS);
    for (let round = 0; round < Number(process.env.MAYFLY_MIX_ROUNDS ?? 100); round++) {
      const name = names[round % names.length]!;
      await bombBesideBenign(BOMBS[name]!).catch((e) => assert.fail(`round ${round} (${name}): ${e.message}`));
    }
    assert.equal(loader.engine.stats().restarts, 0, "an executor died");
  });
});
