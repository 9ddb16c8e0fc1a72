import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sandboxAvailable } from "../src/index.ts";
import { runCli, useTempDir } from "./helpers.ts";

/** `mayfly run --allow-exec / --allow-browser`, driven as a user would: a subprocess. */
const dir = useTempDir("mayfly-cli-ladder-");
const dataDir = join(dir, "data");
const availability = await sandboxAvailable();
const noSandbox = availability.available ? false : `the OS sandbox (bwrap) cannot run here: ${availability.reason}`;
const noChromium = existsSync("/usr/bin/chromium") ? false : "Chromium is not installed at /usr/bin/chromium";

const mayfly = (args: string[]) => runCli(args);

function file(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

let server: Server;
let port = 0;
before(async () => {
  server = createServer((_req, res) => res.setHeader("content-type", "text/html").end("<title>local</title><p>from the network</p>"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const probe = () => file("probe.js", `export default { fetch(req, env) { return Response.json({ FS: typeof env.FS, SH: typeof env.SH, BROWSER: typeof env.BROWSER }) } }`);

describe("mayfly run: the ladder's flags", () => {
  test("without --allow-exec and --allow-browser neither binding exists", async () => {
    const r = await mayfly(["run", probe(), "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { FS: "undefined", SH: "undefined", BROWSER: "undefined" });
    const help = await mayfly(["run", "--help"]);
    assert.match(help.stdout, /--allow-exec/);
    assert.match(help.stdout, /--allow-browser/);
  });

  test("--allow-exec without a workspace runs on workspace \"default\", bound as FS", { skip: noSandbox }, async () => {
    const w = file("exec.js", `export default { async fetch(req, env) {
      await env.FS.writeFile("in.txt", "written by the worker\\n");
      const cat = await env.SH.exec("cat", ["in.txt"]);
      const made = await env.SH.exec("sh", ["-c", "echo made by sh > out.txt; echo proxy=$HTTPS_PROXY"]);
      return Response.json({ cat: cat.stdout, proxy: made.stdout.trim(), out: await env.FS.readFile("out.txt", "utf8"), BROWSER: typeof env.BROWSER });
    } }`);
    const r = await mayfly(["run", w, "--allow-exec", "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { cat: "written by the worker\n", proxy: "proxy=", out: "made by sh\n", BROWSER: "undefined" });
    // The default workspace is a real one: the CLI reads it back.
    const cat = await mayfly(["workspace", "cat", "default", "out.txt", "--data-dir", dataDir]);
    assert.equal(cat.stdout, "made by sh\n");
  });

  test("--allow-exec mounts the first --workspace, and its network follows --allow-net", { skip: noSandbox }, async () => {
    const w = file("exec-ws.js", `export default { async fetch(req, env) {
      await env.CODE.writeFile("a.txt", "in proj");
      const r = await env.SH.exec("sh", ["-c", "cat a.txt; echo; test -n \\"$HTTPS_PROXY\\" && echo proxied"]);
      return Response.json({ out: r.stdout, FS: typeof env.FS });
    } }`);
    const r = await mayfly(["run", w, "--allow-exec", "--workspace", "CODE=proj", `--allow-net=http://127.0.0.1:${port}`, "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { out: "in proj\nproxied\n", FS: "undefined" });
  });

  test("--allow-browser: pages reach only what --allow-net allows", { skip: noChromium }, async () => {
    const w = file("browse.js", `export default { async fetch(req, env) {
      const page = await env.BROWSER.newPage();
      await page.goto(new URL(req.url).searchParams.get("u"));
      return Response.json({ title: await page.title(), SH: typeof env.SH });
    } }`);
    const url = `http://x/?u=${encodeURIComponent(`http://127.0.0.1:${port}/`)}`;
    const allowed = await mayfly(["run", w, "--allow-browser", `--allow-net=http://127.0.0.1:${port}`, "--url", url, "--wall-ms", "60000"]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.deepEqual(JSON.parse(allowed.stdout), { title: "local", SH: "undefined" });
    const denied = await mayfly(["run", w, "--allow-browser", "--url", url, "--wall-ms", "60000"]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /EgressDeniedError/);
  });
});
