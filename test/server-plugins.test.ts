import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, serverOptionsFromConfig, type RunningServer } from "../src/server/index.ts";
import { loadConfig } from "../src/server/config.ts";
import { useTempDir } from "./helpers.ts";

/** Plugins in `mayfly serve`: the example plugin from a config file, its routes at /p/<name>/, and the operators' API. */
const dir = useTempDir("mayfly-server-plugins-");
cpSync(new URL("../examples/plugins", import.meta.url), join(dir, "plugins"), { recursive: true });
const manifestFile = join(dir, "plugins/slugger/manifest.json");
writeFileSync(join(dir, "mayfly.config.json"), JSON.stringify({
  tokens: { "admin-token-1": ["plugins"], "slugger-token": ["plugin:slugger"], "workers-token": ["workers"] },
  plugins: {
    grants: { kv: true, limits: { cpuMs: 100 } },
    install: { slugger: { manifest: "plugins/slugger/manifest.json", main: "plugins/slugger/index.ts" } },
  },
}));

let server: RunningServer | undefined;
after(() => server?.close());

async function start(): Promise<RunningServer> {
  await server?.close();
  server = await startServer({ ...serverOptionsFromConfig(loadConfig(join(dir, "mayfly.config.json")), { port: 0, loader: { executors: 1 } }), playground: false });
  return server;
}

function req(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(server!.url + path, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers } });
}

describe("plugins in mayfly serve", () => {
  test("the configured plugin is installed; its hook and route work over HTTP, under their permissions", async () => {
    await start();
    const hook = await req("/v1/hooks/content:beforeSave", "admin-token-1", { method: "POST", body: JSON.stringify({ title: "Hello, Plugins!" }) });
    assert.equal(hook.status, 200);
    const result = await hook.json();
    assert.deepEqual(result.payload, { title: "Hello, Plugins!", slug: "hello-plugins" });
    assert.deepEqual(result.invocations.map((i: { plugin: string }) => i.plugin), ["slugger"]);
    const aborted = await (await req("/v1/hooks/content:beforeSave", "admin-token-1", { method: "POST", body: JSON.stringify({ title: " " }) })).json();
    assert.equal(aborted.aborted.plugin, "slugger");
    assert.equal(aborted.aborted.error.name, "TypeError");

    const stats = await req("/p/slugger/stats", "slugger-token");
    assert.equal(stats.status, 200);
    assert.deepEqual(await stats.json(), { saves: 1 });
    assert.equal((await req("/p/slugger/other", "slugger-token")).status, 404);
    assert.equal((await req("/p/slugger/stats", "workers-token")).status, 403);
    assert.equal((await req("/p/nobody/stats", "admin-token-1")).status, 404);
    assert.equal((await req("/v1/plugins", "slugger-token")).status, 403);

    const audit = await req("/v1/plugins/audit?plugin=slugger", "admin-token-1");
    assert.equal(audit.headers.get("content-type"), "application/x-ndjson");
    const lines = (await audit.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.target), ['COUNTS.get("saves")', 'COUNTS.put("saves")', 'COUNTS.get("saves")']);
  });

  test("a configured update that asks for more waits for POST /v1/plugins/<name>/approve; the old version serves meanwhile", async () => {
    const m = JSON.parse(readFileSync(manifestFile, "utf8"));
    writeFileSync(manifestFile, JSON.stringify({ ...m, version: "1.1.0", permissions: { kv: ["COUNTS", "SLUGS"] } }));
    await start();
    const list = (await (await req("/v1/plugins", "admin-token-1")).json()).plugins;
    assert.equal(list[0].version, "1.0.0");
    assert.equal(list[0].pending.version, "1.1.0");
    assert.deepEqual(list[0].pending.diff.changes, [{ kind: "added", permission: "kv", target: "SLUGS" }]);
    assert.equal((await req("/v1/plugins/slugger/approve", "admin-token-1", { method: "POST", body: JSON.stringify({ version: "2.0.0" }) })).status, 404);
    const approved = await req("/v1/plugins/slugger/approve", "admin-token-1", { method: "POST", body: JSON.stringify({ version: "1.1.0" }) });
    assert.equal(approved.status, 200);
    assert.equal((await approved.json()).version, "1.1.0");
    assert.deepEqual(await (await req("/p/slugger/stats", "slugger-token")).json(), { saves: 1 }, "the plugin's data outlived the update");
  });

  test("a plugin asking for what the config does not grant stops startup, naming it", async () => {
    const m = JSON.parse(readFileSync(manifestFile, "utf8"));
    writeFileSync(manifestFile, JSON.stringify({ ...m, version: "1.2.0", permissions: { kv: ["COUNTS"], network: ["https://api.example.com"] } }));
    await server?.close();
    server = undefined;
    await assert.rejects(start(), (e: Error) => e.name === "ConfigError" && /plugins\.install\.slugger: ManifestGrantError/.test(e.message));
    server = undefined;
  });
});
