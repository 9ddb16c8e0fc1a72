/**
 * D1 on PostgreSQL: the shared D1 suite with `backend`, and what only many hosts can show. A "host"
 * here is its own PostgresBackend (pool) and its own replica directory, as another machine would be.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { postgresBackend, sql, type PostgresBackend, type SqlDatabase, type SqlOptions } from "../../src/index.ts";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";
import { d1Suite } from "./sql.suite.ts";

const found = findPostgres();
const skip = typeof found === "string" ? found : false;
const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-sql-pg-");

let pg: TestPostgres | undefined;
let url = "";
const backends: PostgresBackend[] = [];
const databases: SqlDatabase[] = [];
before(async () => {
  if (skip) return;
  pg = await TestPostgres.start();
  url = await pg.createDatabase("d1");
});
after(async () => {
  for (const d of databases) d.close();
  for (const b of backends) await b.close();
  await pg?.close();
});

/** Host `name`'s view of a database: its own pool (made once per host) and replica directory. */
const hosts = new Map<string, PostgresBackend>();
function onHost(host: string, options: Omit<SqlOptions, "dataDir" | "backend">): SqlDatabase {
  let backend = hosts.get(host);
  if (!backend) {
    backend = postgresBackend({ url, maxConnections: 4 });
    backends.push(backend);
    hosts.set(host, backend);
  }
  const db = sql({ ...options, dataDir: join(dataDir, host), backend });
  databases.push(db);
  return db;
}

d1Suite("SQLite replicas of a log in PostgreSQL", { ctx, make: (options) => onHost("suite", options), dir: dataDir, skip });

describe("D1 on PostgreSQL, many hosts", { skip }, () => {
  const q = (sqlText: string, ...params: unknown[]) => ({ sql: sqlText, params: params as never[] });

  test("host A creates a table and writes, host B reads it; DDL on A, then an insert on B", async () => {
    const a = onHost("a", { name: "shared" }), b = onHost("b", { name: "shared" });
    await a.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    await a.query(q("INSERT INTO notes (body) VALUES (?)", "from a"), "run");
    assert.deepEqual(await b.query(q("SELECT body FROM notes"), "raw"), [["from a"]]);
    await a.exec("ALTER TABLE notes ADD COLUMN author TEXT DEFAULT 'anon'");
    await b.query(q("INSERT INTO notes (body, author) VALUES (?, ?)", "from b", "bea"), "run");
    assert.deepEqual(await a.query(q("SELECT body, author FROM notes ORDER BY id"), "raw"), [["from a", "anon"], ["from b", "bea"]]);
  });

  test("two hosts increment one counter 50 times each, concurrently, through D1: it ends at 100", async () => {
    const a = onHost("a", { name: "counter" }), b = onHost("b", { name: "counter" });
    await a.exec("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)");
    const bump = (db: SqlDatabase) => db.query(q("UPDATE c SET n = n + 1 WHERE id = 1"), "run");
    await Promise.all([...Array.from({ length: 50 }, () => bump(a)), ...Array.from({ length: 50 }, () => bump(b))]);
    assert.deepEqual({ ...(await b.query(q("SELECT n FROM c"), "first") as object) }, { n: 100 });
    assert.deepEqual({ ...(await a.query(q("SELECT n FROM c"), "first") as object) }, { n: 100 });
  });

  test("a batch is one transaction on every host: a failure on B leaves A's view untouched", async () => {
    const a = onHost("a", { name: "batch2" }), b = onHost("b", { name: "batch2" });
    await a.exec("CREATE TABLE t (v INTEGER PRIMARY KEY)");
    await a.batch([q("INSERT INTO t VALUES (1)"), q("INSERT INTO t VALUES (2)")]);
    await assert.rejects(b.batch([q("INSERT INTO t VALUES (3)"), q("INSERT INTO t VALUES (1)")]), /UNIQUE/);
    assert.deepEqual(await a.query(q("SELECT v FROM t ORDER BY v"), "raw"), [[1], [2]]);
  });

  test("a fresh host (empty replica directory) rebuilds after compaction", async () => {
    const a = onHost("a", { name: "compacted", compactEvery: 10 });
    await a.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    for (let i = 0; i < 25; i++) await a.query(q("INSERT INTO t (v) VALUES (?)", `v${i}`), "run");
    const { rows } = await hosts.get("a")!.query("SELECT kind, count(*)::int AS n FROM mayfly_sqlite_log WHERE db = 'd1/compacted' GROUP BY kind ORDER BY kind");
    assert.ok(rows.find((r) => r.kind === "changeset")!.n < 10, JSON.stringify(rows));
    const fresh = onHost("fresh", { name: "compacted" });
    assert.deepEqual({ ...(await fresh.query(q("SELECT count(*) AS n FROM t"), "first") as object) }, { n: 25 });
  });

  test("a worker on host B reads through env.DB what a worker on host A wrote", async () => {
    await runHandler(ctx.loader, `
      await env.DB.exec("CREATE TABLE visits (id INTEGER PRIMARY KEY, path TEXT)");
      await env.DB.prepare("INSERT INTO visits (path) VALUES (?)").bind("/a").run();
      return Response.json(true);`, { DB: onHost("a", { name: "worker" }) });
    const out = await runHandler(ctx.loader, `
      await env.DB.prepare("INSERT INTO visits (path) VALUES (?)").bind("/b").run();
      return Response.json(await env.DB.prepare("SELECT path FROM visits ORDER BY id").raw());`, { DB: onHost("b", { name: "worker" }) });
    assert.deepEqual(out, [["/a"], ["/b"]]);
  });

  // Last: it stops the server under every other host's pool.
  test("PostgreSQL down: a query fails with BackendUnavailableError; once it is back, the data is there", async () => {
    const db = onHost("outage", { name: "outage" });
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'kept')");
    await pg!.stop();
    await assert.rejects(db.query(q("SELECT v FROM t"), "first"), { name: "BackendUnavailableError" });
    await assert.rejects(db.query(q("INSERT INTO t VALUES (2, 'lost')"), "run"), { name: "BackendUnavailableError" });
    await pg!.restart();
    assert.deepEqual(await db.query(q("SELECT v FROM t ORDER BY id"), "raw"), [["kept"]]);
  });
});
