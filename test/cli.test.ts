import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, runCli, useTempDir } from "./helpers.ts";

/** The CLI, driven as a user would: a subprocess, its output and exit code. */
const dir = useTempDir("mayfly-cli-");

const mayfly = (args: string[], stdin?: string) => runCli(args, { stdin });

function file(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

let server: Server;
let port = 0;
before(async () => {
  server = createServer((_req, res) => res.end("from the network"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe("mayfly run", () => {
  test("runs a TypeScript worker with relative imports and prints the response body", async () => {
    file("util.ts", `export const shout = (s: string): string => s.toUpperCase() + "!";`);
    const main = file("main.ts", `import { shout } from "./util.ts";
      export default { async fetch(req: Request): Promise<Response> { console.log("hi"); return new Response(shout(req.method + " " + new URL(req.url).pathname)) } };`);
    const r = await mayfly(["run", main, "--url", "http://x/path"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "GET /PATH!");
    assert.match(r.stderr, /\[log\] hi/);
  });

  test("--json prints response, logs, outcome and cost; -X/-H/-d and stdin bodies", async () => {
    const echo = file("echo.js", `export default { async fetch(req) { console.warn("got", req.headers.get("x-a")); return Response.json({ m: req.method, body: await req.text() }, { status: 201 }) } }`);
    const r = await mayfly(["run", echo, "--json", "-X", "POST", "-H", "x-a: 1", "-d", "payload"]);
    const out = JSON.parse(r.stdout);
    assert.equal(r.code, 0);
    assert.equal(out.response.status, 201);
    assert.deepEqual(JSON.parse(out.response.body), { m: "POST", body: "payload" });
    assert.equal(out.outcome, "ok");
    assert.deepEqual(out.logs.map((l: { message: string }) => l.message), ["got 1"]);
    assert.ok(out.cpuMs > 0 && out.wallMs > 0);
    const piped = await mayfly(["run", echo, "--json", "-X", "PUT", "-d", "-"], "from stdin");
    assert.equal(JSON.parse(JSON.parse(piped.stdout).response.body).body, "from stdin");
  });

  test("--scheduled runs the scheduled() handler with the cron, as a Cron Trigger would", async () => {
    const cron = file("cron.js", `export default { scheduled(controller, env, ctx) { console.log("tick", controller.cron, typeof controller.scheduledTime) } }`);
    const r = await mayfly(["run", cron, "--scheduled", "*/5 * * * *"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "scheduled (*/5 * * * *): ok\n");
    assert.match(r.stderr, /\[log\] tick \*\/5 \* \* \* \* number/);
    const failing = file("cron-fail.js", `export default { scheduled() { throw new Error("cron broke") } }`);
    const f = await mayfly(["run", failing, "--scheduled"]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /mayfly: Error: cron broke/);
  });

  test("a breached limit exits non-zero with a one-line reason", async () => {
    const loop = file("loop.js", `export default { fetch() { for (;;) {} } }`);
    const r = await mayfly(["run", loop, "--cpu-ms", "50"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim().split("\n").at(-1)!, /^mayfly: CpuTimeLimitError: Worker exceeded CPU time limit of 50 ms\.$/);
  });

  test("nothing reaches the network without --allow-net; with it, only the named hosts", async () => {
    const net = file("net.js", `export default { async fetch() { try { return new Response(await (await fetch("http://127.0.0.1:${port}/")).text()) } catch (e) { return new Response(e.name + ": " + e.message, { status: 500 }) } } }`);
    const denied = await mayfly(["run", net]);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /not permitted to access the internet/);
    const allowed = await mayfly(["run", net, `--allow-net=http://127.0.0.1:${port}`]);
    assert.equal(allowed.stdout, "from the network");
    const other = await mayfly(["run", net, "--allow-net=api.example.com"]);
    assert.match(other.stdout, /EgressDeniedError/);
  });

  test("--kv binds a namespace whose data persists across runs", async () => {
    const counter = file("counter.js", `export default { async fetch(r, env) { const n = Number(await env.COUNT.get("n") ?? 0) + 1; await env.COUNT.put("n", String(n)); return new Response(String(n)) } }`);
    const args = ["run", counter, "--kv", "COUNT", "--data-dir", join(dir, "data")];
    assert.equal((await mayfly(args)).stdout, "1");
    assert.equal((await mayfly(args)).stdout, "2");
  });

  test("bad flags and missing files get clear messages; --help is there", async () => {
    const bad = await mayfly(["run", "x.js", "--bogus"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown option '--bogus'/);
    const badNumber = await mayfly(["run", "x.js", "--cpu-ms", "lots"]);
    assert.match(badNumber.stderr, /expected a positive number/);
    const missing = await mayfly(["run", join(dir, "nope.ts")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /mayfly: InvalidWorkerCodeError: .*(Could not resolve|nope\.ts)/);
    const help = await mayfly(["run", "--help"]);
    assert.match(help.stdout, /--allow-net <hosts>/);
  });
});

describe("mayfly serve", () => {
  test("starts the API, prints its URL, answers, and stops on SIGTERM", async () => {
    const { child, url, logs } = await serve(["--port", "0"]);
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    child.kill("SIGTERM");
    const code = await new Promise((r) => child.once("exit", r));
    assert.equal(code, 0);
    // Structured JSON logs: the request and the lifecycle.
    const lines = logs().trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.msg === "request" && l.path === "/healthz" && l.status === 200));
    assert.ok(lines.some((l) => l.msg === "closed"));
  });

  test("--config serves the named workers; the port flag wins over the file", async () => {
    file("named.ts", `export default { fetch(req: Request, env: { GREETING: string }) { return new Response(env.GREETING + " " + new URL(req.url).pathname) } }`);
    const config = file("mayfly.config.json", JSON.stringify({ port: 1, workers: { greet: { main: "named.ts", env: { GREETING: "${GREETING}" } } } }));
    const { child, url, stdout } = await serve(["--config", config, "--port", "0"], { GREETING: "howdy" });
    try {
      assert.equal(await (await fetch(`${url}/w/greet/there`)).text(), "howdy /there");
      assert.match(stdout(), /worker greet: http:\/\/127\.0\.0\.1:\d+\/w\/greet\//);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });

  test("a bad config file exits non-zero with the reason", async () => {
    const config = file("broken.config.json", JSON.stringify({ workers: { greet: { main: "missing.ts" } } }));
    const r = await mayfly(["serve", "--config", config, "--port", "0"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mayfly: ConfigError: workers\.greet: .*missing\.ts/);
  });
});

/** `mayfly serve …` as a subprocess, once it has printed its URL. */
async function serve(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let logs = "";
  let out = "";
  child.stderr.on("data", (d) => (logs += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\S+)/.exec(String(d));
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`serve exited early (${code}): ${logs}`)));
  });
  return { child, url, logs: () => logs, stdout: () => out };
}
