import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, serverOptionsFromConfig, type RunningServer } from "../src/server/index.ts";
import { parseConfig } from "../src/server/config.ts";
import { TestRegistry } from "./npm-registry.ts";
import { runCli, useTempDir } from "./helpers.ts";

/** npm and typecheck through the command line, POST /v1/run and named workers, from a local registry. */
const dir = useTempDir("mayfly-npm-doors-");
const registry = new TestRegistry();

function file(name: string, text: string): string {
  mkdirSync(join(dir, name, ".."), { recursive: true });
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

// HOME and the working directory hold no .npmrc: the registry comes from npm_config_registry alone.
const mayfly = (args: string[], env: Record<string, string>) => runCli(args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...env } });

before(async () => {
  await registry.start();
  await registry.publishFiles({ name: "shout", version: "1.0.0", type: "module", main: "index.js" }, { "index.js": `export const shout = (s) => s.toUpperCase() + "!";` });
  await registry.publishFiles({ name: "shout", version: "1.2.0", type: "module", main: "index.js", types: "index.d.ts" }, {
    "index.js": `export const shout = (s) => s.toUpperCase() + "!!";`,
    "index.d.ts": `export declare const shout: (s: string) => string;`,
  });
  file("app/package.json", JSON.stringify({ name: "app", dependencies: { shout: "^1.0.0" }, scripts: { postinstall: "exit 1" } }));
  file("app/worker.ts", `import { shout } from "shout";\nexport default { fetch(): Response { return new Response(shout("hi")) } };`);
  file("app/bad.ts", `import { shout } from "shout";\nexport default { fetch(): Response { const n: number = shout("hi"); return new Response(String(n)) } };`);
});
after(() => registry.stop());

describe("mayfly run --package-json", () => {
  test("the worker's npm imports are resolved from npm_config_registry, bundled, and reported with --json", async () => {
    const r = await mayfly(["run", join(dir, "app/worker.ts"), "--package-json", join(dir, "app/package.json"), "--npm-cache-dir", join(dir, "cli-cache"), "--json"], { npm_config_registry: registry.url });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.response.body, "HI!!");
    assert.deepEqual(out.npm.packages.map((p: { name: string; version: string }) => `${p.name}@${p.version}`), ["shout@1.2.0"]);
    assert.equal(out.npm.lockfile.packages["node_modules/shout"].version, "1.2.0");
  });

  test("--typecheck reports type errors, the package's own types included, as file:line:col", async () => {
    const r = await mayfly(["run", join(dir, "app/bad.ts"), "--package-json", join(dir, "app/package.json"), "--npm-cache-dir", join(dir, "cli-cache"), "--typecheck"], { npm_config_registry: registry.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TypeCheckError/);
    assert.match(r.stderr, /bad\.ts:2:44 TS2322: Type 'string' is not assignable to type 'number'\./);
  });

  test("--npm-allow refuses other packages", async () => {
    const r = await mayfly(["run", join(dir, "app/worker.ts"), "--package-json", join(dir, "app/package.json"), "--npm-cache-dir", join(dir, "cli-cache"), "--npm-allow", "zod"], { npm_config_registry: registry.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /PackageNotAllowedError: The package "shout"/);
  });
});

describe("the server", () => {
  let server: RunningServer;
  before(async () => {
    file("srv/workers/package.json", JSON.stringify({ dependencies: { shout: "1.0.0" } }));
    file("srv/workers/loud.ts", `import { shout } from "shout"; export default { fetch(req: Request) { return new Response(shout(new URL(req.url).pathname)) } };`);
    const config = parseConfig({
      npm: { cacheDir: "npm-cache", registry: registry.url },
      workers: { loud: { main: "workers/loud.ts", packageJson: "workers/package.json" } },
    }, join(dir, "srv"));
    server = await startServer(serverOptionsFromConfig(config, { port: 0, loader: { executors: 1 }, playground: false }));
  });
  after(() => server?.close());

  test("a named worker's packageJson is resolved at startup and its package serves requests", async () => {
    const res = await fetch(`${server.url}/w/loud/abc`);
    assert.equal(await res.text(), "/ABC!");
  });

  test("POST /v1/run takes packageJson and typecheck, and answers with what was bundled", async () => {
    const run = (worker: Record<string, unknown>) => fetch(`${server.url}/v1/run`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ worker: { mainModule: "m.ts", modules: { "m.ts": `import { shout } from "shout"; export default { fetch() { return new Response(shout("run")) } };` }, packageJson: { dependencies: { shout: "^1" } }, ...worker } }),
    });
    const ok = await run({});
    const body = await ok.json();
    assert.equal(ok.status, 200, JSON.stringify(body));
    assert.equal(body.response.body, "RUN!!");
    assert.equal(body.npm.packages[0].version, "1.2.0");
    const typed = await run({ typecheck: true, modules: { "m.ts": `const n: number = "x"; export default { fetch() { return new Response(n) } };` }, packageJson: undefined });
    const err = await typed.json();
    assert.equal(typed.status, 422);
    assert.equal(err.error.name, "TypeCheckError");
    assert.match(err.error.message, /m\.ts:1:7 TS2322/);
  });

  test("without npm granted, a named worker's packageJson stops startup, and /v1/run's is a 400", async () => {
    await assert.rejects(startServer({ port: 0, baseDir: join(dir, "srv"), workers: { loud: { main: "workers/loud.ts", packageJson: "workers/package.json" } }, loader: { executors: 1 }, playground: false }),
      { name: "ConfigError", message: /workers\.loud\.packageJson: npm packages need/ });
    const plain = await startServer({ port: 0, loader: { executors: 1 }, playground: false });
    try {
      const res = await fetch(`${plain.url}/v1/run`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ worker: { mainModule: "m.js", modules: { "m.js": "export default {}" }, packageJson: { dependencies: { shout: "1" } } } }),
      });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.name, "NpmNotEnabledError");
    } finally {
      await plain.close();
    }
  });
});
