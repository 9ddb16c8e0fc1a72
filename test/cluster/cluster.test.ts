import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import pg from "pg";
import { findPostgres, TestPostgres } from "../postgres.ts";
import type { RunningServer } from "../../src/server/index.ts";
import { deploy, getJson, makeConfigDir, startHost } from "./helpers.ts";

const found = findPostgres();
const skip = typeof found === "string" ? found : false;

describe("cluster mode: three hosts, one PostgreSQL", { skip }, () => {
  let postgres: TestPostgres;
  let url: string;
  let configDir: string;
  let hosts: RunningServer[] = [];

  before(async () => {
    postgres = await TestPostgres.start();
    url = await postgres.createDatabase("cluster");
    configDir = makeConfigDir();
    assert.match(deploy(configDir, url), /4 worker\(s\) in the registry; changed: hello, counter, kv, d1;/);
    hosts = await Promise.all(["a", "b", "c"].map((hostId) => startHost({ postgresUrl: url, hostId })));
  });

  after(async () => {
    await Promise.all(hosts.map((h) => h.close()));
    await postgres?.close();
    rmSync(configDir, { recursive: true, force: true });
  });

  test("a named worker deployed once answers the same on every host", async () => {
    for (const h of hosts) {
      assert.deepEqual(h.workers().sort(), ["counter", "d1", "hello", "kv"]);
      assert.deepEqual(await getJson(`${h.url}/w/hello/x`), { status: 200, body: { hello: "cluster", path: "/x" } });
    }
  });

  test("every host is ready and listed with its address", async () => {
    for (const h of hosts) assert.deepEqual(await getJson(`${h.url}/readyz`), { status: 200, body: { ready: true } });
    const listed = await hosts[0]!.cluster!.hosts();
    assert.deepEqual(listed.map((h) => h.id), ["a", "b", "c"]);
    assert.deepEqual(listed.map((h) => `http://${h.address}`), hosts.map((h) => h.url));
  });

  test("a D1 row written through host A is read through hosts B and C (sql on PostgreSQL)", async () => {
    assert.equal((await getJson(`${hosts[0]!.url}/w/d1/?k=greeting`, { method: "PUT", body: "written on a" })).body, "ok");
    for (const h of hosts.slice(1)) assert.equal((await getJson(`${h.url}/w/d1/?k=greeting`)).body, "written on a");
  });

  test("a KV value written through host A is read through hosts B and C", async () => {
    assert.equal((await getJson(`${hosts[0]!.url}/w/kv/?k=x`, { method: "PUT", body: "from a" })).body, "ok");
    assert.equal((await getJson(`${hosts[1]!.url}/w/kv/?k=x`)).body, "from a");
    assert.equal((await getJson(`${hosts[2]!.url}/w/kv/?k=x`)).body, "from a");
  });

  test("200 concurrent increments of one actor spread across three hosts end at exactly 200", async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => getJson(`${hosts[i % 3]!.url}/w/counter/inc?name=many`)));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(results.map((r) => r.body.n).sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1));
    for (const h of hosts) assert.deepEqual((await getJson(`${h.url}/w/counter/read?name=many`)).body, { n: 200, hits: 200 });
  });

  test("a redeploy reaches every host (LISTEN/NOTIFY)", async () => {
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    writeFileSync(join(configDir, "workers/hello.js"), `export default { fetch() { return Response.json({ hello: "v2" }) } };`);
    assert.match(deploy(configDir, url), /changed: hello;/);
    for (const h of hosts) {
      const deadline = Date.now() + 5_000;
      let body: unknown;
      while (Date.now() < deadline) {
        body = (await getJson(`${h.url}/w/hello/`)).body;
        if ((body as { hello?: string }).hello === "v2") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(body, { hello: "v2" });
    }
  });

  test("a stale owner's late write is refused by its fencing token", async () => {
    // Host A owns the actor: a write through it is appended under A's token.
    assert.deepEqual((await getJson(`${hosts[0]!.url}/w/counter/inc?name=stale`)).body, { n: 1 });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const lease = (await db.query("SELECT name, owner, token FROM mayfly_leases WHERE name LIKE 'actor:counter-COUNTER:%' AND owner LIKE 'a#%'")).rows;
      assert.ok(lease.length >= 1);
      const versions = async () => (await db.query("SELECT count(*)::int AS n, max(version)::int AS v FROM mayfly_sqlite_log WHERE db = ANY($1)", [lease.map((l) => l.name)])).rows[0];
      const before = await versions();
      // Another owner takes the lease while A still believes it holds it (as if A had been paused).
      await db.query("UPDATE mayfly_leases SET owner = 'elsewhere#1', token = token + 1, expires_at = now() + interval '1 hour' WHERE name = ANY($1)", [lease.map((l) => l.name)]);
      const late = await getJson(`${hosts[0]!.url}/w/counter/inc?name=stale`);
      assert.equal(late.status, 500);
      assert.equal(late.body.error, "FencedError", JSON.stringify(late.body));
      assert.deepEqual(await versions(), before, "nothing was appended");
      // Give the actor back to the cluster.
      await db.query("UPDATE mayfly_leases SET expires_at = now() - interval '1 second' WHERE owner = 'elsewhere#1'");
      assert.deepEqual((await getJson(`${hosts[1]!.url}/w/counter/read?name=stale`)).body, { n: 1, hits: 1 });
    } finally {
      await db.end();
    }
  });

  test("a host run with --watch publishes its config's workers for every host", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { startServer } = await import("../../src/server/index.ts");
    const dir = mkdtempSync(join(tmpdir(), "mayfly-watch-"));
    writeFileSync(join(dir, "hello.js"), `export default { fetch() { return Response.json({ hello: "watched" }) } };`);
    const watching = await startServer({
      port: 0, playground: false, baseDir: dir, loader: { executors: 1 }, watch: true, workers: { hello: { main: "hello.js" } },
      cluster: { postgresUrl: url, hostId: "w", secret: "test-cluster-secret-0123456789", leaseMs: 2_000 },
    });
    try {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && hosts[1]!.workers().length !== 1) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(hosts[1]!.workers(), ["hello"], "the registry now has the watched config's one worker");
      assert.deepEqual((await getJson(`${hosts[1]!.url}/w/hello/`)).body, { hello: "watched" });
    } finally {
      await watching.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a host that cannot reach PostgreSQL reports not-ready and refuses /w/ requests with 503", async () => {
    await postgres.stop();
    try {
      assert.equal((await getJson(`${hosts[0]!.url}/readyz`)).status, 503);
      assert.equal((await getJson(`${hosts[0]!.url}/healthz`)).status, 200, "still alive");
      // The store is pinged every second; the /w/ gate follows it.
      await new Promise((r) => setTimeout(r, 1_200));
      const res = await getJson(`${hosts[1]!.url}/w/counter/read?name=many`);
      assert.equal(res.status, 503);
      assert.equal(res.body.error.name, "BackendUnavailableError");
      assert.equal((await getJson(`${hosts[1]!.url}/w/hello/`)).status, 200, "a worker with no shared state still answers");
    } finally {
      await postgres.restart();
    }
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await getJson(`${hosts[0]!.url}/readyz`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, "ready again once PostgreSQL is back");
  });
});
