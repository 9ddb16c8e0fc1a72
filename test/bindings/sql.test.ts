import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sql } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-sql-");

const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

describe("SQL binding (Cloudflare D1 API)", () => {
  test("exec, prepare/bind, all/first/run/raw, as D1 returns them", async () => {
    const out = await run(`
      await env.DB.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, admin INTEGER); CREATE INDEX byname ON users(name)");
      const ins = env.DB.prepare("INSERT INTO users (name, admin) VALUES (?, ?)");
      const r1 = await ins.bind("ada", true).run();
      await ins.bind("bob", false).run();
      const all = await env.DB.prepare("SELECT id, name, admin FROM users ORDER BY id").all();
      return Response.json({
        run: { success: r1.success, changes: r1.meta.changes, last_row_id: r1.meta.last_row_id },
        all: all.results, allOk: all.success,
        first: await env.DB.prepare("SELECT * FROM users WHERE name = ?").bind("bob").first(),
        firstCol: await env.DB.prepare("SELECT name FROM users WHERE id = ?").bind(1).first("name"),
        none: await env.DB.prepare("SELECT * FROM users WHERE id = 99").first(),
        raw: await env.DB.prepare("SELECT id, name FROM users ORDER BY id").raw(),
        rawCols: await env.DB.prepare("SELECT id, name FROM users ORDER BY id").raw({ columnNames: true }),
      });`, { DB: sql({ name: "app", dataDir }) });
    assert.deepEqual(out, {
      run: { success: true, changes: 1, last_row_id: 1 },
      all: [{ id: 1, name: "ada", admin: 1 }, { id: 2, name: "bob", admin: 0 }], allOk: true,
      first: { id: 2, name: "bob", admin: 0 }, firstCol: "ada", none: null,
      raw: [[1, "ada"], [2, "bob"]], rawCols: [["id", "name"], [1, "ada"], [2, "bob"]],
    });
  });

  test("withSession: the same database, with a bookmark that moves as the session writes", async () => {
    const out = await run(`
      await env.DB.exec("CREATE TABLE s (v TEXT)");
      const session = env.DB.withSession("first-unconstrained");
      const before = session.getBookmark();
      await session.prepare("INSERT INTO s VALUES (?)").bind("one").run();
      const afterWrite = session.getBookmark();
      const rows = await session.prepare("SELECT v FROM s").all();
      await session.batch([session.prepare("INSERT INTO s VALUES (?)").bind("two")]);
      const later = env.DB.withSession(session.getBookmark());
      const count = await later.prepare("SELECT count(*) AS n FROM s").first("n");
      return Response.json({ before, afterWrite: typeof afterWrite, moved: session.getBookmark() > afterWrite, rows: rows.results, count });`, { DB: sql({ name: "sessions", dataDir }) });
    assert.deepEqual(out, { before: null, afterWrite: "string", moved: true, rows: [{ v: "one" }], count: 2 });
  });

  test("batch runs as one transaction: a failing statement rolls every one back", async () => {
    const out = await run(`
      await env.DB.exec("CREATE TABLE t (v INTEGER UNIQUE)");
      const ok = await env.DB.batch([env.DB.prepare("INSERT INTO t VALUES (?)").bind(1), env.DB.prepare("INSERT INTO t VALUES (?)").bind(2)]);
      let err;
      try { await env.DB.batch([env.DB.prepare("INSERT INTO t VALUES (3)"), env.DB.prepare("INSERT INTO t VALUES (1)")]) } catch (e) { err = e.message }
      const rows = await env.DB.prepare("SELECT v FROM t ORDER BY v").raw();
      return Response.json({ batchLen: ok.length, err: /UNIQUE/.test(err), rows });`, { DB: sql({ name: "batch", dataDir }) });
    assert.deepEqual(out, { batchLen: 2, err: true, rows: [[1], [2]] });
  });

  test("ATTACH, VACUUM INTO and writing pragmas are refused: no statement reaches another file", async () => {
    const other = join(dataDir, "stolen.sqlite");
    const out = await run(`
      const r = [];
      for (const q of ["ATTACH DATABASE '${other}' AS x", "VACUUM INTO '${other}'", "PRAGMA journal_mode = DELETE", "PRAGMA writable_schema = 1"]) {
        try { await env.DB.exec(q); r.push("ran") } catch (e) { r.push("refused") }
      }
      r.push((await env.DB.prepare("PRAGMA table_list").all()).success);
      return Response.json(r);`, { DB: sql({ name: "guarded", dataDir }) });
    assert.deepEqual(out, ["refused", "refused", "refused", "refused", true]);
    assert.ok(!existsSync(other));
  });

  test("read-only databases refuse writes; databases cannot see each other's tables", async () => {
    const a = sql({ name: "a", dataDir });
    await a.exec("CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('only in a')");
    const out = await run(`
      const r = [];
      try { await env.RO.exec("CREATE TABLE x (a)"); r.push("wrote") } catch (e) { r.push("refused") }
      try { await env.B.prepare("SELECT * FROM secrets").all(); r.push("read a's table") } catch (e) { r.push("no such table") }
      return Response.json(r);`, { RO: sql({ name: "ro", dataDir, readOnly: true }), B: sql({ name: "b", dataDir }) });
    assert.deepEqual(out, ["refused", "no such table"]);
    a.close();
  });

  test("a row quota rolls the offending write back with QuotaExceededError", async () => {
    const out = await run(`
      await env.DB.exec("CREATE TABLE t (v)");
      const r = [];
      for (let i = 0; i < 4; i++) { try { await env.DB.prepare("INSERT INTO t VALUES (?)").bind(i).run(); r.push("ok") } catch (e) { r.push(e.name) } }
      r.push((await env.DB.prepare("SELECT count(*) AS n FROM t").first("n")));
      return Response.json(r);`, { DB: sql({ name: "quota", dataDir, quota: { rows: 3 } }) });
    assert.deepEqual(out, ["ok", "ok", "ok", "QuotaExceededError", 3]);
  });
});
