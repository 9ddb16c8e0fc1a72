// Isolate images with a worker's npm packages evaluated (engine option packageImages): a bundle that
// has run is imaged in a child process, fresh isolates then start from the image, each with its own
// copy of the packages' state; a package that misbehaves only while imaged costs nothing but the image.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { WorkerLoader, type WorkerCode } from "../src/index.ts";
import { TestRegistry } from "./npm-registry.ts";
import { useTempDir } from "./helpers.ts";

const tmp = useTempDir("mayfly-npm-images-");
const registry = new TestRegistry();
const loaders: WorkerLoader[] = [];

function loader(packageImages: { afterRuns: number; deadlineMs?: number }): WorkerLoader {
  const l = new WorkerLoader({ executors: 1, poolSize: 1, packageImages, npm: { registry: registry.url, cacheDir: mkdtempSync(join(tmp, "cache-")) } });
  loaders.push(l);
  return l;
}

function code(main: string, dependencies: Record<string, string>): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": main }, packageJson: { dependencies } };
}

async function json(l: WorkerLoader, c: WorkerCode): Promise<any> {
  const stub = l.load(c);
  try {
    const res = await stub.getEntrypoint().fetch("http://worker/");
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text);
  } finally {
    stub.dispose();
  }
}

const images = (l: WorkerLoader) => l.engine.stats().executors.reduce((n, e) => n + e.packageImages, 0);

/** Runs fresh requests until the executor reports an image ready (stats travel with each reply). */
async function untilImaged(l: WorkerLoader, c: WorkerCode, check: (body: any) => void): Promise<number> {
  const deadline = Date.now() + 30_000;
  let runs = 0;
  while (images(l) === 0) {
    assert.ok(Date.now() < deadline, "no image was built within 30 s");
    check(await json(l, c));
    runs++;
    await new Promise((r) => setTimeout(r, 50));
  }
  return runs;
}

before(async () => {
  await registry.start();
  await registry.publishDir(join(import.meta.dirname, "..", "node_modules", "zod"));
  await registry.publishFiles({ name: "tally", version: "1.0.0", type: "module", main: "index.js" }, {
    "index.js": `let n = 0; export const bump = () => ++n; export const loadedAt = Math.random();`,
  });
  // Top-level code that loops only where the runtime's setup object is visible: while being imaged.
  await registry.publishFiles({ name: "image-trap", version: "1.0.0", type: "module", main: "index.js" }, {
    "index.js": `if (typeof globalThis.__mayfly_runtime !== "undefined") { for (;;) {} }\nexport const answer = 42;`,
  });
});

after(async () => {
  await Promise.all(loaders.map((l) => l.close()));
  await registry.stop();
});

describe("npm package images", () => {
  test("fresh requests start from an image of the bundle, each with its own package state", async () => {
    const l = loader({ afterRuns: 1 });
    // The worker's top-level code also warms the image (its compiled code is kept, never its state:
    // `starts` would count the builder's run too).
    const c = code(`import { z } from "zod"; import { bump, loadedAt } from "tally";
      globalThis.starts = (globalThis.starts ?? 0) + 1;
      const Name = z.object({ name: z.string().min(2) });
      export default { fetch() { const { name } = Name.parse({ name: "ada" }); return Response.json({ name, n: bump(), loadedAt, now: Math.random(), starts: globalThis.starts }); } };`,
    { zod: "^4.0.0", tally: "1.0.0" });
    const before = await untilImaged(l, c, (b) => assert.deepEqual([b.name, b.n, b.starts], ["ada", 1, 1]));
    assert.ok(before >= 1);
    const seeds = new Set<number>();
    const draws = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const body = await json(l, c);
      // Module state is the isolate's own: a request never sees another's bump().
      assert.deepEqual([body.name, body.n, body.starts], ["ada", 1, 1]);
      seeds.add(body.loadedAt);
      draws.add(body.now);
    }
    // ...but what runs after the restore draws its own random numbers.
    assert.equal(draws.size, 6);
    // Load-time state comes from the image: the same in every isolate made from it (documented).
    assert.equal(seeds.size, 1);
    assert.equal(images(l), 1);
  });

  test("a worker whose top-level code cannot warm the image (top-level await, a throw) still gets one", async () => {
    const awaiting = code(`import { bump } from "tally";
      await Promise.resolve();
      export default { fetch() { return Response.json({ n: bump() }); } };`, { tally: "1.0.0" });
    const throwing = code(`import { bump } from "tally";
      if (typeof globalThis.__mayfly_runtime !== "undefined") throw new Error("only while imaged");
      export default { fetch() { return Response.json({ n: bump() }); } };`, { tally: "1.0.0" });
    for (const c of [awaiting, throwing]) {
      const l = loader({ afterRuns: 1 });
      await untilImaged(l, c, (b) => assert.equal(b.n, 1));
      for (let i = 0; i < 3; i++) assert.equal((await json(l, c)).n, 1);
    }
  });

  test("a package that loops only while being imaged costs the image, not the executor", async () => {
    const l = loader({ afterRuns: 1, deadlineMs: 1_000 });
    const c = code(`import { answer } from "image-trap"; export default { fetch() { return Response.json({ answer }); } };`, { "image-trap": "1.0.0" });
    const plain = code(`export default { fetch() { return Response.json({ answer: 1 }); } };`, {});
    assert.equal((await json(l, c)).answer, 42); // this run triggers the build
    // While the builder spins (up to its 1 s deadline) and after it is killed, the executor answers.
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      assert.equal((await json(l, i % 2 ? c : plain)).answer, i % 2 ? 42 : 1);
      assert.ok(performance.now() - t0 < 900, "a request waited for the image builder");
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal(images(l), 0);
    assert.equal(l.engine.stats().restarts, 0);
  });
});
