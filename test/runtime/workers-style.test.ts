import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fetchText, useLoader } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

/**
 * Issue 3's "done when": a Workers-style worker that parses a URL, reads a JSON request body, calls
 * crypto.subtle.digest, streams its response through a TransformStream, sets a timer and logs —
 * written as for Cloudflare, run unchanged.
 */
const WORKER = `
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const { text } = await request.json();
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    console.log("hashing for", url.searchParams.get("who"));
    const { readable, writable } = new TransformStream({
      transform(chunk, controller) { controller.enqueue(new TextEncoder().encode(new TextDecoder().decode(chunk).toUpperCase())) },
    });
    const writer = writable.getWriter();
    ctx.waitUntil((async () => {
      await writer.write(new TextEncoder().encode("path=" + url.pathname + "\\n"));
      await new Promise((resolve) => setTimeout(resolve, 20));
      await writer.write(new TextEncoder().encode("sha256=" + hex + "\\n"));
      await writer.close();
    })());
    return new Response(readable, { headers: { "content-type": "text/plain" } });
  },
};`;

describe("a Workers-style worker runs unchanged", () => {
  test("URL, JSON body, crypto.subtle.digest, a TransformStream-streamed response, a timer and a log", async () => {
    const stub = ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "worker.js", modules: { "worker.js": WORKER } });
    const text = await fetchText(stub, "https://example.com/api/hash?who=ada", {
      method: "POST", body: JSON.stringify({ text: "mayfly" }), headers: { "content-type": "application/json" },
    });
    const expected = createHash("sha256").update("mayfly").digest("hex");
    assert.equal(text, `PATH=/API/HASH\nSHA256=${expected.toUpperCase()}\n`);
    for (let i = 0; i < 50 && ctx.reports.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(ctx.reports.at(-1)!.logs.map((l) => l.message), ["hashing for ada"]);
    assert.equal(ctx.reports.at(-1)!.outcome, "ok");
  });
});
