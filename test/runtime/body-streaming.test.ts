import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { OutputLimitError, WallTimeLimitError } from "../../src/index.ts";
import { useLoader, worker } from "../helpers.ts";

/** Bodies stream across host → executor → isolate and back: 100 MB never sits whole anywhere. */
const ctx = useLoader({ executors: 1 });

const MB = 1024 * 1024;
const CHUNK = 64 * 1024;

function producer(totalBytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      const n = Math.min(CHUNK, totalBytes - sent);
      controller.enqueue(new Uint8Array(n).fill(sent % 251));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

async function drainCount(body: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.byteLength;
  }
}

const executorRss = () => ctx.loader.engine.stats().executors.reduce((s, e) => s + e.rssBytes, 0);

describe("streamed bodies (Fetch §5: request and response bodies are streams)", () => {
  test("a 300 MB request body streams into the isolate without being buffered", async () => {
    const stub = ctx.loader.load(worker(`export default { async fetch(request) {
      let n = 0; const reader = request.body.getReader();
      for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.byteLength; }
      return new Response(String(n)) } }`, { limits: { cpuMs: 30_000, wallMs: 60_000, memoryMb: 32 } }));
    // The isolate has 32 MB: had the body been buffered inside it, the run would end with MemoryLimitError.
    // A first 20 MB pass warms the path (stream classes, allocator arenas) before RSS is compared.
    await (await stub.getEntrypoint().fetch("http://w/", { method: "POST", body: producer(20 * MB), duplex: "half" } as RequestInit)).text();
    const before = executorRss();
    const hostBefore = process.memoryUsage.rss();
    const res = await stub.getEntrypoint().fetch("http://w/", { method: "POST", body: producer(300 * MB), duplex: "half" } as RequestInit);
    assert.equal(await res.text(), String(300 * MB));
    // Garbage chunks awaiting GC account for some growth (V8 collects external memory in ~64 MB steps);
    // a buffered body would add all 300 MB.
    const growth = (executorRss() - before) / MB;
    assert.ok(growth < 120, `executor RSS grew ${growth.toFixed(1)} MB for a 300 MB body`);
    assert.ok((process.memoryUsage.rss() - hostBefore) / MB < 120, "host RSS stayed well below the body size");
  });

  test("a 100 MB response body streams out of the isolate to the host reader", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() {
      let sent = 0; const total = ${100 * MB};
      return new Response(new ReadableStream({ pull(c) {
        if (sent >= total) return c.close();
        c.enqueue(new Uint8Array(${CHUNK})); sent += ${CHUNK};
      } }, { highWaterMark: 0 })) } }`, { limits: { cpuMs: 30_000, wallMs: 60_000, outputBytes: 200 * MB } }));
    const hostBefore = process.memoryUsage.rss();
    const res = await stub.getEntrypoint().fetch("http://w/");
    assert.equal(await drainCount(res.body!), 100 * MB);
    assert.ok((process.memoryUsage.rss() - hostBefore) / MB < 60, "host RSS stayed below the body size");
  });

  test("a streamed response past outputBytes fails the host's read with OutputLimitError", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() {
      return new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(${CHUNK})) } })) } }`, { limits: { outputBytes: 1 * MB } }));
    const res = await stub.getEntrypoint().fetch("http://w/");
    await assert.rejects(drainCount(res.body!), OutputLimitError);
  });

  test("a guest stream that errors midway errors the host's read with the guest's error", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() {
      let n = 0;
      return new Response(new ReadableStream({ pull(c) { if (++n > 3) c.error(new RangeError("broken stream")); else c.enqueue(new Uint8Array(10)) } })) } }`));
    const res = await stub.getEntrypoint().fetch("http://w/");
    await assert.rejects(drainCount(res.body!), (e: Error) => e.name === "RangeError" && e.message === "broken stream");
  });

  test("a response body that never ends is cut by the wall limit", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() {
      return new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(5)) }, pull() { return new Promise(() => {}) } })) } }`, { limits: { wallMs: 200 } }));
    const res = await stub.getEntrypoint().fetch("http://w/");
    await assert.rejects(drainCount(res.body!), WallTimeLimitError);
  });

  test("the host cancelling its read ends the guest's stream; the worker keeps serving", async () => {
    const stub = ctx.loader.load(worker(`let cancelled = 0; export default { fetch(r) {
      if (r.url.endsWith("/status")) return new Response(String(cancelled));
      return new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1000)) }, cancel() { cancelled++ } })) } }`));
    const res = await stub.getEntrypoint().fetch("http://w/");
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    let status = "0";
    for (let i = 0; i < 50 && status === "0"; i++) {
      status = await (await stub.getEntrypoint().fetch("http://w/status")).text();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(status, "1");
  });
});
