/**
 * The blob bucket tests every store must pass (files + SQLite, S3): a test file calls blobSuite()
 * with a factory for buckets on its store. What differs between stores is declared, not skipped.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { BlobBucket, WorkerLoader } from "../../src/index.ts";
import { runHandler } from "../helpers.ts";

export interface BlobSuiteSetup {
  /** A bucket named `name` on the store under test (names are distinct per test). */
  make(name: string, options?: { quota?: { bytes?: number; objects?: number } }): BlobBucket;
  loader(): WorkerLoader;
  /** Temporary files (or other debris) a refused put may have left for the bucket `name`. */
  leftovers(name: string): string[] | Promise<string[]>;
  /**
   * A multipart object's etag is the md5 of the parts' md5s and their count (as AWS S3 and R2); a
   * test server may answer another (s3rver: the md5 of the whole object).
   */
  compositeMultipartEtag: boolean;
}

export function blobSuite(label: string, setup: BlobSuiteSetup): void {
  const run = (body: string, env: Record<string, unknown>) => runHandler(setup.loader(), body, env);

  describe(`blob bucket binding (Cloudflare R2 core API) on ${label}`, () => {
    test("put/get/head/delete with metadata, etag and ranges", async () => {
      const out = await run(`
        const put = await env.B.put("docs/a.txt", "hello world", { httpMetadata: { contentType: "text/plain" }, customMetadata: { owner: "ada", "Mixed-Case": "é" } });
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
          sameVersion: got.version === put.version && head.version === put.version,
          headSize: head.size, headHasBody: "body" in head,
          range: await range.text(), rangeServed: range.range, suffix: await new Response(suffix.body).text(), bin,
          gone: await env.B.get("bin"), missingHead: await env.B.head("nope"),
        });`, { B: setup.make("files") });
      assert.deepEqual(out, {
        put: { key: "docs/a.txt", size: 11, etag: "5eb63bbbe01eeed093cb22bb8f5acdc3", httpEtag: '"5eb63bbbe01eeed093cb22bb8f5acdc3"' },
        text: "hello world", custom: { owner: "ada", "Mixed-Case": "é" }, http: { contentType: "text/plain" }, uploaded: true, sameVersion: true,
        headSize: 11, headHasBody: false, range: "world", rangeServed: { offset: 6, length: 5 }, suffix: "rld", bin: [0, 1, 2], gone: null, missingHead: null,
      });
    });

    test("a large object streams from the store into a worker smaller than it; ranges too", async () => {
      const bucket = setup.make("large");
      const big = new Uint8Array(40 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 251;
      await bucket.put("big.bin", big);
      const stub = setup.loader().load({
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

    test("a streamed put is stored as it arrives; past the byte quota it is refused and nothing is left", async () => {
      const bucket = setup.make("uploads", { quota: { bytes: 30 << 20 } });
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
      assert.deepEqual(await setup.leftovers("uploads"), []);
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
          replaceIfMatch: (await env.B.put("fresh", "y", { onlyIf: { etagMatches: "9dd4e461268c8034f5c8564e155c67a6" } })).etag,
          replaceStale: await env.B.put("fresh", "z", { onlyIf: { etagMatches: "9dd4e461268c8034f5c8564e155c67a6" } }),
          missingMatch: await env.B.put("absent", "z", { onlyIf: { etagMatches: "*" } }),
          stillV1: await (await env.B.get("doc")).text(),
        });`, { B: setup.make("conditional") });
      assert.deepEqual(out, {
        match: true, quotedList: true, mismatch: false, noneMatch: false, headers: false, modifiedSince: false,
        metadataOnly: 2, createOnlyExisting: null, createOnlyNew: "fresh", replaceIfMatch: "415290769594460e2e485922904f345d",
        replaceStale: null, missingMatch: null, stillV1: "v1",
      });
    });

    test("multipart uploads: parts (bytes or streams) joined in order on complete; resume, abort, bad parts refused", async () => {
      const out = await run(`
        const up = await env.B.createMultipartUpload("big.txt", { customMetadata: { by: "test" } });
        const p2 = await up.uploadPart(2, "world");
        let sent = false;
        const stream = new ReadableStream({ pull(c) { if (sent) c.close(); else { sent = true; c.enqueue(new TextEncoder().encode("hello ")); } } });
        const p1 = await env.B.resumeMultipartUpload("big.txt", up.uploadId).uploadPart(1, stream);
        const otherKey = await env.B.resumeMultipartUpload("other.txt", up.uploadId).uploadPart(3, "x").then(() => "stored", (e) => e.message);
        const badEtag = await up.complete([p1, { partNumber: 2, etag: "0".repeat(32) }]).then(() => "completed", (e) => e.message);
        const missing = await up.complete([p1, p2, { partNumber: 3, etag: p2.etag }]).then(() => "completed", (e) => e.message);
        const obj = await up.complete([p2, p1]);
        const again = await up.uploadPart(3, "x").then(() => "stored", (e) => e.message);
        const other = await env.B.createMultipartUpload("gone.txt");
        await other.uploadPart(1, "abc");
        await other.abort();
        const afterAbort = await other.complete([{ partNumber: 1, etag: "x" }]).then(() => "completed", (e) => e.message);
        const head = await env.B.head("big.txt");
        return Response.json({ text: await (await env.B.get("big.txt")).text(), size: obj.size, etag: obj.etag, headEtag: head.etag, custom: obj.customMetadata,
          otherKey, badEtag, missing, again, afterAbort, gone: await env.B.head("gone.txt") });`, { B: setup.make("multipart") });
      const md5 = (s: string) => createHash("md5").update(s).digest();
      const noUpload = "No such multipart upload (it was completed, aborted, or never made for this key).";
      assert.deepEqual(out, {
        text: "hello world", size: 11, headEtag: out.etag, custom: { by: "test" },
        etag: setup.compositeMultipartEtag ? `${createHash("md5").update(Buffer.concat([md5("hello "), md5("world")])).digest("hex")}-2` : out.etag,
        otherKey: noUpload, badEtag: "Part 2 does not match its etag.", missing: "Part 3 was not uploaded.",
        again: noUpload, afterAbort: noUpload, gone: null,
      });
    });

    test("list with prefix, delimiter (folded prefixes), limit and cursor; metadata included", async () => {
      const out = await run(`
        for (const k of ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/top.jpg", "readme"]) await env.B.put(k, "x", { customMetadata: { k } });
        const folded = await env.B.list({ prefix: "photos/", delimiter: "/" });
        const page1 = await env.B.list({ limit: 2 });
        const page2 = await env.B.list({ limit: 2, cursor: page1.cursor });
        const page3 = await env.B.list({ limit: 2, cursor: page2.cursor });
        const dotted = await env.B.list({ prefix: "photos/2024/a." });
        return Response.json({
          objects: folded.objects.map((o) => o.key), prefixes: folded.delimitedPrefixes, truncated: folded.truncated,
          page1: page1.objects.map((o) => o.key), more: page1.truncated, page2: page2.objects.map((o) => o.key), page3: page3.objects.map((o) => o.key),
          end: page3.truncated, custom: page1.objects[0].customMetadata, size: page1.objects[0].size, dotted: dotted.objects.map((o) => o.key),
        });`, { B: setup.make("listing") });
      assert.deepEqual(out, {
        objects: ["photos/top.jpg"], prefixes: ["photos/2024/", "photos/2025/"], truncated: false,
        page1: ["photos/2024/a.jpg", "photos/2024/b.jpg"], more: true, page2: ["photos/2025/c.jpg", "photos/top.jpg"], page3: ["readme"],
        end: false, custom: { k: "photos/2024/a.jpg" }, size: 1, dotted: ["photos/2024/a.jpg"],
      });
    });

    test("keys cannot escape the bucket: buckets are apart, whatever the key", async () => {
      const out = await run(`
        await env.A.put("../../../etc/passwd", "a's"); await env.B.put("../../../etc/passwd", "b's");
        await env.A.put("../../b/o/x", "a's x");
        return Response.json([await (await env.A.get("../../../etc/passwd")).text(), await (await env.B.get("../../../etc/passwd")).text(),
          await env.B.head("x"), (await env.A.list()).objects.map((o) => o.key), (await env.B.list()).objects.map((o) => o.key)]);`,
        { A: setup.make("a"), B: setup.make("b") });
      assert.deepEqual(out, ["a's", "b's", null, ["../../../etc/passwd", "../../b/o/x"], ["../../../etc/passwd"]]);
    });

    test("quotas on objects and bytes: QuotaExceededError, nothing written", async () => {
      const out = await run(`
        const r = [];
        for (const k of ["1", "2", "3"]) { try { await env.B.put(k, "v"); r.push("ok") } catch (e) { r.push(e.name) } }
        await env.B.put("2", "replaced"); r.push("replace ok");
        try { await env.S.put("big", "x".repeat(500)); r.push("ok") } catch (e) { r.push(e.name) }
        r.push(await env.S.head("big"));
        const up = await env.S.createMultipartUpload("parts");
        const parts = [await up.uploadPart(1, "x".repeat(60)), await up.uploadPart(2, "x".repeat(60))];
        try { await up.complete(parts); r.push("ok") } catch (e) { r.push(e.name) }
        r.push(await env.S.head("parts"));
        return Response.json(r);`, { B: setup.make("q1", { quota: { objects: 2 } }), S: setup.make("q2", { quota: { bytes: 100 } }) });
      assert.deepEqual(out, ["ok", "ok", "QuotaExceededError", "replace ok", "QuotaExceededError", null, "QuotaExceededError", null]);
    });
  });
}
