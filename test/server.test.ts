import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type AddressInfo } from "node:net";
import { createServer } from "node:http";
import { startServer, type RunningServer } from "../src/server/index.ts";

/** The server over real HTTP: runs, auth refusals, size limits, slow clients, metrics. */
let open: RunningServer;
let guarded: RunningServer;
before(async () => {
  open = await startServer({ port: 0, loader: { executors: 1 }, maxBodyBytes: 4096, headersTimeoutMs: 300, requestTimeoutMs: 1000 });
  guarded = await startServer({ port: 0, loader: { executors: 1 }, tokens: { "run-token": ["run"], "ops-token": ["metrics"] } });
});
after(async () => {
  await open.close();
  await guarded.close();
});

const hello = { worker: { mainModule: "main.ts", modules: { "main.ts": "export default { async fetch(r: Request) { console.log('hello', r.method); return Response.json({ got: await r.text() }) } }" } }, request: { method: "POST", body: "ping" } };

function post(base: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/v1/run`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

describe("POST /v1/run", () => {
  test("runs the worker once and answers with its response, logs and cost", async () => {
    const res = await post(open.url, hello);
    assert.equal(res.status, 200);
    const out = await res.json();
    assert.deepEqual(out.response.status, 200);
    assert.deepEqual(JSON.parse(out.response.body), { got: "ping" });
    assert.equal(out.outcome, "ok");
    assert.deepEqual(out.logs, [{ level: "log", message: "hello POST" }]);
    assert.ok(out.cpuMs > 0);
    assert.ok(out.memoryBytes > 100_000 && out.memoryBytes < 8 << 20, `memoryBytes ${out.memoryBytes}`);
  });

  test("memoryBytes shows what the run left allocated", async () => {
    const big = await post(open.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { fetch() { globalThis.keep = new Array(1e6).fill(1.5); return new Response('ok') } }" } } });
    const out = await big.json();
    assert.ok(out.memoryBytes > 8e6, `memoryBytes ${out.memoryBytes}`);
  });

  test("a breached limit and invalid code are reported as typed errors", async () => {
    const loop = await post(open.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { fetch() { for (;;) {} } }" }, limits: { cpuMs: 30 } } });
    assert.equal(loop.status, 422);
    const l = await loop.json();
    assert.equal(l.error.name, "CpuTimeLimitError");
    assert.equal(l.outcome, "exceededCpu");
    const invalid = await post(open.url, { worker: { mainModule: "m.js", modules: {} } });
    assert.equal(invalid.status, 400);
    assert.equal((await invalid.json()).error.name, "InvalidWorkerCodeError");
    const garbage = await post(open.url, "not json");
    assert.equal(garbage.status, 400);
  });

  test("bodies over the size limit are refused with 413", async () => {
    const res = await post(open.url, { ...hello, request: { method: "POST", body: "x".repeat(10_000) } });
    assert.equal(res.status, 413);
  });

  test("allowNet is required for any fetch", async () => {
    const res = await post(open.url, { worker: { mainModule: "m.js", modules: { "m.js": "export default { async fetch() { try { await fetch('https://example.com') } catch (e) { return new Response(e.message) } } }" } } });
    assert.match((await res.json()).response.body, /not permitted to access the internet/);
  });
});

describe("POST /v1/run with egress rules", () => {
  test("the gateway adds the rule's header; the worker reaches only the named origin", async () => {
    const seen: (string | undefined)[] = [];
    const upstream = createServer((req, res) => { seen.push(String(req.headers["x-api-key"])); res.end("upstream says hi"); });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    try {
      const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      const res = await post(open.url, {
        worker: {
          mainModule: "m.js",
          modules: { "m.js": `export default { async fetch() {
            const ok = await (await fetch("${origin}/x")).text();
            const denied = await fetch("https://example.com/").then(() => "reached", (e) => e.name);
            return Response.json({ ok, denied });
          } }` },
          egress: { allow: [{ origin, allowPrivateAddresses: true, headers: { "x-api-key": "k-123" } }] },
        },
      });
      assert.deepEqual(JSON.parse((await res.json()).response.body), { ok: "upstream says hi", denied: "EgressDeniedError" });
      assert.deepEqual(seen, ["k-123"]);
    } finally {
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});

describe("auth", () => {
  test("without a token: 401; with a token lacking the permission: 403; with the right one: 200", async () => {
    assert.equal((await post(guarded.url, hello)).status, 401);
    assert.equal((await post(guarded.url, hello, { authorization: "Bearer wrong" })).status, 401);
    assert.equal((await post(guarded.url, hello, { authorization: "Bearer ops-token" })).status, 403);
    assert.equal((await post(guarded.url, hello, { authorization: "Bearer run-token" })).status, 200);
    assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: "Bearer run-token" } })).status, 403);
    assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: "Bearer ops-token" } })).status, 200);
  });

  test("bound beyond loopback without tokens, every API request is refused", async () => {
    const exposed = await startServer({ port: 0, host: "0.0.0.0", loader: { executors: 1 } });
    try {
      const port = new URL(exposed.url).port;
      const res = await post(`http://127.0.0.1:${port}`, hello);
      assert.equal(res.status, 401);
      assert.match((await res.json()).error.message, /configure tokens/);
    } finally {
      await exposed.close();
    }
  });
});

describe("operations", () => {
  test("/openapi.json describes the API", async () => {
    const doc = await (await fetch(`${open.url}/openapi.json`)).json();
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(Object.keys(doc.paths).sort(), ["/healthz", "/metrics", "/openapi.json", "/v1/run", "/v1/scheduled/{name}", "/v1/workers", "/w/{name}/{path}"]);
    assert.ok(doc.paths["/v1/run"].post.responses["413"]);
  });

  test("/healthz and Prometheus /metrics after some runs", async () => {
    await post(open.url, hello);
    assert.deepEqual(await (await fetch(`${open.url}/healthz`)).json(), { ok: true, executors: 1 });
    const text = await (await fetch(`${open.url}/metrics`)).text();
    assert.match(text, /mayfly_runs_total\{outcome="ok"\} [1-9]/);
    assert.match(text, /mayfly_runs_total\{outcome="exceededCpu"\} 1/);
    assert.match(text, /mayfly_run_wall_seconds_bucket\{le="0.005"\}/);
    assert.match(text, /mayfly_executors 1/);
    assert.match(text, /mayfly_executor_restarts 0/);
  });

  test("a slow client that never finishes its headers is cut off", async () => {
    const { port } = new URL(open.url);
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const socket = connect(Number(port), "127.0.0.1", () => socket.write("POST /v1/run HTTP/1.1\r\nHost: x\r\n"));
      socket.on("data", () => {});
      socket.on("close", () => resolve(Date.now() - started));
      socket.on("error", () => {});
    });
    assert.ok(closedAfter < 3000, `the connection was closed after ${closedAfter} ms`);
  });
});

describe("graceful shutdown", () => {
  test("close() lets an in-flight run finish, then refuses new connections", async () => {
    const server = await startServer({ port: 0, loader: { executors: 1 } });
    const slow = { worker: { mainModule: "m.js", modules: { "m.js": "export default { async fetch() { await new Promise((r) => setTimeout(r, 300)); return new Response('finished') } }" } } };
    const inFlight = post(server.url, slow);
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal((await res.json()).response.body, "finished");
    await closing;
    await assert.rejects(fetch(`${server.url}/healthz`));
  });
});
