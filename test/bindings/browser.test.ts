import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { browser, egress, type BrowserBinding, type EgressDecision } from "../../src/index.ts";
import { responseJson, useLoader, worker } from "../helpers.ts";

/**
 * The browser binding against two local listeners: "allowed.test" (on the allow-list, private
 * addresses allowed for it) serves the pages; "denied.test" and 127.0.0.1 point at a second listener
 * that nothing may reach, which counts every connection and upgrade it gets.
 */
const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the browser binding's tests`;

const ctx = useLoader({ executors: 1 });
let allowed: Server;
let denied: Server;
let ap = 0;
let dp = 0;
let deniedConnections = 0;
let allowedUpgrades = 0;
const cookiesSeen: string[] = [];
const decisions: EgressDecision[] = [];
let BROWSER: BrowserBinding;

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
}

function page(req: IncomingMessage): { status?: number; headers?: Record<string, string>; body?: string } {
  const url = req.url!;
  const html = (body: string, title = "t") => ({ headers: { "content-type": "text/html" }, body: `<!doctype html><title>${title}</title><body style="margin:0">${body}</body>` });
  if (url === "/box") return html(`<div id="box" style="width:100px;height:50px;background:#c00"></div><input id="name"><button id="go" onclick="document.title='clicked:'+document.getElementById('name').value">go</button>`, "box");
  if (url === "/links") return html(`<a id="same" href="/redirect-same">same</a><a id="out" href="/redirect-out">out</a><a id="loop" href="/loop">loop</a>`, "links");
  if (url === "/many") return html(Array.from({ length: 40 }, (_, i) => `<img src="/dot.svg?${i}">`).join(""), "many");
  if (url.startsWith("/dot.svg")) return { headers: { "content-type": "image/svg+xml" }, body: `<svg xmlns="http://www.w3.org/2000/svg" width="3" height="2"></svg>` };
  if (url === "/big") return html(`<p>${"x".repeat(4000)}</p>`, "big");
  if (url === "/spoof") return { ...html("spoof"), headers: { "content-type": "text/html", "x-mayfly-redirect": `http://allowed.test:${ap}/box` } };
  if (url === "/loop") return { status: 302, headers: { location: "/loop" } };
  if (url === "/redirect-same") return { status: 302, headers: { location: "/box" } };
  if (url === "/redirect-out") return { status: 302, headers: { location: `http://denied.test:${dp}/` } };
  if (url === "/set-cookie") return { ...html("cookie set"), headers: { "content-type": "text/html", "set-cookie": "run=first; Path=/" } };
  if (url === "/hostile") {
    // Each way a page can reach the network by itself: an image, fetch(), a WebSocket, to the denied name and to the loopback address.
    return html(`<img src="http://denied.test:${dp}/a.png"><img src="http://127.0.0.1:${dp}/b.png"><img src="http://169.254.169.254/latest/meta-data/">
      <script>
        window.results = Promise.all([
          fetch("http://denied.test:${dp}/f").then(() => "reached", (e) => "refused"),
          fetch("http://127.0.0.1:${dp}/f").then(() => "reached", (e) => "refused"),
          new Promise((r) => {
            const w = new Worker(URL.createObjectURL(new Blob(["fetch('http://denied.test:${dp}/w').then(() => postMessage('reached'), () => postMessage('refused'))"])));
            w.onmessage = (m) => r(m.data);
          }),
          ...["ws://denied.test:${dp}/ws", "ws://127.0.0.1:${dp}/ws", "ws://allowed.test:${ap}/ws"].map((u) => new Promise((r) => {
            const ws = new WebSocket(u);
            ws.onmessage = () => r("reached");
            ws.onclose = ws.onerror = () => r("refused");
          })),
        ]);
      </script>`, "hostile");
  }
  return { status: 404, body: "no such page" };
}

before(async () => {
  if (skip) return;
  allowed = createServer((req, res) => {
    if (req.headers.cookie) cookiesSeen.push(req.headers.cookie);
    const p = page(req);
    res.writeHead(p.status ?? 200, p.headers ?? {}).end(p.body ?? "");
  });
  allowed.on("upgrade", (_req, socket) => { allowedUpgrades++; socket.destroy(); });
  denied = createServer((_req, res) => res.end("secret"));
  denied.on("connection", () => deniedConnections++);
  denied.on("upgrade", (_req, socket) => socket.destroy());
  [ap, dp] = await Promise.all([listen(allowed), listen(denied)]);
  BROWSER = browser({
    egress: egress({
      allow: [{ origin: `http://allowed.test:${ap}`, allowPrivateAddresses: true }],
      lookup: async (host) => (host.endsWith(".test") ? [{ address: "127.0.0.1", family: 4 }] : []),
      onDecision: (d) => decisions.push(d),
    }),
    maxPages: 2,
    executablePath: CHROMIUM,
    // Chromium refuses its OS sandbox to root; a test run as any other user keeps it.
    sandbox: process.getuid?.() !== 0,
    viewport: { width: 640, height: 480 },
    navigationTimeoutMs: 10_000,
    actionTimeoutMs: 5_000,
  });
});

after(async () => {
  await BROWSER?.close();
  allowed?.close();
  denied?.close();
});

/** Loads a worker whose fetch handler is `body` (with `env`, `base` the allowed origin, `out` returned as JSON). */
function browserWorker(body: string, env: Record<string, unknown> = { BROWSER }) {
  return ctx.loader.load(worker(`export default { async fetch(request, env) {
    const base = "http://allowed.test:${ap}";
    const denied = "http://denied.test:${dp}";
    const error = (e) => ({ name: e.name, message: e.message });
    ${body}
  } };`, { env, limits: { wallMs: 30_000 } }));
}

async function run(body: string): Promise<any> {
  const stub = browserWorker(body);
  try {
    return await responseJson(await stub.getEntrypoint().fetch("http://worker/"));
  } finally {
    stub.dispose();
  }
}

describe("browser binding (Tier 3)", { skip }, () => {
  test("a worker screenshots an allowed page and gets a PNG of the viewport", async () => {
    const out = await run(`
      const page = await env.BROWSER.newPage();
      const nav = await page.goto(base + "/box");
      const png = await page.screenshot();
      return Response.json({ nav, isBytes: png instanceof Uint8Array, bytes: Array.from(png.subarray(0, 24)), size: png.byteLength });
    `);
    assert.equal(out.nav.status, 200);
    assert.equal(out.isBytes, true);
    const head = Buffer.from(out.bytes);
    assert.deepEqual([...head.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
    assert.equal(head.subarray(12, 16).toString("latin1"), "IHDR");
    assert.deepEqual([head.readUInt32BE(16), head.readUInt32BE(20)], [640, 480], "the binding's viewport");
    assert.ok(out.size > 100);
  });

  test("content, evaluate, click, type and waitForSelector act on the page", async () => {
    const out = await run(`
      const page = await env.BROWSER.newPage();
      await page.goto(base + "/box");
      const html = await page.content();
      await page.waitForSelector("#box");
      const sum = await page.evaluate((a, b) => a + b + ":" + document.getElementById("box").offsetWidth, 2, 3);
      const expr = await page.evaluate("document.title");
      await page.type("#name", "mayfly");
      await page.click("#go");
      const title = await page.title();
      const missing = await page.waitForSelector("#nope", { timeout: 200 }).then(() => "found", error);
      const thrown = await page.evaluate(() => { throw new Error("boom in the page"); }).then(() => "returned", error);
      return Response.json({ hasBox: html.includes('id="box"'), sum, expr, title, missing, thrown });
    `);
    assert.equal(out.hasBox, true);
    assert.equal(out.sum, "5:100");
    assert.equal(out.expr, "box");
    assert.equal(out.title, "clicked:mayfly");
    assert.equal(out.missing.name, "TimeoutError");
    assert.doesNotMatch(out.missing.message, /\n/, "Playwright's call log stays on the host");
    assert.match(out.thrown.message, /boom in the page/);
    assert.doesNotMatch(out.thrown.message, /\n/);
  });

  test("a page's many requests wait their turn instead of passing the gateway's concurrency cap", async () => {
    const out = await run(`
      const page = await env.BROWSER.newPage();
      await page.goto(base + "/many");
      return Response.json(await page.evaluate(() => [...document.images].filter((i) => i.complete && i.naturalWidth === 3).length));
    `);
    assert.equal(out, 40);
  });

  test("a redirect within the allowed origin is followed by the browser, each hop through the gateway", async () => {
    decisions.length = 0;
    const out = await run(`
      const page = await env.BROWSER.newPage();
      const nav = await page.goto(base + "/redirect-same");
      const url = await page.url();
      // A redirect of a navigation the page makes itself (a link), not goto's.
      await page.goto(base + "/links");
      await page.click("#same");
      await page.waitForSelector("#box");
      const clicked = await page.url();
      // Only the host marks a redirect: an origin's own marker header is dropped.
      const spoof = await page.goto(base + "/spoof");
      return Response.json({ nav, url, clicked, spoof });
    `);
    assert.equal(out.nav.status, 200);
    assert.equal(out.url, `http://allowed.test:${ap}/box`);
    assert.equal(out.clicked, `http://allowed.test:${ap}/box`);
    assert.deepEqual(out.spoof, { status: 200, url: `http://allowed.test:${ap}/spoof` });
    assert.deepEqual(decisions.filter((d) => d.allowed).map((d) => new URL(d.url).pathname), ["/redirect-same", "/box", "/links", "/redirect-same", "/box", "/spoof"]);
  });

  test("a redirect loop ends at the redirect cap, whether goto or the page follows it", async () => {
    const out = await run(`
      const page = await env.BROWSER.newPage();
      const driven = await page.goto(base + "/loop").then((r) => r, error);
      await page.goto(base + "/links");
      await page.click("#loop");
      await page.waitForSelector("text=maxRedirects", { timeout: 4000 });
      return Response.json({ driven, shown: await page.content() });
    `);
    assert.equal(out.driven.name, "EgressDeniedError");
    assert.match(out.driven.message, /maxRedirects/);
    assert.match(out.shown, /Egress denied \(maxRedirects\)/);
  });

  test("a page reaches no denied origin, loopback or metadata address: images, fetch, WebSockets, redirects", async () => {
    decisions.length = 0;
    const before = deniedConnections;
    const out = await run(`
      const page = await env.BROWSER.newPage();
      await page.goto(base + "/hostile");
      const results = await page.evaluate("window.results");
      const redirect = await page.goto(base + "/redirect-out").then((r) => r, error);
      const direct = await page.goto(denied + "/").then((r) => r, error);
      const loopback = await page.goto("http://127.0.0.1:${dp}/").then((r) => r, error);
      const file = await page.goto("file:///etc/passwd").then((r) => r, error);
      const chrome = await page.goto("chrome://version").then((r) => r, error);
      await page.goto(base + "/links");
      await page.click("#out");
      await new Promise((r) => setTimeout(r, 500));
      return Response.json({ results, redirect, direct, loopback, file, chrome, after: await page.content() });
    `);
    assert.deepEqual(out.results, ["refused", "refused", "refused", "refused", "refused", "refused"]);
    for (const k of ["redirect", "direct", "loopback", "file", "chrome"]) assert.equal(out[k].name, "EgressDeniedError", `${k}: ${JSON.stringify(out[k])}`);
    assert.match(out.redirect.message, /allow-list/);
    assert.match(out.file.message, /scheme/);
    assert.match(out.after, /Egress denied \(allow-list\)/, "a link's redirect to a denied origin shows the refusal");
    assert.doesNotMatch(out.after, /secret/);
    assert.equal(decisions.filter((d) => !d.allowed && d.url === `http://denied.test:${dp}/`).length, 3, "goto's redirect, goto, and the link's redirect were refused");
    assert.equal(deniedConnections - before, 0, "the denied listener was never connected to");
    assert.equal(allowedUpgrades, 0, "no WebSocket reached even the allowed origin");
    const refused = decisions.filter((d) => !d.allowed);
    for (const u of [`http://denied.test:${dp}/a.png`, `http://127.0.0.1:${dp}/b.png`, "http://169.254.169.254/latest/meta-data/", `http://denied.test:${dp}/f`, `http://denied.test:${dp}/w`, `http://denied.test:${dp}/`]) {
      assert.ok(refused.some((d) => d.url === u), `onDecision heard the refusal of ${u}`);
    }
    assert.ok(refused.some((d) => d.rule === "websocket"), "WebSockets are refused and audited");
  });

  test("each run gets a fresh context: cookies and localStorage of one run are gone in the next", async () => {
    const stub = browserWorker(`
      const page = await env.BROWSER.newPage();
      await page.goto(base + "/box");
      const before = await page.evaluate(() => ({ cookie: document.cookie, stored: localStorage.getItem("k") }));
      if (new URL(request.url).pathname === "/first") {
        await page.goto(base + "/set-cookie");
        await page.evaluate(() => localStorage.setItem("k", "v"));
      }
      await page.goto(base + "/box");
      const after = await page.evaluate(() => ({ cookie: document.cookie, stored: localStorage.getItem("k") }));
      return Response.json({ before, after });
    `);
    try {
      cookiesSeen.length = 0;
      // The same warm instance serves both runs: only the run boundary separates them.
      const first = await responseJson(await stub.getEntrypoint().fetch("http://worker/first"));
      assert.deepEqual(first.before, { cookie: "", stored: null });
      assert.deepEqual(first.after, { cookie: "run=first", stored: "v" }, "within a run, the context keeps cookies and storage");
      assert.deepEqual(cookiesSeen, ["run=first"], "the cookie was sent to the origin within the run");
      const second = await responseJson(await stub.getEntrypoint().fetch("http://worker/second"));
      assert.deepEqual(second, { before: { cookie: "", stored: null }, after: { cookie: "", stored: null } });
      assert.deepEqual(cookiesSeen, ["run=first"], "the second run sent no cookie");
      // The context goes when the run ends (after its response), not when the worker is disposed.
      const chromium = await BROWSER.launch();
      for (let i = 0; i < 50 && chromium.contexts().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(chromium.contexts().length, 0, "no context outlives its run");
    } finally {
      stub.dispose();
    }
  });

  test("pages per run are capped; the cap starts again with the next run", async () => {
    const body = `
      const a = await env.BROWSER.newPage();
      const b = await env.BROWSER.newPage();
      const c = await env.BROWSER.newPage().then(() => "opened", error);
      return Response.json({ c });
    `;
    const stub = browserWorker(body);
    try {
      for (let i = 0; i < 2; i++) {
        const out = await responseJson(await stub.getEntrypoint().fetch("http://worker/"));
        assert.equal(out.c.name, "BrowserLimitError");
        assert.match(out.c.message, /at most 2 pages/);
      }
    } finally {
      stub.dispose();
    }
  });

  test("pages a page opens itself count toward maxPages, and past it are closed", async () => {
    const out = await run(`
      const page = await env.BROWSER.newPage();
      await page.goto(base + "/box");
      await page.evaluate(() => { window.opened = [0, 1, 2, 3].map((i) => window.open("/box?" + i)); });
      await new Promise((r) => setTimeout(r, 1500));
      const closed = await page.evaluate(() => window.opened.map((w) => w.closed));
      return Response.json({ closed, next: await env.BROWSER.newPage().then(() => "opened", error) });
    `);
    assert.deepEqual(out.closed, [false, true, true, true], "maxPages 2: this page and the first popup");
    assert.equal(out.next.name, "BrowserLimitError");
  });

  test("a run's pages receive at most maxBytes; the next request is refused", async () => {
    const small = browser({
      egress: egress({ allow: [{ origin: `http://allowed.test:${ap}`, allowPrivateAddresses: true }], lookup: async () => [{ address: "127.0.0.1", family: 4 }] }),
      maxPages: 1, maxBytes: 3000, executablePath: CHROMIUM, sandbox: process.getuid?.() !== 0,
    });
    try {
      const stub = browserWorker(`
        const page = await env.BROWSER.newPage();
        const small = await page.goto(base + "/box").then((r) => r.status, error);
        const big = await page.goto(base + "/big").then((r) => r.status, error);
        return Response.json({ small, big });
      `, { BROWSER: small });
      const out = await responseJson(await stub.getEntrypoint().fetch("http://worker/"));
      stub.dispose();
      assert.equal(out.small, 200);
      assert.equal(out.big.name, "EgressDeniedError");
      assert.match(out.big.message, /maxBytes/);
    } finally {
      await small.close();
    }
  });

  test("page.cdp() exists only with the binding's cdp: true option, and stays within the page", async () => {
    const body = `
      const page = await env.BROWSER.newPage();
      const evaluated = await page.cdp("Runtime.evaluate", { expression: "1+1" }).then((r) => r.result.value, error);
      const browserWide = await page.cdp("Browser.getVersion").then(() => "ran", error);
      return Response.json({ evaluated, browserWide });
    `;
    const out = await run(body);
    assert.equal(out.evaluated.name, "TypeError");
    assert.match(out.evaluated.message, /cdp: true/);
    const withCdp = browser({ egress: { allow: [] }, maxPages: 1, cdp: true, executablePath: CHROMIUM, sandbox: process.getuid?.() !== 0 });
    const stub = browserWorker(body, { BROWSER: withCdp });
    try {
      const granted = await responseJson(await stub.getEntrypoint().fetch("http://worker/"));
      assert.equal(granted.evaluated, 2);
      assert.equal(granted.browserWide.name, "TypeError");
      assert.match(granted.browserWide.message, /Browser domain/);
    } finally {
      stub.dispose();
      await withCdp.close();
    }
  });
});

describe("browser binding without Chromium or without the grant", () => {
  test("a missing Chromium is a BrowserUnavailableError naming apt-get install chromium", async () => {
    const missing = browser({ egress: { allow: [] }, maxPages: 1, executablePath: "/nonexistent/chromium" });
    const stub = browserWorker(`return Response.json(await env.BROWSER.newPage().then(() => "opened", error));`, { BROWSER: missing });
    try {
      const out = await responseJson(await stub.getEntrypoint().fetch("http://worker/"));
      assert.equal(out.name, "BrowserUnavailableError");
      assert.match(out.message, /apt-get install chromium/);
    } finally {
      stub.dispose();
    }
  });

  test("a worker without the grant has no env.BROWSER", async () => {
    const stub = browserWorker(`return Response.json({ type: typeof env.BROWSER, keys: Object.keys(env) });`, { OTHER: "x" });
    try {
      assert.deepEqual(await responseJson(await stub.getEntrypoint().fetch("http://worker/")), { type: "undefined", keys: ["OTHER"] });
    } finally {
      stub.dispose();
    }
  });

  test("typecheck: true knows the binding as MayflyBrowser", async () => {
    const source = (assign: string) => `
      interface Env { BROWSER: MayflyBrowser }
      export default { async fetch(request: Request, env: Env) {
        if (request.url.endsWith("/never")) {
          const page = await env.BROWSER.newPage();
          const next: number = await page.evaluate((n: number) => n + 1, 1);
          ${assign}
        }
        return new Response("checked");
      } };`;
    const load = (assign: string) => ctx.loader.load({ compatibilityDate: "2025-06-01", mainModule: "main.ts", modules: { "main.ts": source(assign) }, typecheck: true });
    const good = load(`const png: Uint8Array = await page.screenshot({ fullPage: true });`);
    assert.equal(await (await good.getEntrypoint().fetch("http://worker/")).text(), "checked");
    good.dispose();
    const bad = load(`const png: string = await page.screenshot();`);
    await assert.rejects(bad.getEntrypoint().fetch("http://worker/"), { name: "TypeCheckError" });
    bad.dispose();
  });

  test("options are validated like the other bindings'", () => {
    assert.throws(() => browser({ egress: { allow: [] }, maxPages: 0 }));
    assert.throws(() => browser({ maxPages: 1 } as never));
    assert.throws(() => browser({ egress: { allow: [] }, maxPages: 1, unknown: true } as never));
  });
});
