import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { blobBucket } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-blob-");
const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

describe("blob bucket binding (Cloudflare R2 core API)", () => {
  test("put/get/head/delete with metadata, etag and ranges", async () => {
    const out = await run(`
      const put = await env.B.put("docs/a.txt", "hello world", { httpMetadata: { contentType: "text/plain" }, customMetadata: { owner: "ada" } });
      const got = await env.B.get("docs/a.txt");
      const head = await env.B.head("docs/a.txt");
      const range = await env.B.get("docs/a.txt", { range: { offset: 6, length: 5 } });
      const suffix = await env.B.get("docs/a.txt", { range: { suffix: 3 } });
      await env.B.put("bin", new Uint8Array([0, 1, 2]));
      const bin = [...new Uint8Array(await (await env.B.get("bin")).arrayBuffer())];
      await env.B.delete("bin");
      return Response.json({
        put: { key: put.key, size: put.size, etag: put.etag, httpEtag: put.httpEtag },
        text: await got.text(), custom: got.customMetadata, http: got.httpMetadata, uploaded: got.uploaded instanceof Date,
        headSize: head.size, headHasBody: "body" in head,
        range: await range.text(), suffix: await new Response(suffix.body).text(), bin,
        gone: await env.B.get("bin"), missingHead: await env.B.head("nope"),
      });`, { B: blobBucket({ name: "files", dataDir }) });
    assert.deepEqual(out, {
      put: { key: "docs/a.txt", size: 11, etag: "5eb63bbbe01eeed093cb22bb8f5acdc3", httpEtag: '"5eb63bbbe01eeed093cb22bb8f5acdc3"' },
      text: "hello world", custom: { owner: "ada" }, http: { contentType: "text/plain" }, uploaded: true,
      headSize: 11, headHasBody: false, range: "world", suffix: "rld", bin: [0, 1, 2], gone: null, missingHead: null,
    });
  });

  test("a large object streams from its file into a worker smaller than it; ranges too", async () => {
    const bucket = blobBucket({ name: "large", dataDir });
    const big = new Uint8Array(40 << 20);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 251;
    await bucket.put("big.bin", big);
    const stub = ctx.loader.load({
      compatibilityDate: "2025-06-01", mainModule: "m.js", env: { B: bucket }, limits: { memoryMb: 16 },
      modules: { "m.js": `export default { async fetch(request, env) {
        const obj = await env.B.get("big.bin");
        let bytes = 0, sum = 0;
        for await (const chunk of obj.body) { for (let i = (4096 - bytes % 4096) % 4096; i < chunk.length; i += 4096) sum += chunk[i]; bytes += chunk.byteLength; }
        const part = await env.B.get("big.bin", { range: { offset: (30 << 20) + 4096, length: 2 << 20 } });
        const head = new Uint8Array(await part.arrayBuffer());
        return Response.json({ size: obj.size, bytes, sum, partLength: head.length, partFirst: head[0] });
      } }` },
    });
    let sum = 0;
    for (let i = 0; i < big.length; i += 4096) sum += big[i]!;
    assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), { size: 40 << 20, bytes: 40 << 20, sum, partLength: 2 << 20, partFirst: big[(30 << 20) + 4096] });
    const host = await bucket.get("big.bin", { range: { suffix: 10 } });
    assert.equal((await host!.arrayBuffer()).byteLength, 10);
  });

  test("a streamed put goes to the file as it arrives; past the byte quota it is refused and nothing is left", async () => {
    const bucket = blobBucket({ name: "uploads", dataDir, quota: { bytes: 30 << 20 } });
    const upload = (mb: number, key: string) => run(`
      let left = ${mb} * 16;
      const body = new ReadableStream({ pull(c) { if (left-- > 0) c.enqueue(new Uint8Array(64 * 1024).fill(left % 256)); else c.close(); } });
      try { const o = await env.B.put("${key}", body); return Response.json({ size: o.size, etag: o.etag }) }
      catch (e) { return Response.json({ error: e.name }) }`, { B: bucket });
    const ok = await upload(24, "video.bin");
    const expected = createHash("md5");
    for (let left = 24 * 16 - 1; left >= 0; left--) expected.update(new Uint8Array(64 * 1024).fill(left % 256));
    assert.deepEqual(ok, { size: 24 << 20, etag: expected.digest("hex") });
    assert.deepEqual(await upload(12, "too-much.bin"), { error: "QuotaExceededError" });
    assert.equal(await bucket.head("too-much.bin"), null);
    const objectsDir = readdirSync(join(dataDir, "blob")).find((d) => d.startsWith("uploads") && d.endsWith(".objects"))!;
    assert.deepEqual(readdirSync(join(dataDir, "blob", objectsDir)).filter((f) => f.endsWith(".tmp")), []);
  });

  test("onlyIf: conditional get answers metadata without a body; conditional put stores nothing and answers null", async () => {
    const out = await run(`
      const put = await env.B.put("doc", "v1");
      const hasBody = (o) => o !== null && typeof o.text === "function";
      const cond = async (onlyIf) => hasBody(await env.B.get("doc", { onlyIf }));
      return Response.json({
        match: await cond({ etagMatches: put.etag }),
        quotedList: await cond({ etagMatches: '"nope", "' + put.etag + '"' }),
        mismatch: await cond({ etagMatches: "nope" }),
        noneMatch: await cond({ etagDoesNotMatch: put.etag }),
        headers: await cond(new Headers({ "if-none-match": '"' + put.etag + '"' })),
        modifiedSince: await cond(new Headers({ "if-modified-since": new Date(Date.now() + 86400000).toUTCString() })),
        metadataOnly: (await env.B.get("doc", { onlyIf: { etagMatches: "nope" } })).size,
        createOnlyExisting: await env.B.put("doc", "v2", { onlyIf: { etagDoesNotMatch: "*" } }),
        createOnlyNew: (await env.B.put("fresh", "x", { onlyIf: { etagDoesNotMatch: "*" } })).key,
        stillV1: await (await env.B.get("doc")).text(),
      });`, { B: blobBucket({ name: "conditional", dataDir }) });
    assert.deepEqual(out, {
      match: true, quotedList: true, mismatch: false, noneMatch: false, headers: false, modifiedSince: false,
      metadataOnly: 2, createOnlyExisting: null, createOnlyNew: "fresh", stillV1: "v1",
    });
  });

  test("multipart uploads: parts (bytes or streams) joined in order on complete; resume, abort, bad parts refused", async () => {
    const bucket = blobBucket({ name: "multipart", dataDir });
    const out = await run(`
      const up = await env.B.createMultipartUpload("big.txt", { customMetadata: { by: "test" } });
      const p2 = await up.uploadPart(2, "world");
      let sent = false;
      const stream = new ReadableStream({ pull(c) { if (sent) c.close(); else { sent = true; c.enqueue(new TextEncoder().encode("hello ")); } } });
      const p1 = await env.B.resumeMultipartUpload("big.txt", up.uploadId).uploadPart(1, stream);
      const badEtag = await up.complete([p1, { partNumber: 2, etag: "0".repeat(32) }]).then(() => "completed", (e) => e.message);
      const missing = await up.complete([p1, p2, { partNumber: 3, etag: p2.etag }]).then(() => "completed", (e) => e.message);
      const obj = await up.complete([p2, p1]);
      const again = await up.uploadPart(3, "x").then(() => "stored", (e) => e.message);
      const other = await env.B.createMultipartUpload("gone.txt");
      await other.uploadPart(1, "abc");
      await other.abort();
      const afterAbort = await other.complete([{ partNumber: 1, etag: "x" }]).then(() => "completed", (e) => e.message);
      return Response.json({ text: await (await env.B.get("big.txt")).text(), size: obj.size, etag: obj.etag, custom: obj.customMetadata,
        badEtag, missing, again, afterAbort, gone: await env.B.head("gone.txt") });`, { B: bucket });
    const md5 = (s: string) => createHash("md5").update(s).digest();
    assert.deepEqual(out, {
      text: "hello world", size: 11, etag: `${createHash("md5").update(Buffer.concat([md5("hello "), md5("world")])).digest("hex")}-2`, custom: { by: "test" },
      badEtag: "Part 2 does not match its etag.", missing: "Part 3 was not uploaded.",
      again: "No such multipart upload (it was completed, aborted, or never made for this key).",
      afterAbort: "No such multipart upload (it was completed, aborted, or never made for this key).", gone: null,
    });
  });

  test("list with prefix, delimiter (folded prefixes), limit and cursor", async () => {
    const out = await run(`
      for (const k of ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/top.jpg", "readme"]) await env.B.put(k, "x");
      const folded = await env.B.list({ prefix: "photos/", delimiter: "/" });
      const page1 = await env.B.list({ limit: 2 });
      const page2 = await env.B.list({ limit: 2, cursor: page1.cursor });
      return Response.json({
        objects: folded.objects.map((o) => o.key), prefixes: folded.delimitedPrefixes, truncated: folded.truncated,
        page1: page1.objects.map((o) => o.key), more: page1.truncated, page2: page2.objects.map((o) => o.key),
      });`, { B: blobBucket({ name: "listing", dataDir }) });
    assert.deepEqual(out, {
      objects: ["photos/top.jpg"], prefixes: ["photos/2024/", "photos/2025/"], truncated: false,
      page1: ["photos/2024/a.jpg", "photos/2024/b.jpg"], more: true, page2: ["photos/2025/c.jpg", "photos/top.jpg"],
    });
  });

  test("keys cannot escape the bucket: files are named by the key's hash; buckets are apart", async () => {
    const out = await run(`
      await env.A.put("../../../etc/passwd", "a's"); await env.B.put("../../../etc/passwd", "b's");
      return Response.json([await (await env.A.get("../../../etc/passwd")).text(), await (await env.B.get("../../../etc/passwd")).text()]);`,
      { A: blobBucket({ name: "a", dataDir }), B: blobBucket({ name: "b", dataDir }) });
    assert.deepEqual(out, ["a's", "b's"]);
    for (const f of readdirSync(join(dataDir, "blob", "a.objects"))) assert.match(f, /^[0-9a-f]{64}$/);
  });

  test("quotas on objects and bytes: QuotaExceededError, nothing written", async () => {
    const out = await run(`
      const r = [];
      for (const k of ["1", "2", "3"]) { try { await env.B.put(k, "v"); r.push("ok") } catch (e) { r.push(e.name) } }
      try { await env.S.put("big", "x".repeat(500)); r.push("ok") } catch (e) { r.push(e.name) }
      r.push(await env.S.head("big"));
      return Response.json(r);`, { B: blobBucket({ name: "q1", dataDir, quota: { objects: 2 } }), S: blobBucket({ name: "q2", dataDir, quota: { bytes: 100 } }) });
    assert.deepEqual(out, ["ok", "ok", "QuotaExceededError", "QuotaExceededError", null]);
  });
});
