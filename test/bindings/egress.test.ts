import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { EgressDeniedError, egress, type EgressPolicy } from "../../src/index.ts";
import { responseJson, useLoader, worker } from "../helpers.ts";

/**
 * A hostile suite against the egress gateway: every refused request must send nothing to the denied
 * address, which a local listener verifies by counting connections.
 */
const ctx = useLoader({ executors: 1 });
let server: Server;
let port = 0;
let connections = 0;
const seen: { url: string; authorization?: string; cookie?: string }[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization, cookie: req.headers.cookie });
    const path = req.url!;
    if (path === "/redirect-out") return res.writeHead(302, { location: `http://127.0.0.1:${port}/echo` }).end();
    if (path === "/redirect-same") return res.writeHead(302, { location: "/echo" }).end();
    if (path === "/redirect-userinfo") return res.writeHead(302, { location: `http://allowed.test@evil.test:${port}/echo` }).end();
    if (path === "/redirect-other") return res.writeHead(307, { location: `http://other.test:${port}/echo` }).end();
    if (path === "/big") return res.end(Buffer.alloc(200_000));
    if (path === "/slow") return void setTimeout(() => res.end("slow"), 150);
    if (path === "/count") {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      return void req.on("end", () => res.end(JSON.stringify({ bytes })));
    }
    if (path.startsWith("/stream")) return streamMegabytes(res, Number(new URL(path, "http://x").searchParams.get("mb")));
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => res.end(JSON.stringify({ method: req.method, url: path, authorization: req.headers.authorization ?? null, body })));
  });
  server.on("connection", () => connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

/** `mb` MiB in 64 KiB chunks, chunked (no content-length), written as the client reads; records a cut-off. */
let streamsCut = 0;
function streamMegabytes(res: import("node:http").ServerResponse, mb: number): void {
  const chunk = Buffer.alloc(64 * 1024, 120);
  let left = mb * 16;
  res.on("close", () => { if (left > 0) streamsCut++; });
  const write = () => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) return void res.once("drain", write);
    }
    res.end();
  };
  write();
}

/** Names resolve through this stub: everything points at the local listener. */
const lookup = async (host: string) => (host.endsWith(".test") ? [{ address: "127.0.0.1", family: 4 as const }] : []);

function policy(extra: Partial<EgressPolicy> = {}): EgressPolicy {
  return {
    allow: [
      { origin: `http://allowed.test:${port}`, methods: ["GET", "POST"], headers: { authorization: "Bearer SECRET" }, allowPrivateAddresses: true },
      { origin: `http://other.test:${port}`, allowPrivateAddresses: true },
      { origin: `http://*.wild.test:${port}` },
      { origin: "https://secure.test" },
    ],
    lookup,
    ...extra,
  };
}

/** Runs fetch(url, init) in a worker whose globalOutbound is the gateway; returns what the guest saw. */
async function guestFetch(url: string, init: Record<string, unknown> = {}, extra: { policy?: Partial<EgressPolicy>; limits?: Record<string, number>; times?: number } = {}): Promise<any> {
  const stub = ctx.loader.load(worker(`export default { async fetch(request, env) {
    const out = [];
    for (let i = 0; i < ${extra.times ?? 1}; i++) {
      try { const r = await fetch(${JSON.stringify(url)}, ${JSON.stringify(init)}); out.push({ status: r.status, body: await r.text() }) }
      catch (e) { out.push({ error: e.name, message: e.message }) }
    }
    return Response.json({ out, envKeys: Object.keys(env) });
  } }`, { globalOutbound: egress(policy(extra.policy)), limits: extra.limits }));
  return responseJson(await stub.getEntrypoint().fetch("http://w/"));
}

async function refusedWithoutConnecting(url: string, rule: RegExp, init: Record<string, unknown> = {}): Promise<void> {
  const before = connections;
  const { out } = await guestFetch(url, init);
  assert.equal(out[0].error, "EgressDeniedError", `${url}: ${JSON.stringify(out[0])}`);
  assert.match(out[0].message, rule);
  assert.equal(connections, before, `nothing was sent for ${url}`);
}

describe("egress gateway: allowed traffic", () => {
  test("an allowed origin is reached; the rule's secret is injected and never visible to the worker", async () => {
    const { out, envKeys } = await guestFetch(`http://allowed.test:${port}/echo?x=1`, { method: "POST", body: "hi" });
    assert.equal(out[0].status, 200);
    assert.deepEqual(JSON.parse(out[0].body), { method: "POST", url: "/echo?x=1", authorization: "Bearer SECRET", body: "hi" });
    assert.deepEqual(envKeys, []);
  });

  test("a same-origin redirect is followed (and checked again)", async () => {
    const { out } = await guestFetch(`http://allowed.test:${port}/redirect-same`);
    assert.equal(JSON.parse(out[0].body).url, "/echo");
  });

  test("credentials and injected secrets are dropped when a redirect changes origin", async () => {
    seen.length = 0;
    const { out } = await guestFetch(`http://allowed.test:${port}/redirect-other`, { headers: { cookie: "a=1" } });
    assert.equal(out[0].status, 200);
    assert.equal(seen[0]!.authorization, "Bearer SECRET");
    assert.equal(seen[1]!.authorization, undefined);
    assert.equal(seen[1]!.cookie, undefined);
  });
});

describe("egress gateway: hostile requests are refused with nothing sent", () => {
  test("IPv4 in octal, hex and short notation, IPv4-mapped IPv6, loopback, metadata", async () => {
    for (const url of [`http://0177.0.0.1:${port}/echo`, `http://0x7f.1:${port}/echo`, `http://[::ffff:127.0.0.1]:${port}/echo`, `http://127.0.0.1:${port}/echo`, `http://[::1]:${port}/echo`, "http://169.254.169.254/latest/meta-data/"]) {
      await refusedWithoutConnecting(url, /allow-list/);
    }
  });

  test("a name on the allow-list that resolves to a private address (DNS stub) is refused", async () => {
    await refusedWithoutConnecting(`http://rebind.wild.test:${port}/echo`, /private-address.*127\.0\.0\.1/);
  });

  test("userinfo in the URL is refused (https://allowed@evil)", async () => {
    // The worker's Request already refuses it (Fetch §5.4 step 5.4: a TypeError); nothing leaves.
    const before = connections;
    const { out } = await guestFetch(`http://allowed.test@evil.test:${port}/echo`);
    assert.equal(out[0].error, "TypeError");
    assert.equal(connections, before);
    // A redirect that carries userinfo reaches the gateway's own check.
    const hop = await guestFetch(`http://allowed.test:${port}/redirect-userinfo`);
    assert.equal(hop.out[0].error, "EgressDeniedError");
    assert.match(hop.out[0].message, /userinfo/);
    assert.equal(connections - before, 1, "only the first hop went out");
  });

  test("https is allowed on its default port only, unless the rule names another", async () => {
    await refusedWithoutConnecting("https://secure.test:8443/", /allow-list/);
    await refusedWithoutConnecting(`http://secure.test/`, /allow-list/);
  });

  test("a method the rule does not allow is refused", async () => {
    await refusedWithoutConnecting(`http://allowed.test:${port}/echo`, /methods/, { method: "DELETE" });
  });

  test("forbidden headers are refused; CR/LF never reaches the wire", async () => {
    await refusedWithoutConnecting(`http://allowed.test:${port}/echo`, /headers/, { headers: { "proxy-authorization": "x" } });
    const before = connections;
    const { out } = await guestFetch(`http://allowed.test:${port}/echo`, { headers: { "x-a": "ok\r\nHost: evil" } });
    assert.equal(out[0].error, "TypeError");
    assert.equal(connections, before);
  });

  test("a redirect to a denied origin is refused at the hop; only the first request went out", async () => {
    const before = connections;
    const { out } = await guestFetch(`http://allowed.test:${port}/redirect-out`);
    assert.equal(out[0].error, "EgressDeniedError");
    assert.match(out[0].message, /allow-list/);
    assert.equal(connections - before, 1);
  });

  test("oversized request bodies are refused before sending; oversized responses are cut", async () => {
    const before = connections;
    const { out } = await guestFetch(`http://allowed.test:${port}/echo`, { method: "POST", body: "x".repeat(5000) }, { policy: { maxRequestBytes: 1000 } });
    assert.match(out[0].message, /maxRequestBytes/);
    assert.equal(connections, before);
    const big = await guestFetch(`http://allowed.test:${port}/big`, {}, { policy: { maxResponseBytes: 50_000 } });
    assert.match(big.out[0].message, /maxResponseBytes/);
  });

  test("a large unsized response streams through an isolate smaller than it, as the guest reads", async () => {
    const stub = ctx.loader.load(worker(`export default { async fetch() {
      const res = await fetch("http://allowed.test:${port}/stream?mb=48");
      let bytes = 0;
      for await (const chunk of res.body) bytes += chunk.byteLength;
      return Response.json({ bytes });
    } }`, { globalOutbound: egress(policy({ maxResponseBytes: 64 << 20 })), limits: { memoryMb: 16 } }));
    assert.deepEqual(await responseJson(await stub.getEntrypoint().fetch("http://w/")), { bytes: 48 << 20 });
  });

  test("a streamed response past maxResponseBytes fails the read with EgressDeniedError", async () => {
    const { out } = await guestFetch(`http://allowed.test:${port}/stream?mb=4`, {}, { policy: { maxResponseBytes: 1 << 20 } });
    assert.equal(out[0].error, "EgressDeniedError");
    assert.match(out[0].message, /maxResponseBytes/);
  });

  test("a body the worker cancels, or leaves unread, is cut off at the origin", async () => {
    const before = streamsCut;
    const stub = ctx.loader.load(worker(`export default { async fetch() {
      const a = await fetch("http://allowed.test:${port}/stream?mb=64");
      const reader = a.body.getReader();
      await reader.read();
      await reader.cancel();
      await fetch("http://allowed.test:${port}/stream?mb=64"); // never read
      return new Response("done");
    } }`, { globalOutbound: egress(policy({ maxResponseBytes: 128 << 20 })) }));
    assert.equal(await (await stub.getEntrypoint().fetch("http://w/")).text(), "done");
    stub.dispose();
    for (let i = 0; i < 100 && streamsCut < before + 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(streamsCut, before + 2);
  });

  test("a streamed request body goes out without the isolate holding it; past maxRequestBytes it is refused", async () => {
    // The worker forwards its own 40 MiB request body (streamed in from the host) to the origin.
    const forward = (maxRequestBytes: number) => ctx.loader.load(worker(`export default { async fetch(request) {
      try {
        const res = await fetch("http://allowed.test:${port}/count", { method: "POST", body: request.body });
        return new Response(await res.text());
      } catch (e) { return new Response(e.name + ": " + e.message) }
    } }`, { globalOutbound: egress(policy({ maxRequestBytes })), limits: { memoryMb: 16 } }));
    const body = () => new ReadableStream<Uint8Array>({
      start() { this.left = 640; },
      pull(c) { if ((this as { left: number }).left-- > 0) c.enqueue(new Uint8Array(64 * 1024).fill(1)); else c.close(); },
    } as UnderlyingDefaultSource<Uint8Array> & { left?: number });
    const sent = await forward(64 << 20).getEntrypoint().fetch("http://w/", { method: "POST", body: body(), duplex: "half" } as RequestInit);
    assert.deepEqual(JSON.parse(await sent.text()), { bytes: 40 << 20 });
    const refused = await forward(1 << 20).getEntrypoint().fetch("http://w/", { method: "POST", body: body(), duplex: "half" } as RequestInit);
    assert.match(await refused.text(), /^EgressDeniedError: .*maxRequestBytes/);
  });

  test("a worker can pass a streamed response straight through as its own", async () => {
    const stub = ctx.loader.load(worker(`export default { fetch() { return fetch("http://allowed.test:${port}/stream?mb=8") } }`, { globalOutbound: egress(policy({ maxResponseBytes: 16 << 20 })), limits: { memoryMb: 16 } }));
    const res = await stub.getEntrypoint().fetch("http://w/");
    assert.equal((await res.arrayBuffer()).byteLength, 8 << 20);
  });

  test("requests past the gateway's concurrency cap are refused; a slow origin hits the time cap", async () => {
    const stub = ctx.loader.load(worker(`export default { async fetch() {
      const url = "http://allowed.test:${port}/slow";
      const settled = await Promise.allSettled([fetch(url), fetch(url)]);
      return Response.json(settled.map((s) => s.status === "fulfilled" ? s.value.status : s.reason.name + ": " + s.reason.message));
    } }`, { globalOutbound: egress(policy({ maxConcurrent: 1 })) }));
    const out = await responseJson(await stub.getEntrypoint().fetch("http://w/"));
    assert.equal(out.filter((x: unknown) => x === 200).length, 1);
    assert.match(out.find((x: unknown) => x !== 200), /EgressDeniedError: .*maxConcurrent/);
    const timed = await guestFetch(`http://allowed.test:${port}/slow`, {}, { policy: { timeoutMs: 50 } });
    assert.match(timed.out[0].message, /timeoutMs/);
  });

  test("more subrequests than limits.subRequests are refused", async () => {
    const { out } = await guestFetch(`http://allowed.test:${port}/echo`, {}, { limits: { subRequests: 2 }, times: 4 });
    assert.deepEqual(out.map((o: { status?: number; error?: string }) => o.status ?? o.error), [200, 200, "EgressDeniedError", "EgressDeniedError"]);
  });

  test("the host can use a gateway directly; refusals are EgressDeniedError with the rule", async () => {
    const gateway = egress(policy());
    await assert.rejects(gateway.fetch(new Request(`http://127.0.0.1:${port}/`)), (e: Error) => e instanceof EgressDeniedError && (e as EgressDeniedError).rule === "allow-list");
  });
});
