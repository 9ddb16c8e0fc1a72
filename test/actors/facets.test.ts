import { test } from "node:test";
import assert from "node:assert/strict";
import { actorNamespace, kv, sql } from "../../src/index.ts";
import { useLoader, useTempDir, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dir = useTempDir("mayfly-actors-facets-");

const CHILD = {
  compatibilityDate: "2025-06-01", mainModule: "child.js",
  modules: { "child.js": `
    import { DurableObject } from "cloudflare:workers";
    export class App extends DurableObject {
      constructor(ctx, env) { super(ctx, env); ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS secrets (v TEXT)"); }
      write(v) { this.ctx.storage.sql.exec("INSERT INTO secrets VALUES (?)", v); }
      secrets() { return this.ctx.storage.sql.exec("SELECT v FROM secrets").toArray().map((r) => r.v); }
      tables() { return this.ctx.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((r) => r.name); }
      readParent() { try { return this.ctx.storage.sql.exec("SELECT * FROM parent_only").toArray(); } catch (e) { return "error: " + e.message; } }
      envKeys() { return Object.keys(this.env).sort(); }
      async useKv() { return await this.env.KV.get("k"); }
      async useDb() { try { return await this.env.DB.prepare("SELECT 1 AS x").first("x"); } catch (e) { return "error: " + e.name; } }
    }` },
};

const PARENT = `
import { DurableObject } from "cloudflare:workers";
const CHILD = ${JSON.stringify(CHILD)};
export class Host extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS parent_only (v TEXT)");
  }
  app() { return this.ctx.facets.get("app", () => ({ code: CHILD, className: "App", env: { KV: this.env.KV, GREETING: "hi" } })); }
  child(method, ...args) { return this.app()[method](...args); }
  tables() { return this.ctx.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((r) => r.name); }
  readChild() { try { return this.ctx.storage.sql.exec("SELECT * FROM secrets").toArray(); } catch (e) { return "error: " + e.message; } }
  async forged() {
    // A binding id written by hand, naming the actor's own control channel: refused by the host.
    const stub = this.ctx.facets.get("forged", () => ({ code: CHILD, className: "App", env: { X: { __mayflyParentCap: 3 } } }));
    try { return await stub.envKeys(); } catch (e) { return "error: " + e.message; }
  }
  async remove() { await this.ctx.facets.delete("app"); return this.ctx.facets.list(); }
  async many() {
    for (let i = 0; ; i++) {
      try { await this.ctx.facets.get("f" + i, () => ({ code: CHILD, className: "App" })).envKeys(); }
      catch (e) { for (let j = 0; j < i; j++) await this.ctx.facets.delete("f" + j); return i + " " + e.name + ": " + e.message; }
    }
  }
}`;

test("a facet has its own SQLite, unreachable from its parent's SQL and vice versa, and only the bindings its parent passed", async () => {
  const store = kv({ name: "facet-kv", dataDir: dir });
  await store.put("k", "from the parent's KV");
  const ns = actorNamespace({
    loader: ctx.loader, className: "Host", dataDir: dir, name: "facets",
    worker: worker(PARENT, { env: { KV: store, DB: sql({ name: "facet-db", dataDir: dir }) } }),
  });
  try {
    const host = ns.getByName("h");
    await host.child("write", "child secret");
    assert.deepEqual(await host.child("secrets"), ["child secret"]);
    assert.deepEqual(await host.tables(), ["parent_only"]);
    assert.deepEqual(await host.child("tables"), ["secrets"]);
    assert.match(await host.readChild(), /^error: no such table: secrets/);
    assert.match(await host.child("readParent"), /^error: no such table: parent_only/);

    assert.deepEqual(await host.child("envKeys"), ["GREETING", "KV"]);
    assert.equal(await host.child("useKv"), "from the parent's KV");
    assert.equal(await host.child("useDb"), "error: TypeError", "DB was not passed: the facet has no such binding");
    assert.match(await host.forged(), /not a binding of this actor/);

    assert.match(await host.many(), /^31 RangeError: An actor may run at most 32 facets at once/, "32 running, counting app");

    // The facet's data outlives its isolate: a new parent isolate finds it again.
    ns.abort(ns.idFromName("h"));
    assert.deepEqual(await ns.getByName("h").child("secrets"), ["child secret"]);
    assert.deepEqual(await ns.getByName("h").remove(), []);
    assert.deepEqual(await ns.getByName("h").child("secrets"), [], "deleted with its storage");
  } finally {
    await ns.close();
    store.close();
  }
});

const AGENTS = `
import { Agent } from "mayfly:agents";
export class Chat extends Agent {
  topic() { return "llamas"; }
  ask(name) { return this.subAgent(Researcher, name).research(); }
  remember(name, v) { return this.subAgent(Researcher, name).remember(v); }
  recall(name) { return this.subAgent(Researcher, name).recall(); }
  async slow(name) {
    try { return await this.subAgent(Researcher, name).slow(); } catch (e) { return e.name + ": " + e.message; }
  }
  abort(name) { this.abortSubAgent(name, "stop that"); }
  list() { return this.listSubAgents(); }
  remove(name) { return this.deleteSubAgent(name); }
  net() { return fetch("https://example.com/").then((r) => r.text()); }
  childNet(name) { return this.subAgent(Researcher, name).net(); }
  twin(name) { return this.subAgent(name).topic(); }
}
export class Researcher extends Agent {
  async research() { return this.ctx.id.name + " researched " + (await this.parentAgent().topic()); }
  async remember(v) { await this.ctx.storage.put("v", v); }
  recall() { return this.ctx.storage.get("v"); }
  async slow() { await new Promise((r) => setTimeout(r, 10_000)); return "finished"; }
  async net() { try { return await (await fetch("https://example.com/")).text(); } catch (e) { return "error: " + e.message; } }
}`;

test("sub-agents: RPC both ways, their own storage, listing, abort ends an in-flight call with ActorAbortedError, delete", async () => {
  const ns = actorNamespace({ loader: ctx.loader, className: "Chat", dataDir: dir, name: "agents", worker: worker(AGENTS, { globalOutbound: { fetch: () => new Response("the parent's network") } }) });
  try {
    const chat = ns.getByName("chat");
    assert.equal(await chat.ask("r1"), "r1 researched llamas");
    await chat.remember("r1", "one");
    await chat.remember("r2", "two");
    assert.equal(await chat.recall("r1"), "one");
    assert.equal(await chat.recall("r2"), "two");
    assert.deepEqual(await chat.list(), ["r1", "r2"]);
    assert.equal(await chat.twin("t1"), "llamas", "subAgent(name) runs the agent's own class");
    await chat.remove("t1");
    assert.equal(await chat.net(), "the parent's network");
    assert.match(await chat.childNet("r1"), /^error: .*not permitted to access the internet/i, "a sub-agent does not inherit globalOutbound");

    const started = Date.now();
    const pending = chat.slow("r1");
    await new Promise((r) => setTimeout(r, 300));
    await chat.abort("r1");
    assert.equal(await pending, "ActorAbortedError: stop that");
    assert.ok(Date.now() - started < 5_000, "ended at once, not when the call would have finished");
    assert.equal(await chat.recall("r1"), "one", "an aborted sub-agent keeps its storage and starts again");

    await chat.remove("r2");
    assert.deepEqual(await chat.list(), ["r1"]);
    assert.equal(await chat.recall("r2"), undefined);
  } finally {
    await ns.close();
  }
});
