/**
 * Blob buckets on S3-compatible storage, against s3rver (an in-process S3 server): the shared suite,
 * then what only S3 has: several hosts on one S3 bucket, the key layout, conditional headers, an
 * unreachable server. s3rver ignores If-Match / If-None-Match on writes, so here a conditional put is
 * decided by its HEAD (not atomic); the headers we send are checked, and a server's 412 is simulated.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { blobBucket, postgresBackend, s3Backend, type PostgresBackend, type S3Backend, type S3BackendOptions } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { blobSuite } from "./blob.suite.ts";

const ctx = useLoader({ executors: 1 });
const spoolDir = useTempDir("mayfly-blob-spool-");
const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const s3 = { endpoint: "", server: undefined as S3rver | undefined, dir: "" };
const backends: S3Backend[] = [];

before(async () => {
  s3.dir = mkdtempSync(join(tmpdir(), "mayfly-s3rver-"));
  s3.server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: s3.dir });
  const { port } = await s3.server.run();
  s3.endpoint = `http://127.0.0.1:${port}`;
  const admin = new S3Client({ endpoint: s3.endpoint, region: "us-east-1", credentials, forcePathStyle: true });
  await admin.send(new CreateBucketCommand({ Bucket: "mayfly-blobs" }));
  admin.destroy();
});

after(async () => {
  for (const b of backends) b.close();
  await s3.server?.close();
  rmSync(s3.dir, { recursive: true, force: true });
});

/** A backend as one host would make it: its own S3 client, the shared S3 bucket. */
function host(extra: Partial<S3BackendOptions> = {}): S3Backend {
  const backend = s3Backend({ endpoint: s3.endpoint, region: "us-east-1", bucket: "mayfly-blobs", credentials, forcePathStyle: true, prefix: "mayfly/", spoolDir, ...extra });
  backends.push(backend);
  return backend;
}

async function s3Keys(prefix: string): Promise<string[]> {
  const res = await host().client.send(new ListObjectsV2Command({ Bucket: "mayfly-blobs", Prefix: prefix }));
  return (res.Contents ?? []).map((c) => c.Key!);
}

let suiteHost: S3Backend | undefined;
blobSuite("S3 (s3rver)", {
  make: (name, options) => blobBucket({ name, backend: (suiteHost ??= host()), ...options }),
  loader: () => ctx.loader,
  // Nothing spooled left behind, and nothing stored under the refused key.
  leftovers: async (name) => [...readdirSync(spoolDir), ...(await s3Keys(`mayfly/${name}/o/too-much`))],
  compositeMultipartEtag: false,
});

describe("blob buckets on S3: what only S3 has", () => {
  test("hosts share objects: put on host A, read, list, conditionally replaced and multipart-completed on host B", async () => {
    const a = blobBucket({ name: "shared", backend: host() });
    const b = blobBucket({ name: "shared", backend: host() });
    const put = await a.put("report.txt", "from A", { customMetadata: { host: "a" } });
    const seen = await b.get("report.txt");
    assert.deepEqual({ text: await seen!.text(), custom: seen!.customMetadata, version: seen!.version }, { text: "from A", custom: { host: "a" }, version: put!.version });
    assert.equal((await b.put("report.txt", "from B", { onlyIf: { etagMatches: put!.etag } }))?.size, 6);
    assert.equal(await a.put("report.txt", "stale", { onlyIf: { etagMatches: put!.etag } }), null);
    const upload = await a.createMultipartUpload("joined.txt");
    const p1 = await a.uploadPart("joined.txt", upload.uploadId, 1, "begun on A, ");
    const p2 = await b.uploadPart("joined.txt", upload.uploadId, 2, "completed on B");
    await b.completeMultipartUpload("joined.txt", upload.uploadId, [p1, p2]);
    assert.equal(await (await a.get("joined.txt"))!.text(), "begun on A, completed on B");
    assert.deepEqual((await a.list()).objects.map((o) => o.key), ["joined.txt", "report.txt"]);
  });

  test("a worker on host B reads, through env.BUCKET, what host A stored", async () => {
    await blobBucket({ name: "site", backend: host() }).put("index.html", "<h1>hi</h1>", { httpMetadata: { contentType: "text/html" } });
    const out = await runHandler(ctx.loader, `
      const o = await env.BUCKET.get("index.html");
      await env.BUCKET.put("visits/1", "x");
      return Response.json({ text: await o.text(), type: o.httpMetadata.contentType, listed: (await env.BUCKET.list({ prefix: "visits/" })).objects.length });`,
      { BUCKET: blobBucket({ name: "site", backend: host() }) });
    assert.deepEqual(out, { text: "<h1>hi</h1>", type: "text/html", listed: 1 });
  });

  test("layout: each bucket under <prefix><escaped name>/o/, keys escaped so no '.' or '..' segment reaches the server", async () => {
    const bucket = blobBucket({ name: "lay.out", backend: host() });
    await bucket.put("../../x/./y", "v");
    const up = await bucket.createMultipartUpload("m");
    await bucket.abortMultipartUpload("m", up.uploadId);
    assert.deepEqual(await s3Keys("mayfly/lay"), ["mayfly/lay.2eout/o/.~.~/.~.~/x/.~/y"]);
    assert.equal(await (await bucket.get("../../x/./y"))!.text(), "v");
  });

  test("conditional puts send If-Match / If-None-Match; a server's 412 answers null", async () => {
    const backend = host();
    const sent: Record<string, string>[] = [];
    let refuse = false;
    backend.client.middlewareStack.add((next) => async (args) => {
      const request = args.request as { method: string; headers: Record<string, string> };
      if (request.method === "PUT") sent.push(Object.fromEntries(Object.entries(request.headers).filter(([k]) => k.startsWith("if-"))));
      if (refuse && request.method === "PUT") throw Object.assign(new Error("At least one of the pre-conditions you specified did not hold"), { name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
      return next(args);
    }, { step: "finalizeRequest" });
    const bucket = blobBucket({ name: "guarded", backend });
    const first = await bucket.put("k", "1", { onlyIf: { etagDoesNotMatch: "*" } });
    await bucket.put("k", "2", { onlyIf: { etagMatches: first!.etag } });
    const third = await bucket.put("k", "3");
    const fourth = await bucket.put("k", "4", { onlyIf: { uploadedAfter: new Date(0) } });
    assert.deepEqual(sent, [{ "if-none-match": "*" }, { "if-match": `"${first!.etag}"` }, {}, { "if-match": `"${third!.etag}"` }]);
    // As if another host had replaced "k" between our HEAD and PUT, on a server that honours If-Match.
    refuse = true;
    assert.equal(await bucket.put("k", "5", { onlyIf: { etagMatches: fourth!.etag } }), null);
    await assert.rejects(bucket.put("k", "5"), { name: "PreconditionFailed" }); // an unconditional put has no such excuse
    refuse = false;
    assert.equal(await (await bucket.get("k"))!.text(), "4");
  });

  test("an unreachable S3 server is BackendUnavailableError", async () => {
    const down = blobBucket({ name: "down", backend: host({ endpoint: "http://127.0.0.1:1", maxAttempts: 1 }) });
    await assert.rejects(down.head("k"), { name: "BackendUnavailableError" });
    await assert.rejects(down.put("k", "v"), { name: "BackendUnavailableError" });
    assert.equal(await host({ endpoint: "http://127.0.0.1:1", maxAttempts: 1 }).ping(), false);
    assert.equal(await host().ping(), true);
  });
});

const noPostgres = typeof findPostgres() === "string" ? String(findPostgres()) : false;

describe("quotas across hosts: the ledger in PostgreSQL", { skip: noPostgres }, () => {
  let server: TestPostgres;
  let url = "";
  const pools: PostgresBackend[] = [];
  /** A host with its own S3 client and its own PostgreSQL pool. */
  const ledgerHost = () => {
    const pg = postgresBackend({ url });
    pools.push(pg);
    return host({ quotaLedger: pg });
  };
  before(async () => {
    server = await TestPostgres.start();
    url = await server.createDatabase("blobquota");
  });
  after(async () => {
    for (const p of pools) await p.close();
    await server?.close();
  });

  test("two hosts putting at once never pass the object quota together", async () => {
    const a = blobBucket({ name: "race", backend: ledgerHost(), quota: { objects: 4 } });
    const b = blobBucket({ name: "race", backend: ledgerHost(), quota: { objects: 4 } });
    const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).put(`k${i}`, "v").then(() => "ok", (e) => e.name)));
    assert.equal(outcomes.filter((o) => o === "ok").length, 4);
    assert.equal(outcomes.filter((o) => o === "QuotaExceededError").length, 6);
    assert.equal((await a.list()).objects.length, 4);
  });

  test("bytes: a replacement counts its new size, a delete frees, a multipart upload is counted on complete", async () => {
    const a = blobBucket({ name: "bytes", backend: ledgerHost(), quota: { bytes: 100 } });
    const b = blobBucket({ name: "bytes", backend: ledgerHost(), quota: { bytes: 100 } });
    await a.put("k", "x".repeat(60));
    await b.put("k", "x".repeat(90));
    await assert.rejects(a.put("j", "x".repeat(20)), { name: "QuotaExceededError" });
    await b.delete("k");
    await a.put("j", "x".repeat(20));
    const up = await b.createMultipartUpload("m");
    const parts = [await b.uploadPart("m", up.uploadId, 1, "x".repeat(50)), await b.uploadPart("m", up.uploadId, 2, "x".repeat(40))];
    await assert.rejects(a.completeMultipartUpload("m", up.uploadId, parts), { name: "QuotaExceededError" });
    await a.delete("j");
    assert.equal((await a.completeMultipartUpload("m", up.uploadId, parts)).size, 90);
    const pg = postgresBackend({ url });
    pools.push(pg);
    const { rows } = await pg.query("SELECT objects, bytes FROM mayfly_blob_usage WHERE bucket LIKE '%/bytes/'");
    assert.deepEqual(rows.map((r) => [Number(r.objects), Number(r.bytes)]), [[1, 90]]);
  });

  test("a bucket's ledger starts from what S3 already holds", async () => {
    const before = blobBucket({ name: "seeded", backend: host() });
    await before.put("old-1", "a");
    await before.put("old-2", "b");
    const limited = blobBucket({ name: "seeded", backend: ledgerHost(), quota: { objects: 3 } });
    await limited.put("new-1", "c");
    await assert.rejects(limited.put("new-2", "d"), { name: "QuotaExceededError" });
    await limited.put("old-1", "replaced");
  });
});
