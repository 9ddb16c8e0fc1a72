import { test } from "node:test";
import assert from "node:assert/strict";
import { actorNamespace } from "../../src/index.ts";
import { useLoader, useTempDir, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dir = useTempDir("mayfly-actors-cf-");

// Cloudflare's "Durable Objects with SQLite" getting-started code, with a few more storage calls.
const CLOUDFLARE_CODE = `
import { DurableObject } from "cloudflare:workers";

export class MyDurableObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(\`CREATE TABLE IF NOT EXISTS artist(
      artistid    INTEGER PRIMARY KEY,
      artistname  TEXT
    );INSERT INTO artist (artistid, artistname) VALUES
      (123, 'Alice'),
      (456, 'Bob'),
      (789, 'Charlie') ON CONFLICT DO NOTHING;\`);
    ctx.blockConcurrencyWhile(async () => {
      this.loaded = (await ctx.storage.get("loads")) ?? 0;
      await ctx.storage.put("loads", this.loaded + 1);
    });
  }

  async sayHello() {
    let result = this.ctx.storage.sql.exec("SELECT 'Hello, World!' as greeting").one();
    return result.greeting;
  }

  async artists() {
    const cursor = this.sql.exec("SELECT artistname FROM artist ORDER BY artistid");
    const names = [];
    for (const row of cursor) names.push(row.artistname);
    return { names, rowsRead: cursor.rowsRead, columns: cursor.columnNames, loaded: this.loaded };
  }

  async rename(id, name) {
    const c = this.sql.exec("UPDATE artist SET artistname = ? WHERE artistid = ?", name, id);
    const returning = this.sql.exec("INSERT INTO artist (artistid, artistname) VALUES (?, ?) RETURNING artistid", id + 1, name + " Jr.");
    this.sql.exec("DELETE FROM artist WHERE artistid = ?", id + 1);
    return { rowsWritten: c.rowsWritten, returning: [returning.one(), returning.rowsWritten], raw: [...this.sql.exec("SELECT artistid, artistname FROM artist WHERE artistid = ?", id).raw()] };
  }

  async failedTransaction() {
    try {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("DELETE FROM artist");
        throw new Error("changed my mind");
      });
    } catch (e) {
      return { error: e.message, count: this.sql.exec("SELECT count(*) AS n FROM artist").one().n };
    }
  }

  async forbidden() {
    const out = {};
    for (const [k, q] of Object.entries({ kv: "SELECT * FROM _cf_KV", attach: "ATTACH DATABASE '/tmp/x.sqlite' AS x", begin: "BEGIN" })) {
      try { this.sql.exec(q); out[k] = "allowed"; } catch (e) { out[k] = e.message; }
    }
    return out;
  }

  async kv() {
    await this.ctx.storage.put({ "a:1": 1, "a:2": { deep: [1, 2] }, "b:1": new Map([["x", 1]]) });
    const list = await this.ctx.storage.list({ prefix: "a:" });
    const many = await this.ctx.storage.get(["a:1", "b:1", "missing"]);
    const deleted = await this.ctx.storage.delete(["a:1", "nope"]);
    return { list: [...list.entries()], many: [...many.keys()], map: many.get("b:1") instanceof Map, deleted, id: this.ctx.id.toString(), name: this.ctx.id.name };
  }

  async wipe() {
    await this.ctx.storage.deleteAll();
    return { keys: (await this.ctx.storage.list()).size, tables: this.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").one().n };
  }

  async fetch(request) {
    return new Response(request.method + " " + new URL(request.url).pathname + " " + (await request.text()));
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.MY_DURABLE_OBJECT.getByName(url.pathname);
    if (url.searchParams.has("forward")) return stub.fetch(request);
    const greeting = await stub.sayHello();
    return new Response(greeting + " " + stub.id.toString().length + " " + stub.id.equals(env.MY_DURABLE_OBJECT.idFromName(url.pathname)));
  },
};
`;

test("code written for Cloudflare Durable Objects (ctx.storage.sql, RPC methods, env namespace) runs unchanged", async () => {
  const code = worker(CLOUDFLARE_CODE);
  const ns = actorNamespace({ loader: ctx.loader, worker: code, className: "MyDurableObject", dataDir: dir, name: "cf" });
  code.env = { MY_DURABLE_OBJECT: ns };
  try {
    const main = ctx.loader.load(code);
    assert.equal(await (await main.getEntrypoint().fetch("http://w/path")).text(), "Hello, World! 64 true");
    const forwarded = await main.getEntrypoint().fetch("http://w/path?forward", { method: "POST", body: "hi" });
    assert.equal(await forwarded.text(), "POST /path hi");

    const stub = ns.getByName("/path");
    const artists = await stub.artists();
    assert.deepEqual(artists.names, ["Alice", "Bob", "Charlie"]);
    assert.equal(artists.rowsRead, 3);
    assert.deepEqual(artists.columns, ["artistname"]);
    assert.equal(artists.loaded, 0, "blockConcurrencyWhile finished before the first call ran");
    assert.deepEqual(await stub.rename(456, "Robert"), { rowsWritten: 1, returning: [{ artistid: 457 }, 1], raw: [[456, "Robert"]] });
    assert.deepEqual(await stub.failedTransaction(), { error: "changed my mind", count: 3 });
    const forbidden = await stub.forbidden();
    assert.notEqual(forbidden.kv, "allowed");
    assert.notEqual(forbidden.attach, "allowed");
    assert.notEqual(forbidden.begin, "allowed");
    const kv = await stub.kv();
    assert.deepEqual(kv.list, [["a:1", 1], ["a:2", { deep: [1, 2] }]]);
    assert.deepEqual(kv.many, ["a:1", "b:1"]);
    assert.equal(kv.map, true);
    assert.equal(kv.deleted, 1);
    assert.equal(kv.id, ns.idFromName("/path").toString());
    assert.equal(kv.name, "/path");
    assert.deepEqual(await stub.wipe(), { keys: 0, tables: 1 }, "deleteAll: every table and key gone (the KV table is made again by list())");
  } finally {
    await ns.close();
  }
});

const TYPED = (line: string) => ({
  compatibilityDate: "2025-06-01", mainModule: "main.ts", typecheck: true,
  modules: { "main.ts": `
    import { DurableObject } from "cloudflare:workers";
    import { Agent } from "mayfly:agents";
    interface Env { COUNTERS: DurableObjectNamespace<Counter> }
    export class Counter extends DurableObject<Env> {
      async add(by: number): Promise<number> {
        const row = this.ctx.storage.sql.exec<{ n: number }>("SELECT ? + 1 AS n", by).one();
        await this.ctx.storage.put("last", row.n);
        ${line}
        return row.n;
      }
    }
    export class Helper extends Agent<Env> {
      async viaChild(): Promise<number> { return this.subAgent(Counter, "c").add(1); }
    }
    export default {
      async fetch(_req: Request, env: Env): Promise<Response> {
        const n: number = await env.COUNTERS.getByName("x").add(2);
        return new Response(String(n));
      },
    };` },
});

test("typecheck: true knows DurableObjectState, ctx.storage.sql, namespaces and mayfly:agents", async () => {
  const good = TYPED("");
  const ns = actorNamespace({ loader: ctx.loader, worker: good, className: "Counter", dataDir: dir, name: "typed" });
  (good as { env?: unknown }).env = { COUNTERS: ns };
  try {
    assert.equal(await (await ctx.loader.load(good).getEntrypoint().fetch("http://w/")).text(), "3");
    const bad = TYPED("const size: string = this.ctx.storage.sql.databaseSize;");
    await assert.rejects(ctx.loader.load(bad).getEntrypoint().fetch("http://w/"), (e: Error & { diagnostics?: { message: string }[] }) =>
      e.name === "TypeCheckError" && /number.*not assignable to type 'string'/.test(e.diagnostics?.[0]?.message ?? ""));
  } finally {
    await ns.close();
  }
});
