import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, serverOptionsFromConfig, type RunningServer } from "../src/server/index.ts";
import { loadConfig, parseConfig } from "../src/server/config.ts";
import { useTempDir } from "./helpers.ts";

/** Named workers from a config file at /w/<name>/*, over real HTTP. */
const dir = useTempDir("mayfly-named-");
let server: RunningServer;
let upstream: Server;
let upstreamSeen: IncomingHttpHeaders[] = [];

function file(name: string, text: string): string {
  mkdirSync(join(dir, "workers"), { recursive: true });
  writeFileSync(join(dir, name), text);
  return name;
}

before(async () => {
  upstream = createServer((req, res) => {
    upstreamSeen.push(req.headers);
    res.end("upstream ok");
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  const port = (upstream.address() as AddressInfo).port;
  file("workers/greet.ts", `export const greet = (who: string): string => "hello " + who;`);
  file("workers/hello.ts", `import { greet } from "./greet.ts";
    export default { async fetch(req: Request, env: { WHO: string }) {
      const url = new URL(req.url);
      console.log("hit", url.pathname);
      return Response.json({ text: greet(env.WHO), path: url.pathname, query: url.search, method: req.method, body: req.method === "POST" ? await req.text() : null });
    } };`);
  file("workers/counter.js", `let n = 0; export default { fetch() { n++; return new Response(String(n)) } }`);
  file("workers/store.js", `export default { async fetch(req, env) {
      const n = Number(await env.STATE.get("n") ?? 0) + 1;
      await env.STATE.put("n", String(n));
      return new Response(String(n));
    } }`);
  file("workers/stream.js", `export default { fetch() {
      const enc = new TextEncoder();
      let i = 0;
      return new Response(new ReadableStream({ pull(c) { if (i < 3) c.enqueue(enc.encode("chunk" + i++ + ";")); else c.close(); } }));
    } }`);
  file("workers/loop.js", `export default { fetch() { for (;;) {} } }`);
  file("workers/throws.js", `export default { fetch() { throw new TypeError("db password is hunter2") } }`);
  file("workers/proxy.js", `export default { async fetch(req, env) {
      const res = await fetch("http://127.0.0.1:${port}/data");
      return Response.json({ upstream: await res.text(), sees: JSON.stringify(env) + JSON.stringify(Object.keys(globalThis)) });
    } }`);
  writeFileSync(join(dir, "mayfly.config.json"), JSON.stringify({
    tokens: { "admin-token-1": ["workers", "metrics"], "hello-only-token": ["worker:hello"], "runner-token-1": ["run"] },
    workers: {
      hello: { main: "workers/hello.ts", env: { WHO: "${WHO_IS_IT}" } },
      counter: { main: "workers/counter.js", warm: true },
      fresh: { main: "workers/counter.js" },
      store: { main: "workers/store.js", kv: ["STATE"] },
      stream: { main: "workers/stream.js" },
      loop: { main: "workers/loop.js", limits: { cpuMs: 30 } },
      throws: { main: "workers/throws.js" },
      proxy: { main: "workers/proxy.js", egress: { allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true, headers: { authorization: "Bearer ${UPSTREAM_SECRET}" } }] } },
    },
  }));
  const config = loadConfig(join(dir, "mayfly.config.json"), { WHO_IS_IT: "mayfly", UPSTREAM_SECRET: "sekret-123" });
  server = await startServer(serverOptionsFromConfig(config, { port: 0, loader: { executors: 1 } }));
});
after(async () => {
  await server?.close();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const admin = { authorization: "Bearer admin-token-1" };
const get = (path: string, headers: Record<string, string> = admin, init: RequestInit = {}) => fetch(`${server.url}${path}`, { ...init, headers });

describe("named workers at /w/<name>/*", () => {
  test("a TypeScript worker from a file, with its imports, env from the environment, mounted at /", async () => {
    const res = await get("/w/hello/api/items?x=1");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { text: "hello mayfly", path: "/api/items", query: "?x=1", method: "GET", body: null });
    const root = await (await get("/w/hello")).json();
    assert.equal(root.path, "/");
    const posted = await (await get("/w/hello/p", admin, { method: "POST", body: "payload" })).json();
    assert.equal(posted.body, "payload");
  });

  test("the server's responses carry hardening headers; a worker's own response passes unchanged", async () => {
    const api = await get("/v1/workers");
    assert.equal(api.headers.get("x-content-type-options"), "nosniff");
    assert.equal(api.headers.get("x-frame-options"), "SAMEORIGIN");
    const own = await get("/w/hello");
    assert.equal(own.headers.get("x-content-type-options"), null);
    assert.equal(own.headers.get("content-type"), "application/json");
  });

  test("fresh isolate per request by default; one warm instance with warm: true", async () => {
    const fresh = [await (await get("/w/fresh")).text(), await (await get("/w/fresh")).text()];
    assert.deepEqual(fresh, ["1", "1"]);
    const warm = [await (await get("/w/counter")).text(), await (await get("/w/counter")).text(), await (await get("/w/counter")).text()];
    assert.deepEqual(warm, ["1", "2", "3"]);
  });

  test("a KV binding keeps state across fresh isolates", async () => {
    const a = Number(await (await get("/w/store")).text());
    const b = Number(await (await get("/w/store")).text());
    assert.equal(b, a + 1);
  });

  test("a streamed response arrives whole", async () => {
    assert.equal(await (await get("/w/stream")).text(), "chunk0;chunk1;chunk2;");
  });

  test("a worker past its CPU limit gets 503 with the typed error; the server keeps serving", async () => {
    const res = await get("/w/loop");
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error.name, "CpuTimeLimitError");
    assert.equal((await get("/w/fresh")).status, 200);
  });

  test("a worker that throws gets 500 with its error's name only; the message stays in the server's log", async () => {
    const res = await get("/w/throws");
    assert.equal(res.status, 500);
    const body = await res.text();
    assert.match(body, /WorkerException.*threw TypeError/);
    assert.doesNotMatch(body, /hunter2/);
  });

  test("egress: the gateway injects the secret header; the worker never sees it", async () => {
    upstreamSeen = [];
    const out = await (await get("/w/proxy")).json();
    assert.equal(out.upstream, "upstream ok");
    assert.equal(upstreamSeen[0]?.authorization, "Bearer sekret-123");
    assert.doesNotMatch(out.sees, /sekret/);
  });

  test("GET /v1/workers lists the named workers for a token with the workers permission", async () => {
    const out = await (await get("/v1/workers")).json();
    const counter = out.workers.find((w: { name: string }) => w.name === "counter");
    assert.deepEqual(counter, { name: "counter", path: "/w/counter/", warm: true, crons: [], limits: {} });
    assert.deepEqual(out.workers.find((w: { name: string }) => w.name === "loop").limits, { cpuMs: 30 });
    assert.equal((await get("/v1/workers", { authorization: "Bearer hello-only-token" })).status, 403);
  });

  test("per-token permissions: one worker, all workers, none", async () => {
    assert.equal((await get("/w/hello", {})).status, 401);
    assert.equal((await get("/w/hello", { authorization: "Bearer hello-only-token" })).status, 200);
    assert.equal((await get("/w/counter", { authorization: "Bearer hello-only-token" })).status, 403);
    assert.equal((await get("/w/hello", { authorization: "Bearer runner-token-1" })).status, 403);
    assert.equal((await get("/w/nope")).status, 404);
  });

  test("metrics count the warm worker as live and the fresh ones as gone", async () => {
    const text = await (await get("/metrics")).text();
    assert.match(text, /mayfly_live_workers\{kind="cached"\} 1\n/);
    assert.match(text, /mayfly_live_workers\{kind="oneOff"\} 0\n/);
    assert.match(text, /mayfly_runs_in_flight 0\n/);
    // Per named worker: runs by outcome and wall time.
    assert.match(text, /mayfly_worker_runs_total\{worker="fresh",outcome="ok"\} [2-9]/);
    assert.match(text, /mayfly_worker_runs_total\{worker="loop",outcome="exceededCpu"\} 1/);
    assert.match(text, /mayfly_worker_run_wall_seconds_count\{worker="counter"\} 3/);
  });
});

describe("config errors are ConfigError naming the place", () => {
  test("missing file, bad JSON, bad names, missing variables, broken worker code", async () => {
    assert.throws(() => loadConfig(join(dir, "absent.json")), { name: "ConfigError", message: /Cannot read/ });
    writeFileSync(join(dir, "bad.json"), "{ nope");
    assert.throws(() => loadConfig(join(dir, "bad.json")), { name: "ConfigError", message: /not JSON/ });
    assert.throws(() => parseConfig({ workers: { "Bad Name": { main: "x.js" } } }, dir), { name: "ConfigError", message: /workers/ });
    assert.throws(() => parseConfig({ workers: { a: { main: "x.js", limits: { cpuMs: -1 } } } }, dir), { name: "ConfigError", message: /workers\.a\.limits\.cpuMs/ });
    assert.throws(() => parseConfig({ workers: { a: { main: "x.js", env: { K: "${NOT_SET_ANYWHERE}" } } } }, dir, {}), { name: "ConfigError", message: /NOT_SET_ANYWHERE is not set/ });
    assert.throws(() => parseConfig({ tokens: { short: ["run"] } }, dir), { name: "ConfigError", message: /at least 8/ });
    assert.deepEqual(parseConfig({ tokens: { "${ADMIN}": ["run"] } }, dir, { ADMIN: "from-the-environment" }).tokens, { "from-the-environment": ["run"] });
    assert.throws(() => parseConfig({ tokens: { "${ADMIN}": ["run"] } }, dir, { ADMIN: "short" }), { name: "ConfigError", message: /shorter than 8/ });
    file("workers/broken.ts", "export default { fetch( {");
    await assert.rejects(startServer({ port: 0, workers: { broken: { main: "workers/broken.ts" } }, baseDir: dir, loader: { executors: 1 } }), { name: "ConfigError", message: /workers\.broken: .*broken\.ts:1/ });
  });
});

describe("--watch", () => {
  const wdir = useTempDir("mayfly-watch-");
  const write = (name: string, text: string) => writeFileSync(join(wdir, name), text);
  const until = async (probe: () => Promise<boolean>, what: string) => {
    for (let i = 0; i < 100; i++) {
      if (await probe()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  test("a changed import, a broken save and a config edit: new code serves, a broken build keeps the old", async () => {
    write("part.ts", `export const version = "v1";`);
    write("live.ts", `import { version } from "./part.ts"; export default { fetch() { return new Response(version) } }`);
    write("mayfly.config.json", JSON.stringify({ workers: { live: { main: "live.ts" } } }));
    const watched = await startServer(serverOptionsFromConfig(loadConfig(join(wdir, "mayfly.config.json")), { port: 0, watch: true, loader: { executors: 1 } }));
    const text = async (path: string) => { const r = await fetch(`${watched.url}${path}`); return `${r.status} ${await r.text()}`; };
    try {
      assert.equal(await text("/w/live"), "200 v1");
      write("part.ts", `export const version = "v2";`);
      await until(async () => (await text("/w/live")) === "200 v2", "the edited import to serve");
      write("live.ts", `export default { fetch( {`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await text("/w/live"), "200 v2");
      write("live.ts", `import { version } from "./part.ts"; export default { fetch() { return new Response(version + "!") } }`);
      write("second.ts", `export default { fetch() { return new Response("second") } }`);
      write("mayfly.config.json", JSON.stringify({ workers: { live: { main: "live.ts" }, second: { main: "second.ts" } } }));
      await until(async () => (await text("/w/second")) === "200 second", "the worker added to the config to serve");
      assert.equal(await text("/w/live"), "200 v2!");
    } finally {
      await watched.close();
    }
  });
});

describe("Cron Triggers", () => {
  const cdir = useTempDir("mayfly-cron-");
  test("a worker's scheduled() runs on its cron and on demand; a throwing one is reported; bad crons are ConfigError", async () => {
    writeFileSync(join(cdir, "ticker.js"), `export default {
      async scheduled(controller, env, ctx) {
        const n = Number(await env.STATE.get("n") ?? 0) + 1;
        await env.STATE.put("n", String(n));
        await env.STATE.put("last", JSON.stringify({ cron: controller.cron, time: typeof controller.scheduledTime, noRetry: typeof controller.noRetry }));
      },
      async fetch(request, env) { return Response.json({ n: Number(await env.STATE.get("n") ?? 0), last: JSON.parse(await env.STATE.get("last") ?? "null") }) },
    }`);
    writeFileSync(join(cdir, "broken.js"), `export default { scheduled() { throw new RangeError("no luck") } }`);
    const crons = await startServer({
      port: 0, baseDir: cdir, loader: { executors: 1 },
      workers: { ticker: { main: "ticker.js", kv: ["STATE"], crons: ["* * * * * *"] }, broken: { main: "broken.js" } },
    });
    try {
      const state = async () => (await fetch(`${crons.url}/w/ticker`)).json();
      for (let i = 0; i < 60 && (await state()).n < 1; i++) await new Promise((r) => setTimeout(r, 100));
      const ticked = await state();
      assert.ok(ticked.n >= 1, "the every-second cron fired");
      assert.deepEqual(ticked.last, { cron: "* * * * * *", time: "number", noRetry: "function" });
      const manual = await fetch(`${crons.url}/v1/scheduled/ticker?cron=manual`, { method: "POST" });
      assert.deepEqual(await manual.json(), { outcome: "ok" });
      assert.equal((await state()).last.cron, "manual");
      const failed = await fetch(`${crons.url}/v1/scheduled/broken`, { method: "POST" });
      assert.equal(failed.status, 422);
      assert.deepEqual(await failed.json(), { outcome: "exception", error: { name: "RangeError", message: "no luck" } });
      assert.equal((await fetch(`${crons.url}/v1/scheduled/nope`, { method: "POST" })).status, 404);
    } finally {
      await crons.close();
    }
    assert.throws(() => parseConfig({ workers: { t: { main: "t.js", crons: ["every tuesday"] } } }, cdir), { name: "ConfigError", message: /workers\.t\.crons\.0: not a cron expression/ });
  });
});

describe("service bindings between named workers", () => {
  const sdir = useTempDir("mayfly-services-");
  test("a worker calls another by fetch and RPC (fresh isolate per call); an unknown target is a ConfigError", async () => {
    writeFileSync(join(sdir, "auth.js"), `import { WorkerEntrypoint } from "cloudflare:workers";
      let calls = 0;
      export default { fetch(request) { calls++; return Response.json({ user: request.headers.get("x-user") ?? "anonymous", calls }) } };
      export class Admin extends WorkerEntrypoint { isAdmin(user) { return user === "ada" } }`);
    writeFileSync(join(sdir, "api.js"), `export default { async fetch(request, env) {
      const who = await (await env.AUTH.fetch("http://auth/check", { headers: { "x-user": "ada" } })).json();
      const again = await (await env.AUTH.fetch("http://auth/check")).json();
      return Response.json({ who, again, admin: await env.ADMIN.isAdmin(who.user), outsider: await env.ADMIN.isAdmin("eve") });
    } }`);
    const served = await startServer({
      port: 0, baseDir: sdir, loader: { executors: 1 },
      workers: {
        auth: { main: "auth.js" },
        api: { main: "api.js", services: { AUTH: "auth", ADMIN: { worker: "auth", entrypoint: "Admin" } } },
      },
    });
    try {
      const out = await (await fetch(`${served.url}/w/api`)).json();
      // calls stays 1: each call got a fresh isolate, as a request to /w/auth would.
      assert.deepEqual(out, { who: { user: "ada", calls: 1 }, again: { user: "anonymous", calls: 1 }, admin: true, outsider: false });
    } finally {
      await served.close();
    }
    assert.throws(() => parseConfig({ workers: { a: { main: "a.js", services: { B: "missing" } } } }, sdir), { name: "ConfigError", message: /workers\.a\.services\.B: no worker named "missing"/ });
  });

  test("a worker calling itself through its service binding is stopped by the in-flight cap, not by the memory running out", async () => {
    writeFileSync(join(sdir, "loopy.js"), `export default { async fetch(request, env) {
      try { return await env.SELF.fetch(request) } catch (e) { return new Response(e.name + ": " + e.message) }
    } }`);
    const served = await startServer({ port: 0, baseDir: sdir, loader: { executors: 1 }, workers: { loopy: { main: "loopy.js", services: { SELF: "loopy" } } } });
    try {
      const text = await (await fetch(`${served.url}/w/loopy`)).text();
      assert.match(text, /^RangeError: Too many calls in flight to the worker "loopy" \(128\)/);
      assert.equal(served.loader.engine.stats().restarts, 0);
    } finally {
      await served.close();
    }
  });
});
