import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { startServer, serverOptionsFromConfig, type RunningServer } from "../src/server/index.ts";
import { parseConfig } from "../src/server/config.ts";
import { useTempDir } from "./helpers.ts";

/**
 * The server's bounds over real HTTP: ceilings on requested limits (400), body sizes (413), runs in
 * flight in total and per token (429 + Retry-After), and a run whose client disconnects is ended.
 */
const dir = useTempDir("mayfly-bounds-");
writeFileSync(join(dir, "echo.js"), "export default { async fetch(r) { return new Response(await r.text()) } }");
writeFileSync(join(dir, "spin.js"), "export default { fetch() { for (;;) {} } }");

const bounds = {
  maxCpuMs: 5_000, maxWallMs: 10_000, maxMemoryMb: 256, maxSubrequests: 20, maxOutputBytes: 1 << 20,
  maxRequestBodyBytes: 64 * 1024, maxWorkerBodyBytes: 1024, maxInFlight: 3, maxInFlightPerToken: 2, retryAfterSeconds: 2,
};
const tokens = {
  "tok-default": ["run", "workers"],
  "tok-other-1": ["run"],
  "tok-other-2": ["run"],
  "tok-big": { permissions: ["run"], bounds: { maxCpuMs: 60_000, maxInFlightPerToken: 1 } },
  "tok-small": { permissions: ["run"], bounds: { maxCpuMs: 20, maxRequestBodyBytes: 2048 } },
  "ops-token": ["metrics"],
} as const;

let server: RunningServer;
/** An open server whose ceilings are below the loader's defaults (cpuMs 1000, wallMs 30000). */
let tight: RunningServer;
before(async () => {
  server = await startServer({
    port: 0, loader: { executors: 1 }, playground: false, baseDir: dir, bounds, tokens: tokens as never,
    workers: { echo: { main: "echo.js" }, spin: { main: "spin.js", limits: { cpuMs: 5_000, wallMs: 10_000 } } },
  });
  tight = await startServer({ port: 0, loader: { executors: 1 }, playground: false, bounds: { maxCpuMs: 100, maxWallMs: 300 } });
});
after(async () => {
  await server.close();
  await tight.close();
});

const quick = { mainModule: "m.js", modules: { "m.js": "export default { fetch() { return new Response('ok') } }" } };

function run(base: string, body: unknown, token?: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${base}/v1/run`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer ops-token" } })).text();
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}
const inFlight = () => metric(/^mayfly_runs_in_flight (\d+)$/m);
const canceled = (route: string) => metric(new RegExp(`^mayfly_runs_canceled_total\\{route="${route}"\\} (\\d+)$`, "m"));

/** Polls `check` until it holds, failing after a generous `ms`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An upstream that holds every request until released: runs awaiting it stay in flight. */
async function holdingUpstream() {
  const held: ServerResponse[] = [];
  const srv = createServer((_req, res) => { held.push(res); });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const origin = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    held,
    worker: {
      mainModule: "m.js",
      modules: { "m.js": `export default { async fetch() { return new Response(await (await fetch("${origin}/")).text()) } }` },
      egress: { allow: [{ origin, allowPrivateAddresses: true }] },
    },
    release: () => { for (const res of held.splice(0)) res.end("released"); },
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

describe("ceilings on requested limits", () => {
  for (const [limit, bound, asked, ceiling] of [
    ["cpuMs", "maxCpuMs", 5_001, 5_000],
    ["wallMs", "maxWallMs", 1e9, 10_000],
    ["memoryMb", "maxMemoryMb", 257, 256],
    ["subRequests", "maxSubrequests", 21, 20],
    ["outputBytes", "maxOutputBytes", 2 << 20, 1 << 20],
  ] as const) {
    test(`limits.${limit} above ${bound} is refused with 400 naming both`, async () => {
      const res = await run(server.url, { worker: { ...quick, limits: { [limit]: asked } } }, "tok-default");
      assert.equal(res.status, 400);
      assert.deepEqual((await res.json()).error, {
        name: "LimitAboveCeilingError", message: `limits.${limit} ${asked} is above this server's ceiling of ${ceiling} (${bound}).`,
        limit, bound, requested: asked, ceiling,
      });
    });
  }

  test("a limit JSON can only spell as Infinity (1e999) is refused too", async () => {
    const res = await run(server.url, `{"worker":{"mainModule":"m.js","modules":{"m.js":"export default {}"},"limits":{"cpuMs":1e999}}}`, "tok-default");
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.name, "BadRequest");
  });

  test("limits at the ceilings run", async () => {
    const res = await run(server.url, { worker: { ...quick, limits: { cpuMs: 5_000, wallMs: 10_000, memoryMb: 256, subRequests: 20 } } }, "tok-default");
    assert.equal(res.status, 200);
    assert.equal((await res.json()).response.body, "ok");
  });

  test("a run without limits gets the defaults capped by the ceilings", async () => {
    const spin = await run(tight.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { fetch() { for (;;) {} } }" } } });
    assert.equal(spin.status, 422);
    assert.equal((await spin.json()).error.message, "Worker exceeded CPU time limit of 100 ms.");
    const wait = await run(tight.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { async fetch() { await new Promise((r) => setTimeout(r, 5000)); return new Response('late') } }" } } });
    assert.equal(wait.status, 422);
    assert.equal((await wait.json()).error.message, "Worker exceeded wall-clock time limit of 300 ms.");
  });

  test("a token's own bounds replace the server's, upwards or downwards", async () => {
    const asked = { worker: { ...quick, limits: { cpuMs: 50_000 } } };
    assert.equal((await run(server.url, asked, "tok-big")).status, 200);
    assert.equal((await run(server.url, asked, "tok-default")).status, 400);
    const small = await run(server.url, { worker: { ...quick, limits: { cpuMs: 50 } } }, "tok-small");
    assert.equal(small.status, 400);
    assert.equal((await small.json()).error.ceiling, 20);
    assert.equal((await run(server.url, { worker: { ...quick, limits: { cpuMs: 50 } } }, "tok-default")).status, 200);
  });
});

describe("body sizes", () => {
  test("a /v1/run body above maxRequestBodyBytes is refused with 413 naming the bound", async () => {
    const res = await run(server.url, { worker: quick, request: { method: "POST", body: "x".repeat(70 * 1024) } }, "tok-default");
    assert.equal(res.status, 413);
    assert.deepEqual((await res.json()).error, { name: "PayloadTooLarge", message: "Request bodies are limited to 65536 bytes (maxRequestBodyBytes).", bound: "maxRequestBodyBytes", ceiling: 65536 });
    // tok-small's own bound is 2048 bytes: what the server's bound lets through is too large for it.
    const small = await run(server.url, { worker: quick, request: { method: "POST", body: "x".repeat(4096) } }, "tok-small");
    assert.equal(small.status, 413);
    assert.equal((await small.json()).error.ceiling, 2048);
  });

  test("a named worker's request body above maxWorkerBodyBytes is refused with 413; below it, it arrives", async () => {
    const auth = { authorization: "Bearer tok-default" };
    const big = await fetch(`${server.url}/w/echo/`, { method: "POST", headers: auth, body: "y".repeat(2048) });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.bound, "maxWorkerBodyBytes");
    const ok = await fetch(`${server.url}/w/echo/`, { method: "POST", headers: auth, body: "y".repeat(1000) });
    assert.equal(await ok.text(), "y".repeat(1000));
  });
});

describe("runs in flight", () => {
  test("past maxInFlightPerToken and maxInFlight: 429 with Retry-After, on /v1/run and /w/<name>; released slots admit again", async () => {
    const up = await holdingUpstream();
    try {
      const runs = [run(server.url, { worker: up.worker }, "tok-default"), run(server.url, { worker: up.worker }, "tok-default")];
      await waitFor("two held runs", () => up.held.length === 2);
      const third = await run(server.url, { worker: quick }, "tok-default");
      assert.equal(third.status, 429);
      assert.equal(third.headers.get("retry-after"), "2");
      assert.deepEqual((await third.json()).error, { name: "TooManyRunsError", message: "This token already has 2 runs in flight (maxInFlightPerToken); retry later.", bound: "maxInFlightPerToken", ceiling: 2 });
      const named = await fetch(`${server.url}/w/echo/`, { headers: { authorization: "Bearer tok-default" } });
      assert.equal(named.status, 429);
      assert.equal((await named.json()).error.bound, "maxInFlightPerToken");

      runs.push(run(server.url, { worker: up.worker }, "tok-other-1"));
      await waitFor("three held runs", () => up.held.length === 3);
      const fourth = await run(server.url, { worker: quick }, "tok-other-2");
      assert.equal(fourth.status, 429);
      assert.equal(fourth.headers.get("retry-after"), "2");
      assert.deepEqual((await fourth.json()).error, { name: "TooManyRunsError", message: "This server already runs 3 workers (maxInFlight); retry later.", bound: "maxInFlight", ceiling: 3 });

      up.release();
      for (const res of await Promise.all(runs)) assert.equal((await res.json()).response.body, "released");
      assert.equal((await run(server.url, { worker: quick }, "tok-other-2")).status, 200);
      assert.equal((await fetch(`${server.url}/w/echo/`, { headers: { authorization: "Bearer tok-default" } })).status, 200);
      assert.ok(await metric(/^mayfly_requests_refused_total\{bound="maxInFlight"\} (\d+)$/m) >= 1);
    } finally {
      up.release();
      await up.close();
    }
  });

  test("a token's own maxInFlightPerToken applies to it", async () => {
    const up = await holdingUpstream();
    try {
      const held = run(server.url, { worker: up.worker }, "tok-big");
      await waitFor("a held run", () => up.held.length === 1);
      const second = await run(server.url, { worker: quick }, "tok-big");
      assert.equal(second.status, 429);
      assert.equal((await second.json()).error.ceiling, 1);
      up.release();
      assert.equal((await held).status, 200);
    } finally {
      up.release();
      await up.close();
    }
  });
});

/** CPU seconds the executors used over `ms` (Linux /proc; utime + stime of each process). */
async function executorCpuMs(ms: number): Promise<number> {
  const pids = server.loader.engine.stats().executors.map((e) => e.pid);
  const ticks = () => pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return sum + Number(fields[11]) + Number(fields[12]);
  }, 0);
  const before = ticks();
  await new Promise((r) => setTimeout(r, ms));
  return ((ticks() - before) * 1000) / 100; // USER_HZ is 100 on Linux
}

describe("a client that disconnects", () => {
  for (const [route, start] of [
    ["run", (signal: AbortSignal) => run(server.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { fetch() { for (;;) {} } }" }, limits: { cpuMs: 5_000, wallMs: 10_000 } } }, "tok-default", signal)],
    ["worker", (signal: AbortSignal) => fetch(`${server.url}/w/spin/`, { headers: { authorization: "Bearer tok-default" }, signal })],
  ] as const) {
    test(`ends its run (${route === "run" ? "/v1/run" : "/w/<name>"}): counted as canceled, nothing left in flight, the executor idle`, async () => {
      const before = await canceled(route);
      const client = new AbortController();
      const pending = start(client.signal).catch((e: Error) => e.name);
      await waitFor("the spinning run", async () => (await inFlight()) === 1);
      client.abort();
      assert.equal(await pending, "AbortError");
      // The run may spin for 5 s of CPU: in flight and busy well past these waits unless it was ended.
      await waitFor("the run to be canceled", async () => (await canceled(route)) === before + 1, 3_000);
      await waitFor("no runs in flight", async () => (await inFlight()) === 0, 3_000);
      if (existsSync("/proc/self/stat")) {
        const cpu = await executorCpuMs(1_000);
        assert.ok(cpu < 500, `executors used ${cpu} ms of CPU in 1 s after the disconnect`);
      }
    });
  }
});

describe("bounds in the config file", () => {
  test("a bounds section and per-token bounds are read; flags override single bounds", () => {
    const config = parseConfig({
      bounds: { maxCpuMs: 1000, maxInFlight: 8 },
      tokens: { "${SECRET_TOKEN}": { permissions: ["run"], bounds: { maxInFlightPerToken: 1 } }, "plain-token": ["run"] },
    }, dir, { SECRET_TOKEN: "secret-token" });
    assert.deepEqual(config.tokens, { "secret-token": { permissions: ["run"], bounds: { maxInFlightPerToken: 1 } }, "plain-token": ["run"] });
    const opts = serverOptionsFromConfig(config, { bounds: { maxCpuMs: 2000, maxWallMs: undefined } });
    assert.deepEqual(opts.bounds, { maxCpuMs: 2000, maxInFlight: 8 });
  });

  test("a bad bound stops startup with a ConfigError naming it", async () => {
    assert.throws(() => parseConfig({ bounds: { maxCpuMs: -1 } }, dir), { name: "ConfigError", message: /bounds\.maxCpuMs/ });
    assert.throws(() => parseConfig({ bounds: { maxCpu: 5 } }, dir), { name: "ConfigError" });
    // The total cap is the server's alone, not a token's.
    assert.throws(() => parseConfig({ tokens: { "some-token": { permissions: ["run"], bounds: { maxInFlight: 5 } } } }, dir), { name: "ConfigError" });
    await assert.rejects(startServer({ port: 0, bounds: { maxInFlight: 0 } }), { name: "ConfigError", message: /bounds\.maxInFlight/ });
  });
});
