import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, serverOptionsFromConfig, type RunningServer } from "../src/server/index.ts";
import { loadConfig, parseConfig } from "../src/server/config.ts";
import { workspace } from "../src/index.ts";
import { useTempDir } from "./helpers.ts";

/** Named workers bound to a workspace from mayfly.config.json, over real HTTP. */
const dir = useTempDir("mayfly-server-ws-");
let server: RunningServer;

before(async () => {
  mkdirSync(join(dir, "workers"));
  writeFileSync(join(dir, "workers/editor.js"), `export default { async fetch(req, env) {
      const path = new URL(req.url).pathname.slice(1);
      if (req.method === "PUT") { await env.FILES.writeFile(path, req.body); return new Response("stored") }
      return new Response(await env.FILES.readFile(path, "utf8"));
    } }`);
  writeFileSync(join(dir, "workers/viewer.js"), `export default { async fetch(req, env) {
      const path = new URL(req.url).pathname.slice(1);
      if (req.method === "PUT") { try { await env.DOCS.writeFile(path, "x") } catch (e) { return new Response(e.code, { status: 403 }) } }
      return new Response(await env.DOCS.readFile(path, "utf8"));
    } }`);
  writeFileSync(join(dir, "mayfly.config.json"), JSON.stringify({
    dataDir: "data",
    workers: {
      editor: { main: "workers/editor.js", workspace: { FILES: { name: "site" } } },
      viewer: { main: "workers/viewer.js", workspace: { DOCS: { name: "site", mode: "read" } } },
    },
  }));
  server = await startServer(serverOptionsFromConfig(loadConfig(join(dir, "mayfly.config.json")), { port: 0, loader: { executors: 1 } }));
});
after(() => server?.close());

test("a config binds one workspace to two workers: one writes (a streamed body), the other reads and is refused writes", async () => {
  const put = await fetch(`${server.url}/w/editor/pages/index.html`, { method: "PUT", body: "<h1>hi</h1>" });
  assert.equal(await put.text(), "stored");
  assert.equal(await (await fetch(`${server.url}/w/editor/pages/index.html`)).text(), "<h1>hi</h1>");
  assert.equal(await (await fetch(`${server.url}/w/viewer/pages/index.html`)).text(), "<h1>hi</h1>");
  const refused = await fetch(`${server.url}/w/viewer/pages/index.html`, { method: "PUT" });
  assert.equal(refused.status, 403);
  assert.equal(await refused.text(), "EACCES");
  // The data is in the config's dataDir, under the workspace's name.
  const ws = workspace({ name: "site", dataDir: join(dir, "data") });
  assert.equal(await ws.readFile("pages/index.html", "utf8"), "<h1>hi</h1>");
  ws.close();
});

test("workspace bindings in the config are validated", () => {
  assert.throws(() => parseConfig({ workers: { a: { main: "x.js", workspace: { FS: { mode: "write" } } } } }, dir), { name: "ConfigError", message: /workers\.a\.workspace\.FS\.mode/ });
  assert.throws(() => parseConfig({ workers: { a: { main: "x.js", workspace: { "not-an-identifier": {} } } } }, dir), { name: "ConfigError", message: /identifier/ });
  assert.throws(() => parseConfig({ workers: { a: { main: "x.js", workspace: { FS: { quota: { bytes: -1 } } } } } }, dir), { name: "ConfigError", message: /quota\.bytes/ });
  assert.throws(() => parseConfig({ workers: { a: { main: "x.js", workspace: { FS: { path: "/etc" } } } } }, dir), { name: "ConfigError" });
});
