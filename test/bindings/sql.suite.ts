/**
 * The D1 binding's behaviour, whatever stores its SQLite: run by sql.test.ts (one local file per
 * database) and sql-postgres.test.ts (a replica of a log in PostgreSQL), which pass a factory.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { SqlDatabase, SqlOptions, WorkerLoader } from "../../src/index.ts";
import { runHandler } from "../helpers.ts";

export interface D1SuiteOptions {
  /** The test file's loader (it exists once `before` has run). */
  ctx: { loader: WorkerLoader };
  /** A database by name (and options) in the store under test. */
  make: (options: Omit<SqlOptions, "dataDir" | "backend">) => SqlDatabase;
  /** A scratch directory for files a statement must not be able to create. */
  dir: string;
  skip?: string | false;
}

export function d1Suite(label: string, { ctx, make, dir, skip }: D1SuiteOptions): void {
  const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

  describe(`SQL binding (Cloudflare D1 API): ${label}`, { skip }, () => {
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
        });`, { DB: make({ name: "app" }) });
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
        return Response.json({ before, afterWrite: typeof afterWrite, moved: session.getBookmark() > afterWrite, rows: rows.results, count });`, { DB: make({ name: "sessions" }) });
      assert.deepEqual(out, { before: null, afterWrite: "string", moved: true, rows: [{ v: "one" }], count: 2 });
    });

    test("batch runs as one transaction: a failing statement rolls every one back", async () => {
      const out = await run(`
        await env.DB.exec("CREATE TABLE t (v INTEGER UNIQUE)");
        const ok = await env.DB.batch([env.DB.prepare("INSERT INTO t VALUES (?)").bind(1), env.DB.prepare("INSERT INTO t VALUES (?)").bind(2)]);
        let err;
        try { await env.DB.batch([env.DB.prepare("INSERT INTO t VALUES (3)"), env.DB.prepare("INSERT INTO t VALUES (1)")]) } catch (e) { err = e.message }
        const rows = await env.DB.prepare("SELECT v FROM t ORDER BY v").raw();
        return Response.json({ batchLen: ok.length, err: /UNIQUE/.test(err), rows });`, { DB: make({ name: "batch" }) });
      assert.deepEqual(out, { batchLen: 2, err: true, rows: [[1], [2]] });
    });

    test("ATTACH, VACUUM INTO and writing pragmas are refused: no statement reaches another file", async () => {
      const other = join(dir, "stolen.sqlite");
      const out = await run(`
        const r = [];
        for (const q of ["ATTACH DATABASE '${other}' AS x", "VACUUM INTO '${other}'", "PRAGMA journal_mode = DELETE", "PRAGMA writable_schema = 1"]) {
          try { await env.DB.exec(q); r.push("ran") } catch (e) { r.push("refused") }
        }
        r.push((await env.DB.prepare("PRAGMA table_list").all()).success);
        return Response.json(r);`, { DB: make({ name: "guarded" }) });
      assert.deepEqual(out, ["refused", "refused", "refused", "refused", true]);
      assert.ok(!existsSync(other));
    });

    test("read-only databases refuse writes; databases cannot see each other's tables", async () => {
      const a = make({ name: "a" });
      await a.exec("CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('only in a')");
      const out = await run(`
        const r = [];
        try { await env.RO.exec("CREATE TABLE x (a)"); r.push("wrote") } catch (e) { r.push("refused") }
        try { await env.B.prepare("SELECT * FROM secrets").all(); r.push("read a's table") } catch (e) { r.push("no such table") }
        return Response.json(r);`, { RO: make({ name: "ro", readOnly: true }), B: make({ name: "b" }) });
      assert.deepEqual(out, ["refused", "no such table"]);
      a.close();
    });

    test("a row quota rolls the offending write back with QuotaExceededError", async () => {
      const out = await run(`
        await env.DB.exec("CREATE TABLE t (v)");
        const r = [];
        for (let i = 0; i < 4; i++) { try { await env.DB.prepare("INSERT INTO t VALUES (?)").bind(i).run(); r.push("ok") } catch (e) { r.push(e.name) } }
        r.push((await env.DB.prepare("SELECT count(*) AS n FROM t").first("n")));
        return Response.json(r);`, { DB: make({ name: "quota", quota: { rows: 3 } }) });
      assert.deepEqual(out, ["ok", "ok", "ok", "QuotaExceededError", 3]);
    });

    test("meta fields, first() on a missing column, binds of every D1 type", async () => {
      const out = await run(`
        await env.DB.exec("CREATE TABLE m (id INTEGER PRIMARY KEY, b BLOB, f REAL, s TEXT)");
        const r = await env.DB.prepare("INSERT INTO m (b, f, s) VALUES (?, ?, ?)").bind(new Uint8Array([1, 2, 3]), 1.5, null).run();
        const u = await env.DB.prepare("UPDATE m SET s = 'x'").run();
        const row = await env.DB.prepare("SELECT b, f, s FROM m").first();
        let missing;
        try { await env.DB.prepare("SELECT f FROM m").first("nope") } catch (e) { missing = e.message }
        let undef;
        try { await env.DB.prepare("SELECT ?").bind(undefined).all() } catch (e) { undef = /D1_TYPE_ERROR/.test(e.message) }
        const sel = await env.DB.prepare("SELECT * FROM m").all();
        return Response.json({
          insert: { changes: r.meta.changes, last_row_id: r.meta.last_row_id, changed_db: r.meta.changed_db, rows_written: r.meta.rows_written, sized: r.meta.size_after > 0 },
          update: { changes: u.meta.changes, rows_written: u.meta.rows_written },
          sel: { rows_read: sel.meta.rows_read, changed_db: sel.meta.changed_db, duration: typeof sel.meta.duration },
          row: { b: Array.from(row.b), f: row.f, s: row.s }, missing, undef,
        });`, { DB: make({ name: "meta" }) });
      assert.deepEqual(out, {
        insert: { changes: 1, last_row_id: 1, changed_db: true, rows_written: 1, sized: true },
        update: { changes: 1, rows_written: 1 },
        sel: { rows_read: 1, changed_db: false, duration: "number" },
        row: { b: [1, 2, 3], f: 1.5, s: "x" }, missing: "D1_COLUMN_NOTFOUND: Column not found (nope)", undef: true,
      });
    });

    test("a byte quota refuses the write that would exceed it, and keeps what came before", async () => {
      const db = make({ name: "bytes", quota: { bytes: 64 * 1024 } });
      await db.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB)");
      await db.query({ sql: "INSERT INTO big (v) VALUES (zeroblob(1000))", params: [] }, "run");
      await assert.rejects(db.query({ sql: "INSERT INTO big (v) VALUES (zeroblob(200000))", params: [] }, "run"), { name: "QuotaExceededError" });
      assert.deepEqual({ ...(await db.query({ sql: "SELECT count(*) AS n FROM big", params: [] }, "first") as object) }, { n: 1 });
      db.close();
    });
  });
}
