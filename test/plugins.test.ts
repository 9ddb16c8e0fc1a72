import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import {
  ManifestGrantError, PluginHost, PluginNotFoundError, PluginStateError, functionTools, type PluginGrants, type PluginManifestInput,
} from "../src/index.ts";
import { responseJson, useLoader, useTempDir } from "./helpers.ts";

/**
 * The plugin host through its public API. Network tests run against two local listeners that count
 * connections: one stands for the origin a plugin may reach, the other for one it may not.
 */
const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-plugins-");

interface Listener { server: Server; port: number; connections: number; seen: { url: string; authorization?: string }[] }
async function listen(): Promise<Listener> {
  const l: Listener = { server: undefined as unknown as Server, port: 0, connections: 0, seen: [] };
  l.server = createServer((req, res) => {
    l.seen.push({ url: req.url!, authorization: req.headers.authorization });
    res.end(JSON.stringify({ ok: true, url: req.url }));
  });
  l.server.on("connection", () => l.connections++);
  await new Promise<void>((r) => l.server.listen(0, "127.0.0.1", () => r()));
  l.port = (l.server.address() as AddressInfo).port;
  return l;
}
let api: Listener;
let other: Listener;
before(async () => {
  api = await listen();
  other = await listen();
});
after(() => Promise.all([api, other].map((l) => new Promise<void>((r) => l.server.close(() => r())))));

/** Every *.example.test name is the local listeners' address, as a private resolver would answer. */
const lookup = async (host: string) => (host.endsWith(".example.test") ? [{ address: "127.0.0.1", family: 4 as const }] : []);

const SECRET = "s3cret-value-never-in-the-isolate";
let deletes = 0;
const tools = functionTools("content", {
  get: { description: "A post", inputSchema: z.object({ id: z.string() }), execute: ({ id }) => ({ id, title: `post ${id}` }) },
  delete: { description: "Delete a post", inputSchema: z.object({ id: z.string() }), execute: () => void deletes++ },
});

function grants(): PluginGrants {
  return {
    network: [{ origin: `http://*.example.test:${api.port}`, allowPrivateAddresses: true }, { origin: `http://*.example.test:${other.port}`, allowPrivateAddresses: true }],
    workspace: "read-write", kv: true, sql: true, blob: true, tools: ["content.*"], secrets: { API_TOKEN: SECRET }, limits: { cpuMs: 1_000, wallMs: 10_000 },
  };
}

let host: PluginHost;
before(() => {
  host = new PluginHost({
    loader: ctx.loader, dataDir, grants, tools, egress: { lookup }, hookTimeoutMs: 2_000,
    hooks: { "auth:provider": { exclusive: true } },
  });
});
after(() => host.close());

function manifest(name: string, extra: Partial<PluginManifestInput> = {}): PluginManifestInput {
  return { name, version: "1.0.0", publisher: "Test", routes: ["/*"], ...extra };
}

/** A plugin whose route runs `body` (with request, env) and answers its value as JSON. */
function routePlugin(body: string): string {
  return `export default { async fetch(request, env) { const out = await (async () => { ${body} })(); return Response.json(out ?? null); } };`;
}

async function call(name: string, path = "/"): Promise<any> {
  return responseJson(await host.fetch(name, new Request(`http://plugin${path}`)));
}

describe("capabilities come from the manifest only", () => {
  test("a plugin without network cannot fetch: the gateway has no rule, nothing reaches the listener, the attempt is audited", async () => {
    host.install({ manifest: manifest("offline"), code: routePlugin(`
      try { await fetch("http://api.example.test:${api.port}/x"); return "fetched"; } catch (e) { return { name: e.name, message: e.message }; }`) });
    const before = api.connections;
    const out = await call("offline");
    assert.equal(out.name, "EgressDeniedError");
    assert.equal(api.connections, before);
    assert.deepEqual(host.audit({ plugin: "offline", capability: "network" }).map((e) => [e.target, e.allowed]), [[`GET http://api.example.test:${api.port}/x`, false]]);
  });

  test("with network for one origin it reaches only that origin, and its secret reaches the origin while the code never sees it", async () => {
    const origin = `http://api.example.test:${api.port}`;
    host.install({
      manifest: manifest("online", { permissions: { network: [origin], secrets: [{ name: "API_TOKEN", origin, header: "authorization", prefix: "Bearer " }] } }),
      code: routePlugin(`
        const ok = await (await fetch("${origin}/data")).json();
        let refused;
        try { await fetch("http://other.example.test:${other.port}/steal"); } catch (e) { refused = { name: e.name, message: e.message }; }
        return { ok, refused, env: JSON.stringify(env), keys: Object.keys(env) };`),
    });
    const before = { api: api.connections, other: other.connections };
    const out = await call("online");
    assert.deepEqual(out.ok, { ok: true, url: "/data" });
    assert.equal(out.refused.name, "EgressDeniedError");
    assert.match(out.refused.message, /allow-list/);
    assert.equal(other.connections, before.other, "the origin not in the manifest received nothing");
    assert.equal(api.connections, before.api + 1);
    assert.equal(api.seen.at(-1)!.authorization, `Bearer ${SECRET}`);
    assert.deepEqual(out.keys, []);
    assert.ok(!JSON.stringify(out).includes(SECRET), "the secret never entered the isolate");
    const audit = host.audit({ plugin: "online", capability: "network" });
    assert.deepEqual(audit.map((e) => [e.target, e.allowed]), [[`GET ${origin}/data`, true], [`GET http://other.example.test:${other.port}/steal`, false]]);
    assert.match(audit[1]!.reason!, /allow-list/);
  });

  test("a workspace: \"read\" plugin reads its workspace and cannot write it", async () => {
    host.install({ manifest: manifest("reader", { permissions: { workspace: "read" } }), code: routePlugin(`
      const text = await env.WORKSPACE.readFile("seed.txt", "utf8");
      let write;
      try { await env.WORKSPACE.writeFile("new.txt", "x"); write = "written"; } catch (e) { write = e.message; }
      return { text, write };`) });
    await host.workspace("reader").writeFile("seed.txt", "seeded by the host");
    const out = await call("reader");
    assert.equal(out.text, "seeded by the host");
    assert.match(out.write, /^EACCES/);
    await assert.rejects(host.workspace("reader").stat("new.txt"), /ENOENT/);
    const audit = host.audit({ plugin: "reader" });
    assert.deepEqual(audit.map((e) => [e.capability, e.target, e.allowed]), [
      ["workspace", `WORKSPACE.readFile("seed.txt")`, true],
      ["workspace", `WORKSPACE.writeFile("new.txt")`, false],
    ]);
  });

  test("a plugin calling a tool its manifest does not name gets PluginToolError; the tool is not called", async () => {
    host.install({ manifest: manifest("tooler", { permissions: { tools: ["content.get"] } }), code: routePlugin(`
      const post = await env.TOOLS.invoke("content.get", { id: "7" });
      let del;
      try { await env.TOOLS.invoke("content.delete", { id: "7" }); del = "deleted"; } catch (e) { del = { name: e.name, message: e.message }; }
      return { post, del };`) });
    const out = await call("tooler");
    assert.deepEqual(out.post, { id: "7", title: "post 7" });
    assert.equal(out.del.name, "PluginToolError");
    assert.match(out.del.message, /may not call the tool content\.delete/);
    assert.equal(deletes, 0);
    assert.deepEqual(host.audit({ plugin: "tooler" }).map((e) => [e.target, e.allowed]), [["content.get", true], ["content.delete", false]]);
  });

  test("a manifest asking for what the host does not grant is refused at install, naming the permission; nothing is stored", () => {
    const cases: [Partial<PluginManifestInput>, string][] = [
      [{ permissions: { network: ["https://elsewhere.test"] } }, "network"],
      [{ permissions: { tools: ["content.purge"] } }, "tools"],
      [{ permissions: { network: [`http://api.example.test:${api.port}`], secrets: [{ name: "NOPE", origin: `http://api.example.test:${api.port}`, header: "x-key" }] } }, "secrets"],
      [{ limits: { cpuMs: 5_000 } }, "limits.cpuMs"],
    ];
    for (const [extra, permission] of cases) {
      assert.throws(() => host.install({ manifest: manifest("greedy", extra), code: routePlugin("return 1") }),
        (e: unknown) => e instanceof ManifestGrantError && e.permission === permission);
    }
    assert.equal(host.get("greedy"), undefined);
  });

  test("two plugins with the same binding names never share data", async () => {
    const code = routePlugin(`
      const mine = new URL(request.url).searchParams.get("put");
      if (mine) await env.CACHE.put("k", mine);
      return await env.CACHE.get("k");`);
    host.install({ manifest: manifest("store-a", { permissions: { kv: ["CACHE"] } }), code });
    host.install({ manifest: manifest("store-b", { permissions: { kv: ["CACHE"] } }), code });
    assert.equal(await call("store-a", "/?put=a"), "a");
    assert.equal(await call("store-b"), null);
    assert.equal(await call("store-b", "/?put=b"), "b");
    assert.equal(await call("store-a"), "a");
  });
});

describe("updates and consent", () => {
  const origin = () => `http://api.example.test:${api.port}`;
  const code = (v: string) => routePlugin(`return "${v}"`);

  test("an update that widens permissions waits for approval; one that does not applies at once", async () => {
    host.install({ manifest: manifest("updater", { permissions: { network: [{ origin: origin(), methods: ["GET"] }] } }), code: code("v1") });
    const widened = host.update({ manifest: manifest("updater", { version: "1.1.0", permissions: { network: [{ origin: origin(), methods: ["GET", "POST"] }] } }), code: code("v1.1") });
    assert.equal(widened.status, "pending-approval");
    assert.deepEqual(widened.diff.changes.map((c) => [c.kind, c.permission]), [["widened", "network"]]);
    assert.equal(host.get("updater")!.version, "1.0.0");
    assert.equal(host.get("updater")!.pending!.version, "1.1.0");
    assert.equal(await call("updater"), "v1", "the old version serves until approval");
    assert.throws(() => host.approve("updater", "9.9.9"), PluginNotFoundError);
    assert.equal(host.approve("updater", "1.1.0").version, "1.1.0");
    assert.equal(host.get("updater")!.pending, undefined);
    assert.equal(await call("updater"), "v1.1");
    const narrowed = host.update({ manifest: manifest("updater", { version: "1.2.0", permissions: { network: [{ origin: origin(), methods: ["GET"] }] } }), code: code("v1.2") });
    assert.equal(narrowed.status, "updated");
    assert.equal(await call("updater"), "v1.2");
    assert.throws(() => host.update({ manifest: manifest("updater", { version: "1.0.5" }), code: code("old") }), PluginStateError);
    assert.equal(host.update({ manifest: manifest("updater", { version: "1.3.0", permissions: { network: [origin()], kv: ["MORE"] } }), code: code("v1.3") }).status, "pending-approval");
    host.reject("updater");
    assert.equal(host.get("updater")!.pending, undefined);
    assert.throws(() => host.approve("updater", "1.3.0"), PluginNotFoundError);
    assert.equal(await call("updater"), "v1.2");
  });

  test("state is kept in SQLite: a new host on the same dataDir has the plugins, their pending updates and audit", async () => {
    host.update({ manifest: manifest("updater", { version: "2.0.0", permissions: { network: [origin()] } }), code: code("v2") });
    const again = new PluginHost({ loader: ctx.loader, dataDir, grants, tools, egress: { lookup } });
    try {
      assert.equal(again.get("updater")!.version, "1.2.0");
      assert.equal(again.get("updater")!.pending!.version, "2.0.0");
      assert.ok(again.audit({ plugin: "online" }).length >= 2);
      assert.equal(await responseJson(await again.fetch("updater", new Request("http://plugin/"))), "v1.2");
    } finally {
      again.close();
    }
  });

  test("disable, enable and uninstall", async () => {
    host.install({ manifest: manifest("toggle"), code: code("on") });
    host.disable("toggle");
    await assert.rejects(host.fetch("toggle", new Request("http://plugin/")), PluginNotFoundError);
    host.enable("toggle");
    assert.equal(await call("toggle"), "on");
    host.uninstall("toggle");
    assert.equal(host.get("toggle"), undefined);
    assert.throws(() => host.install({ manifest: manifest("offline"), code: code("dup") }), PluginStateError);
  });

  test("routes: a path the manifest does not list is 404 without running the plugin", async () => {
    host.install({ manifest: manifest("routed", { routes: ["/feed.xml", "/api/*"] }), code: routePlugin("return new URL(request.url).pathname") });
    assert.equal(await call("routed", "/feed.xml"), "/feed.xml");
    assert.equal(await call("routed", "/api/x/y"), "/api/x/y");
    assert.equal((await host.fetch("routed", new Request("http://plugin/admin"))).status, 404);
  });
});

describe("hooks", () => {
  /** A plugin whose handler of `hook` appends `tag` to payload.trail, after running `extra`. */
  const hookPlugin = (tag: string, extra = "") =>
    `export default { hooks: { async "content:beforeSave"(payload, env) { ${extra}; return { ...payload, trail: [...payload.trail, "${tag}"] }; } } };`;
  const sub = (name: string, subscription: object) => ({ ...manifest(name), hooks: { "content:beforeSave": subscription } });

  test("handlers run in priority order, each given the previous one's payload", async () => {
    host.install({ manifest: sub("h-late", { priority: 30 }), code: hookPlugin("late") });
    host.install({ manifest: sub("h-early", { priority: 10 }), code: hookPlugin("early") });
    host.install({ manifest: sub("h-middle", { priority: 20 }), code: hookPlugin("middle") });
    const r = await host.runHook("content:beforeSave", { trail: [] });
    assert.deepEqual(r.payload, { trail: ["early", "middle", "late"] });
    assert.deepEqual(r.invocations.map((i) => [i.plugin, i.status]), [["h-early", "ok"], ["h-middle", "ok"], ["h-late", "ok"]]);
    assert.equal(r.aborted, undefined);
  });

  test("a hung handler times out (its isolate ended) and, with continue, the chain goes on", async () => {
    host.install({ manifest: sub("h-hung", { priority: 15, timeoutMs: 300 }), code: hookPlugin("hung", "await new Promise(() => {})") });
    const started = Date.now();
    const r = await host.runHook("content:beforeSave", { trail: [] });
    assert.ok(Date.now() - started < 1_900, "the 300 ms timeout, not the host's 2 s");
    assert.deepEqual(r.payload, { trail: ["early", "middle", "late"] });
    const hung = r.invocations.find((i) => i.plugin === "h-hung")!;
    assert.equal(hung.error!.name, "HookTimeoutError");
    host.disable("h-hung");
  });

  test("a throwing handler with continue is recorded and skipped; with abort the chain stops there", async () => {
    host.install({ manifest: sub("h-flaky", { priority: 12 }), code: hookPlugin("flaky", "throw new RangeError('flaky')") });
    let r = await host.runHook("content:beforeSave", { trail: [] });
    assert.deepEqual(r.payload, { trail: ["early", "middle", "late"] });
    assert.deepEqual(r.invocations.find((i) => i.plugin === "h-flaky")!.error, { name: "RangeError", message: "flaky" });
    host.install({ manifest: sub("h-veto", { priority: 15, errorPolicy: "abort" }), code: hookPlugin("veto", "if (payload.trail.length) throw new Error('no saving today')") });
    r = await host.runHook("content:beforeSave", { trail: [] });
    assert.deepEqual(r.aborted, { plugin: "h-veto", error: { name: "Error", message: "no saving today" } });
    assert.deepEqual(r.payload, { trail: ["early"] });
    assert.deepEqual(r.invocations.map((i) => i.plugin), ["h-early", "h-flaky", "h-veto"], "h-middle and h-late never ran");
    for (const p of ["h-flaky", "h-veto", "h-early", "h-middle", "h-late"]) host.disable(p);
  });

  test("an exclusive hook takes one subscriber", () => {
    const provider = (name: string) => ({ ...manifest(name), hooks: { "auth:provider": true as const } });
    host.install({ manifest: provider("auth-one"), code: "export default { hooks: { 'auth:provider'() { return 1 } } }" });
    assert.throws(() => host.install({ manifest: provider("auth-two"), code: "export default {}" }), PluginStateError);
    host.disable("auth-one");
    host.install({ manifest: provider("auth-two"), code: "export default {}" });
    assert.throws(() => host.enable("auth-one"), PluginStateError);
  });

  test("a hook handler uses its plugin's bindings, and the audit log records each use", async () => {
    const since = Date.now();
    host.install({
      manifest: { ...manifest("h-counter", { permissions: { kv: ["COUNTS"] } }), hooks: { "content:afterSave": true } },
      code: `export default { hooks: { async "content:afterSave"(payload, env) {
        const n = Number(await env.COUNTS.get("saves") ?? 0) + 1;
        await env.COUNTS.put("saves", String(n));
        return { ...payload, saves: n };
      } } };`,
    });
    assert.deepEqual((await host.runHook("content:afterSave", { id: 1 })).payload, { id: 1, saves: 1 });
    assert.deepEqual((await host.runHook("content:afterSave", { id: 2 })).payload, { id: 2, saves: 2 });
    const audit = host.audit({ plugin: "h-counter", since });
    assert.deepEqual(audit.map((e) => e.target), ['COUNTS.get("saves")', 'COUNTS.put("saves")', 'COUNTS.get("saves")', 'COUNTS.put("saves")']);
    const lines = host.exportAudit({ plugin: "h-counter", since }).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    assert.deepEqual(Object.keys(lines[0]).sort(), ["allowed", "at", "capability", "plugin", "target"]);
    assert.ok(!Number.isNaN(Date.parse(lines[0].at)));
    assert.deepEqual(host.audit({ plugin: "h-counter", since: Date.now() + 60_000 }), []);
  });
});

describe("warm isolates", () => {
  const warmDir = useTempDir("mayfly-plugins-warm-");
  const counter = (version: string) => ({
    manifest: { ...manifest("warm-counter"), version, hooks: { "tick": true as const } },
    code: `let n = 0; export default { hooks: { async tick(payload) { if (payload === "hang") await new Promise(() => {}); return ++n; } } };`,
  });

  test("fresh by default: module state never outlives one invocation", async () => {
    host.install(counter("1.0.0"));
    assert.equal((await host.runHook("tick", null)).payload, 1);
    assert.equal((await host.runHook("tick", null)).payload, 1);
    host.uninstall("warm-counter");
  });

  test("warm: one isolate per name@version, ended by a timeout and replaced by an update", async () => {
    const warm = new PluginHost({ loader: ctx.loader, dataDir: warmDir, grants, warm: true, hookTimeoutMs: 300 });
    try {
      warm.install(counter("1.0.0"));
      assert.equal((await warm.runHook("tick", null)).payload, 1);
      assert.equal((await warm.runHook("tick", null)).payload, 2);
      assert.equal((await warm.runHook("tick", "hang")).invocations[0]!.error!.name, "HookTimeoutError");
      assert.equal((await warm.runHook("tick", null)).payload, 1, "the hung instance was ended; a new one started");
      assert.equal((await warm.runHook("tick", null)).payload, 2);
      assert.equal(warm.update(counter("1.0.1")).status, "updated");
      assert.equal((await warm.runHook("tick", null)).payload, 1, "the new version runs in its own isolate");
    } finally {
      warm.close();
    }
  });
});
