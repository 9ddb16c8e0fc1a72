import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { BrowserBinding, CodeMode, ladder, LadderGrantError, ladderTools, Sandbox, sandboxAvailable, Workspace } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-ladder-");
const availability = await sandboxAvailable();
const noSandbox = availability.available ? false : `the OS sandbox cannot run here: ${availability.reason}`;
const noChromium = existsSync("/usr/bin/chromium") ? false : "Chromium is not installed at /usr/bin/chromium";

describe("ladder()", () => {
  test("only granted rungs exist; the sandbox mounts the workspace bound as FS", async () => {
    const none = ladder({});
    assert.deepEqual(Object.keys(none.env), []);
    assert.deepEqual(none.loader, {});

    await using l = ladder({ workspace: { name: "both", dataDir }, sandbox: { limits: { wallMs: 60_000 } }, npm: { cacheDir: `${dataDir}/npm` } });
    assert.deepEqual(Object.keys(l.env).sort(), ["FS", "SH"]);
    assert.ok(l.env.FS instanceof Workspace);
    assert.ok(l.env.SH instanceof Sandbox);
    assert.equal(l.env.SH.workspace, l.env.FS);
    assert.equal(l.loader.npm?.cacheDir, `${dataDir}/npm`);

    await using b = ladder({ browser: { egress: { allow: [] }, maxPages: 1 } });
    assert.deepEqual(Object.keys(b.env), ["BROWSER"]);
    assert.ok(b.env.BROWSER instanceof BrowserBinding);
  });

  test("a sandbox without a workspace, or with its own, is a LadderGrantError; unknown rungs are refused", () => {
    assert.throws(() => ladder({ sandbox: {} }), (e: Error) => e instanceof LadderGrantError && e.name === "LadderGrantError");
    assert.throws(() => ladder({ workspace: { name: "x", dataDir }, sandbox: { workspace: {} } as never }), LadderGrantError);
    assert.throws(() => ladder({ shell: {} } as never), /shell/);
  });

  test("a worker gets the granted bindings in env", async () => {
    await using l = ladder({ workspace: { name: "worker", dataDir } });
    const out = await runHandler(ctx.loader, `
      await env.FS.writeFile("a.txt", "hello");
      return Response.json([await env.FS.readFile("a.txt", "utf8"), typeof env.SH, typeof env.BROWSER]);
    `, { ...l.env });
    assert.deepEqual(out, ["hello", "undefined", "undefined"]);
  });
});

describe("ladderTools()", () => {
  test("fs and sh in Code Mode: write a file, cat it in the sandbox; browser absent without its grant", { skip: noSandbox }, async () => {
    await using l = ladder({ workspace: { name: "cm", dataDir }, sandbox: { limits: { wallMs: 60_000 } } });
    const cm = new CodeMode({ loader: ctx.loader, tools: ladderTools(l), limits: { wallMs: 60_000 } });
    const types = await cm.types();
    assert.match(types, /declare const fs: \{/);
    assert.match(types, /writeFile\(input: FsWriteFileInput\)/);
    assert.match(types, /declare const sh: \{/);
    assert.doesNotMatch(types, /declare const browser/);

    const r = await cm.execute(`async () => {
      await fs.writeFile({ path: "notes/hi.txt", content: "from code mode\\n" });
      const cat = await sh.exec({ command: "cat", args: ["notes/hi.txt"] });
      await sh.exec({ command: "sh", args: ["-c", "echo from the sandbox > made.txt"] });
      return { cat, made: await fs.readFile({ path: "made.txt" }), listed: await fs.glob({ pattern: "**/*.txt" }) };
    }`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    const result = r.result as { cat: { exitCode: number; stdout: string }; made: string; listed: string[] };
    assert.equal(result.cat.exitCode, 0);
    assert.equal(result.cat.stdout, "from code mode\n");
    assert.equal(result.made, "from the sandbox\n");
    assert.deepEqual(result.listed.sort(), ["made.txt", "notes/hi.txt"]);

    const denied = await cm.execute(`async () => browser.content({ url: "https://example.com/" })`);
    assert.equal(denied.error?.name, "ReferenceError");
  });

  test("without a grant a namespace is absent from the types, and calling it is a ReferenceError", async () => {
    await using l = ladder({ workspace: { name: "ro", dataDir, mode: "read" } });
    const cm = new CodeMode({ loader: ctx.loader, tools: ladderTools(l) });
    const types = await cm.types();
    assert.match(types, /declare const fs: \{/);
    assert.doesNotMatch(types, /writeFile/, "a read-only workspace offers no writes");
    assert.doesNotMatch(types, /declare const sh/);
    assert.doesNotMatch(types, /declare const browser/);
    const r = await cm.execute(`async () => sh.exec({ command: "cat", args: ["x"] })`);
    assert.equal(r.error?.name, "ReferenceError");
    assert.match(r.error?.message ?? "", /sh is not defined/);
    assert.deepEqual(ladderTools(ladder({})), []);
  });

  test("browser.* loads pages through the grant's egress policy", { skip: noChromium }, async () => {
    const server = createServer((_req, res) => res.setHeader("content-type", "text/html").end("<title>Ladder</title><p>on the ladder</p>"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      await using l = ladder({ browser: { egress: { allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true }] }, maxPages: 2, sandbox: process.getuid?.() !== 0 } });
      const cm = new CodeMode({ loader: ctx.loader, tools: ladderTools(l), limits: { wallMs: 60_000 }, toolTimeoutMs: 60_000 });
      assert.match(await cm.types(), /declare const browser: \{/);
      const r = await cm.execute(`async () => ({
        title: await browser.title({ url: "http://127.0.0.1:${port}/" }),
        html: await browser.content({ url: "http://127.0.0.1:${port}/" }),
        png: (await browser.screenshot({ url: "http://127.0.0.1:${port}/" })).slice(0, 8),
        denied: await browser.content({ url: "http://127.0.0.1:1/" }).then(() => "loaded", (e) => e.name),
      })`);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const out = r.result as { title: string; html: string; png: string; denied: string };
      assert.equal(out.title, "Ladder");
      assert.match(out.html, /on the ladder/);
      assert.equal(out.png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]).toString("base64"));
      assert.notEqual(out.denied, "loaded");
    } finally {
      server.close();
    }
  });
});
