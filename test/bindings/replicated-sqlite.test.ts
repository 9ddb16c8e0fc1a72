/**
 * Replicated SQLite (src/bindings/storage/replicated-sqlite.ts) on a real PostgreSQL: hosts are
 * separate backends (own pools) with separate replica directories, as separate machines would be.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { postgresBackend, type PostgresBackend } from "../../src/bindings/storage/postgres.ts";
import { FencedError, LEASES_DDL } from "../../src/bindings/storage/fencing.ts";
import { DatabaseSync } from "node:sqlite";
import { appendEntries, entriesSince, headVersion, materialize, ReplicatedSqlite, SqliteReplica } from "../../src/bindings/storage/replicated-sqlite.ts";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { useTempDir } from "../helpers.ts";

const found = findPostgres();
/** The log's entry kinds, all of them (entriesSince starts at the newest image). */
const kinds = async (backend: PostgresBackend, id: string) =>
  (await backend.query("SELECT kind FROM mayfly_sqlite_log WHERE db = $1 ORDER BY version", [id])).rows.map((r) => r.kind);
const skip = typeof found === "string" ? found : false;
const dir = useTempDir("mayfly-replica-");

describe("replicated SQLite", { skip }, () => {
  let pg: TestPostgres;
  let url: string;
  const backends: PostgresBackend[] = [];
  const open: ReplicatedSqlite[] = [];
  before(async () => {
    pg = await TestPostgres.start();
    url = await pg.createDatabase("replica");
  });
  after(async () => {
    for (const r of open) r.close();
    for (const b of backends) await b.close();
    await pg?.close();
  });

  /** A host: its own pool and its own replica directory. */
  const host = (name: string, id: string, extra: { compactEvery?: number; maxAttempts?: number } = {}) => {
    const backend = postgresBackend({ url, maxConnections: 4 });
    backends.push(backend);
    const r = new ReplicatedSqlite(backend, { id, dir: join(dir, name), ...extra });
    open.push(r);
    return r;
  };

  test("host A writes (DDL as an image, rows as changesets), host B reads them", async () => {
    const a = host("a1", "db1"), b = host("b1", "db1");
    await a.write((db) => db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"));
    await a.write((db) => db.prepare("INSERT INTO kv VALUES (?, ?)").run("x", "1"));
    await a.write((db) => db.prepare("UPDATE kv SET v = ? WHERE k = ?").run("2", "x"));
    const rows = await b.read((db) => db.prepare("SELECT k, v FROM kv").all().map((r) => ({ ...r })));
    assert.deepEqual(rows, [{ k: "x", v: "2" }]);
    assert.deepEqual(await kinds(a.backend, "db1"), ["image", "changeset", "changeset"]);
    assert.equal(b.version, 3);
  });

  test("DDL on A, then an insert on B; a table without a PRIMARY KEY replicates by image", async () => {
    const a = host("a2", "db2"), b = host("b2", "db2");
    await a.write((db) => db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE loose (v)"));
    await b.write((db) => db.prepare("INSERT INTO t (v) VALUES (?)").run("from b"));
    await b.write((db) => db.prepare("INSERT INTO loose VALUES (?)").run("no key"));
    await a.write((db) => db.exec("ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7"));
    assert.deepEqual(await a.read((db) => db.prepare("SELECT * FROM t").all().map((r) => ({ ...r }))), [{ id: 1, v: "from b", w: 7 }]);
    assert.deepEqual(await a.read((db) => db.prepare("SELECT * FROM loose").all().map((r) => ({ ...r }))), [{ v: "no key" }]);
    assert.deepEqual(await kinds(a.backend, "db2"), ["image", "changeset", "image", "image"]);
  });

  test("two hosts increment one counter 50 times each, concurrently: it ends at 100", async () => {
    // Correctness, not fairness: under a loaded machine one host can lose more than the default 20
    // races in a row to the other's queue of 50 (that is a ReplicaConflictError, documented).
    const a = host("a3", "counter", { maxAttempts: 1_000 }), b = host("b3", "counter", { maxAttempts: 1_000 });
    await a.write((db) => db.exec("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)"));
    const bump = (r: ReplicatedSqlite) => r.write((db) => db.prepare("UPDATE c SET n = n + 1 WHERE id = 1").run());
    await Promise.all([...Array.from({ length: 50 }, () => bump(a)), ...Array.from({ length: 50 }, () => bump(b))]);
    for (const r of [a, b]) assert.equal(await r.read((db) => (db.prepare("SELECT n FROM c").get() as { n: number }).n), 100);
    // 1 + 100 versions, and one image appended by compaction (every 100 changesets by default).
    assert.equal(await headVersion(a.backend, "counter"), 102);
  });

  test("a failing write leaves nothing behind, locally or in the log", async () => {
    const a = host("a4", "atomic");
    await a.write((db) => db.exec("CREATE TABLE u (v INTEGER PRIMARY KEY)"));
    await assert.rejects(a.write((db) => {
      db.prepare("INSERT INTO u VALUES (1)").run();
      db.prepare("INSERT INTO u VALUES (1)").run();
    }), /UNIQUE/);
    await assert.rejects(a.write((db) => db.exec("COMMIT")), /not authorized/);
    assert.equal(await a.read((db) => (db.prepare("SELECT count(*) AS n FROM u").get() as { n: number }).n), 0);
    assert.equal(await headVersion(a.backend, "atomic"), 1);
  });

  test("compaction: the log shrinks to one image, and a fresh host rebuilds from it", async () => {
    const a = host("a5", "compact", { compactEvery: 5 }), behind = host("b5", "compact");
    await a.write((db) => db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"));
    await a.write((db) => db.prepare("INSERT INTO t (v) VALUES (?)").run("first"));
    assert.equal(await behind.read((db) => (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n), 1);
    for (let i = 0; i < 11; i++) await a.write((db) => db.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`));
    const log = await entriesSince(a.backend, "compact", 0);
    assert.equal(log[0]!.kind, "image");
    assert.ok(log.length <= 5, `log has ${log.length} entries`);
    const path = join(dir, "fresh", "compact.sqlite");
    const version = await materialize(a.backend, "compact", path);
    assert.equal(version, a.version);
    const fresh = host("fresh2", "compact");
    assert.equal(await fresh.read((db) => (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n), 12);
    assert.ok(existsSync(path));
    rmSync(join(dir, "fresh"), { recursive: true });
    // A host that fell behind before the compaction catches up from the image.
    assert.equal(await behind.read((db) => (db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n), 12);
    assert.equal(behind.version, a.version);
  });

  test("fencing: a write with a stale token is refused and nothing is appended", async () => {
    const a = host("a6", "actor");
    await a.backend.migrate("leases", LEASES_DDL);
    await a.backend.query("INSERT INTO mayfly_leases VALUES ('actor-1', 'host-a', 2, now() + interval '1 minute')");
    await a.write((db) => db.exec("CREATE TABLE s (id INTEGER PRIMARY KEY, v)"), { fence: { lease: "actor-1", token: 2n } });
    await assert.rejects(a.write((db) => db.prepare("INSERT INTO s VALUES (1, 'stale')").run(), { fence: { lease: "actor-1", token: 1n } }), FencedError);
    assert.equal(await headVersion(a.backend, "actor"), 1);
    assert.equal(await a.read((db) => (db.prepare("SELECT count(*) AS n FROM s").get() as { n: number }).n), 0);
  });

  test("the two halves apart, as an actor uses them: capture (keep) in one place, append under a fence in another", async () => {
    const backend = host("h7", "unused").backend;
    await backend.migrate("leases", LEASES_DDL);
    await backend.query("INSERT INTO mayfly_leases VALUES ('actor-2', 'host-a', 5, now() + interval '1 minute')");
    const replica = new SqliteReplica(join(dir, "executor", "a.sqlite"));
    const c1 = replica.capture((db) => db.exec("CREATE TABLE s (k TEXT PRIMARY KEY, v)"), { keep: true });
    const c2 = replica.capture((db) => db.prepare("INSERT INTO s VALUES ('a', 1)").run(), { keep: true });
    assert.equal(replica.version, 2); // kept: later reads see the writes before the append confirms them
    assert.deepEqual([c1.entry!.kind, c2.entry!.kind], ["image", "changeset"]);
    assert.equal(await appendEntries(backend, "actor/2", 0, [c1.entry!, c2.entry!], { lease: "actor-2", token: 5n }), 2);
    const copy = join(dir, "other", "a.sqlite");
    assert.equal(await materialize(backend, "actor/2", copy), 2);
    const db = new DatabaseSync(copy);
    assert.deepEqual(db.prepare("SELECT k, v FROM s").all().map((r) => ({ ...r })), [{ k: "a", v: 1 }]);
    db.close();
    const c3 = replica.capture((d) => d.prepare("INSERT INTO s VALUES ('b', 2)").run(), { keep: true });
    await assert.rejects(appendEntries(backend, "actor/2", 2, [c3.entry!], { lease: "actor-2", token: 4n }), FencedError);
    assert.equal(await headVersion(backend, "actor/2"), 2);
    replica.close();
  });

  test("a replica that diverged (its file changed behind its back) rebuilds itself from the log", async () => {
    const a = host("a8", "diverge"), b = host("b8", "diverge");
    await a.write((db) => db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"));
    await b.read(() => null);
    b.close();
    const tamper = new DatabaseSync(b.path);
    tamper.exec("INSERT INTO t VALUES (1, 'stray')");
    tamper.close();
    const again = host("b8", "diverge");
    await a.write((db) => db.prepare("INSERT INTO t VALUES (1, 'from a')").run());
    assert.deepEqual(await again.read((db) => db.prepare("SELECT v FROM t").all().map((r) => ({ ...r }))), [{ v: "from a" }]);
  });
});
