/**
 * The KV suite on PostgreSQL, plus what only a shared database has: two hosts (two kv() objects, each
 * on its own postgresBackend, as two mayfly processes would be) seeing each other's writes and racing
 * for one quota.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { kv, postgresBackend, type PostgresBackend } from "../../src/index.ts";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { kvSuite } from "./kv.suite.ts";

const found = findPostgres();

describe("KV binding on PostgreSQL", { skip: typeof found === "string" ? found : false }, () => {
  let server: TestPostgres;
  let url: string;
  const backends: PostgresBackend[] = [];
  /** A host: its own connection pool to the shared database. */
  const host = () => {
    const b = postgresBackend({ url });
    backends.push(b);
    return b;
  };
  let a: PostgresBackend;
  let b: PostgresBackend;

  before(async () => {
    server = await TestPostgres.start();
    url = await server.createDatabase("kv");
    a = host();
    b = host();
  });
  after(async () => {
    for (const backend of backends) await backend.close();
    await server?.close();
  });

  kvSuite("PostgreSQL", (name, options) => kv({ name, backend: a, ...options }));

  test("a value written through host A is read, listed and deleted through host B", async () => {
    const onA = kv({ name: "shared", backend: a });
    const onB = kv({ name: "shared", backend: b });
    await onA.put("greeting", "from A", { metadata: { host: "a" } });
    assert.deepEqual(await onB.getWithMetadata("greeting"), { value: "from A", metadata: { host: "a" } });
    assert.deepEqual((await onB.list()).keys, [{ name: "greeting", metadata: { host: "a" } }]);
    await onB.delete("greeting");
    assert.equal(await onA.get("greeting"), null);
    // Same key, another namespace name: untouched.
    await kv({ name: "other", backend: b }).put("greeting", "elsewhere");
    assert.equal(await onA.get("greeting"), null);
  });

  test("two hosts racing for one key quota: together they never pass it", async () => {
    const onA = kv({ name: "race", backend: a, quota: { keys: 10, bytes: 10_000 } });
    const onB = kv({ name: "race", backend: b, quota: { keys: 10, bytes: 10_000 } });
    const writes = Array.from({ length: 30 }, (_, i) => (i % 2 ? onA : onB).put(`k${i}`, "v"));
    const results = await Promise.allSettled(writes);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 10);
    assert.ok(results.every((r) => r.status === "fulfilled" || (r.reason as Error).name === "QuotaExceededError"));
    assert.equal((await onB.list()).keys.length, 10);
  });

  test("two hosts racing for one byte quota with large values: the total stays under it", async () => {
    const quota = { bytes: 100_000 };
    const onA = kv({ name: "race-bytes", backend: a, quota });
    const onB = kv({ name: "race-bytes", backend: b, quota });
    const value = "x".repeat(30_000);
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 ? onA : onB).put(`v${i}`, value)));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    assert.equal((await onA.list()).keys.length, 3);
  });

  test("a worker's env.KV backed by PostgreSQL: what it writes, another host reads", async () => {
    const { WorkerLoader } = await import("../../src/index.ts");
    const { runHandler } = await import("../helpers.ts");
    const loader = new WorkerLoader({ executors: 1 });
    try {
      await loader.ready();
      const out = await runHandler(loader, `
        await env.KV.put("visits", "1", { metadata: { by: "worker" } });
        return Response.json(await env.KV.getWithMetadata("visits"));`, { KV: kv({ name: "from-worker", backend: a }) });
      assert.deepEqual(out, { value: "1", metadata: { by: "worker" } });
      assert.equal(await kv({ name: "from-worker", backend: b }).get("visits"), "1");
    } finally {
      await loader.close();
    }
  });

  test("a host whose database is down gets BackendUnavailableError", async () => {
    const down = postgresBackend({ url: "postgres://mayfly@127.0.0.1:1/none", connectionTimeoutMs: 1000 });
    try {
      await assert.rejects(kv({ name: "x", backend: down }).get("k"), { name: "BackendUnavailableError" });
    } finally {
      await down.close();
    }
  });
});
