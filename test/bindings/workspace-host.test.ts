import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { workspace, type WorkspaceChange } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-ws-host-");

const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

describe("workspace: history, search, changes and the host side", () => {
  test("diff between files and against a kept version, restore, history limited to `history` versions", async () => {
    const ws = workspace({ name: "history", dataDir, history: 3 });
    const out = await run(`
      await env.FS.writeFile("a.txt", "one\\ntwo\\nthree\\n");
      const v1 = (await env.FS.stat("a.txt")).version;
      await env.FS.writeFile("a.txt", "one\\n2\\nthree\\n");
      await env.FS.writeFile("b.txt", "one\\ntwo\\nthree\\nfour\\n");
      const r = { files: await env.FS.diff("a.txt", "b.txt"), sinceV1: await env.FS.diff("a.txt", { version: v1 }) };
      await env.FS.restore("a.txt", v1);
      r.restored = await env.FS.readFile("a.txt", "utf8");
      r.old = await env.FS.readFile("a.txt", { encoding: "utf8", version: v1 });
      await env.FS.writeFile("a.txt", "4"); await env.FS.writeFile("a.txt", "5");
      r.kept = (await env.FS.history("a.txt")).length;
      try { await env.FS.diff("a.txt", { version: v1 }) } catch (e) { r.trimmed = e.code }
      return Response.json(r);`, { FS: ws });
    assert.match(out.files, /^--- a\.txt@\d+\n\+\+\+ b\.txt@\d+\n@@ -1,3 \+1,4 @@\n one\n-2\n\+two\n three\n\+four\n$/m);
    assert.match(out.sinceV1, /@@ -1,3 \+1,3 @@\n one\n-two\n\+2\n three\n/);
    assert.equal(out.restored, "one\ntwo\nthree\n");
    assert.equal(out.old, "one\ntwo\nthree\n");
    assert.equal(out.kept, 3);
    assert.equal(out.trimmed, "ENOENT");
    // Freed versions leave no contents behind: 3 kept for a.txt, 1 for b.txt.
    const db = (ws as unknown as { store: { db: import("node:sqlite").DatabaseSync } }).store.db;
    assert.equal((db.prepare("SELECT count(*) AS n FROM contents").get() as { n: number }).n, 4);
    // Two large, wholly different files: the diff gives up after its time budget instead of holding the host.
    const lines = (seed: number) => Array.from({ length: 200_000 }, (_, i) => String((i * seed) % 99991)).join("\n");
    await ws.writeFile("big-a.txt", lines(7));
    await ws.writeFile("big-b.txt", lines(13));
    await assert.rejects(ws.diff("big-a.txt", "big-b.txt"), { code: "ETIMEDOUT" });
    ws.close();
  });

  test("glob and grep (RegExp or source, under a path; binary files skipped; a catastrophic pattern times out)", async () => {
    const ws = workspace({ name: "search", dataDir });
    await ws.writeFile("src/a.ts", "const x = 1;\n// TODO: fix\nexport {};\n");
    await ws.writeFile("src/lib/b.ts", "todo later\n");
    await ws.writeFile("docs/readme.md", "TODO docs\n");
    await ws.writeFile("bin/blob", new Uint8Array([0, 84, 79, 68, 79]));
    const out = await run(`
      const r = {
        ts: await env.FS.glob("src/**/*.ts"), md: await env.FS.glob("*/*.{md,txt}"),
        all: await env.FS.grep(/todo/i), src: await env.FS.grep("TODO", { path: "src" }), one: await env.FS.grep("later", { path: "src/lib/b.ts" }),
      };
      await env.FS.writeFile("slow.txt", "a".repeat(40) + "!\\n");
      try { await env.FS.grep("(a+)+$", { path: "slow.txt" }) } catch (e) { r.slow = e.code }
      try { await env.FS.grep("(") } catch (e) { r.invalid = e.code }
      try { await env.FS.glob("{a,b}".repeat(24)) } catch (e) { r.braces = e.code }
      await env.FS.writeFile("a".repeat(60), "a path the star pattern backtracks over");
      try { await env.FS.glob("*a".repeat(16) + "b") } catch (e) { r.stars = e.code }
      return Response.json(r);`, { FS: ws });
    assert.deepEqual(out, {
      ts: ["src/a.ts", "src/lib/b.ts"], md: ["docs/readme.md"],
      all: [{ path: "docs/readme.md", line: 1, text: "TODO docs" }, { path: "src/a.ts", line: 2, text: "// TODO: fix" }, { path: "src/lib/b.ts", line: 1, text: "todo later" }],
      src: [{ path: "src/a.ts", line: 2, text: "// TODO: fix" }], one: [{ path: "src/lib/b.ts", line: 1, text: "todo later" }],
      slow: "ETIMEDOUT", invalid: "EINVAL", braces: "ETIMEDOUT", stars: "ETIMEDOUT",
    });
    ws.close();
  });

  test("a catastrophic pattern never holds the host: its event loop keeps turning while grep and glob time out", async () => {
    const ws = workspace({ name: "stall", dataDir });
    await ws.writeFile("slow.txt", "a".repeat(40) + "!\n");
    let ticks = 0, worstGap = 0, last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 10);
    try {
      await assert.rejects(ws.grep("(a+)+$", { path: "slow.txt" }), { code: "ETIMEDOUT" });
      await assert.rejects(ws.glob("{a,b}".repeat(24)), { code: "ETIMEDOUT" });
      // The matcher's next call works: a new thread replaced the one that was ended.
      assert.deepEqual(await ws.glob("*.txt"), ["slow.txt"]);
    } finally {
      clearInterval(timer);
      ws.close();
    }
    assert.ok(ticks >= 100, `the host's timers ran ${ticks} times in two 1-second timeouts`);
    assert.ok(worstGap < 250, `the host's event loop stalled for ${worstGap.toFixed(0)} ms`);
  });

  test("changes: the host hears each change (on and watch), a worker lists changes since a version", async () => {
    const ws = workspace({ name: "changes", dataDir });
    const heard: WorkspaceChange[] = [];
    const watched: string[] = [];
    ws.on("change", (c) => heard.push(c));
    const stop = ws.watch((c) => watched.push(c.path));
    const start = (await ws.changes()).version;
    const out = await run(`
      await env.FS.writeFile("x/a.txt", "1");
      await env.FS.writeFile("x/a.txt", "2");
      await env.FS.rm("x", { recursive: true });
      return Response.json(await env.FS.changes(${start}));`, { FS: ws });
    const kinds = [["x", "mkdir"], ["x/a.txt", "create"], ["x/a.txt", "modify"], ["x/a.txt", "delete"], ["x", "rmdir"]];
    assert.deepEqual(out.changes.map((c: WorkspaceChange) => [c.path, c.kind]), kinds);
    assert.deepEqual(heard.map((c) => [c.path, c.kind]), kinds);
    // One counter: versions rise by one per change.
    assert.deepEqual(heard.map((c) => c.version), [1, 2, 3, 4, 5].map((n) => start + n));
    assert.equal(out.version, start + 5);
    assert.equal(watched.length, 5);
    stop();
    await ws.writeFile("after.txt", "x");
    assert.equal(watched.length, 5);
    assert.equal(heard.length, 6);
    ws.close();
  });

  test("seeded from a directory, exported as tar and imported into another workspace; destroy deletes it", async () => {
    const src = join(dataDir, "seed");
    mkdirSync(join(src, "nested/empty"), { recursive: true });
    writeFileSync(join(src, "top.txt"), "top");
    writeFileSync(join(src, "nested/big.bin"), new Uint8Array(3 << 20).fill(7));
    const a = workspace({ name: "seeded", dataDir });
    assert.equal(await a.importDirectory(src), 2);
    const b = workspace({ name: "imported", dataDir });
    assert.equal(await b.importTar(a.exportTar(), "copy"), 2);
    assert.deepEqual((await b.list()).map((e) => [e.path, e.type, e.size]), [
      ["copy", "dir", 0], ["copy/nested", "dir", 0], ["copy/nested/big.bin", "file", 3 << 20], ["copy/nested/empty", "dir", 0], ["copy/top.txt", "file", 3],
    ]);
    assert.equal(await b.readFile("copy/top.txt", "utf8"), "top");
    assert.ok((await b.readFile("copy/nested/big.bin") as Uint8Array).every((x) => x === 7));
    // A tar whose names climb out of the workspace is refused.
    const evil = workspace({ name: "evil", dataDir });
    const tarOf = (await import("tar-stream")).default.pack();
    tarOf.entry({ name: "../../outside.txt" }, "x");
    tarOf.finalize();
    await assert.rejects(evil.importTar(tarOf as unknown as AsyncIterable<Uint8Array>), { code: "EINVAL" });
    assert.deepEqual(await evil.list(), []);
    await evil.destroy();
    await b.destroy();
    assert.equal(readdirSync(join(dataDir, "workspace")).filter((f) => f.startsWith("imported") || f.startsWith("evil")).length, 0);
    assert.ok(existsSync(join(dataDir, "workspace", "seeded.sqlite")));
    a.close();
  });

  test("rename moves a subtree (old paths' history ends in a deletion), cp copies without sharing later writes; commit expectations may name paths it does not write", async () => {
    const ws = workspace({ name: "moves", dataDir });
    await ws.writeFile("a/x.txt", "x1");
    await ws.writeFile("a/sub/y.txt", "y1");
    await ws.rename("a", "b");
    assert.deepEqual((await ws.list()).map((e) => e.path), ["b", "b/sub", "b/sub/y.txt", "b/x.txt"]);
    assert.deepEqual((await ws.history("a/x.txt")).map((h) => h.deleted), [true, false]);
    await ws.cp("b", "c", { recursive: true });
    await ws.writeFile("c/x.txt", "changed");
    assert.equal(await ws.readFile("b/x.txt", "utf8"), "x1");
    const y = (await ws.stat("b/sub/y.txt")).version;
    // A read-set expectation: write c/x.txt only if b/sub/y.txt is still the version read.
    await ws.commit([{ path: "c/x.txt", content: "from y1" }], { expect: { "b/sub/y.txt": y } });
    await ws.writeFile("b/sub/y.txt", "y2");
    await assert.rejects(ws.commit([{ path: "c/x.txt", content: "stale" }], { expect: { "b/sub/y.txt": y } }), { name: "WorkspaceConflictError" });
    assert.equal(await ws.readFile("c/x.txt", "utf8"), "from y1");
    await assert.rejects(ws.rename("b", "b/inside"), { code: "EINVAL" });
    ws.close();
  });

  test("contents over spillOverBytes live in files beside the SQLite file; freed with their last version, kept when a change rolls back", async () => {
    const ws = workspace({ name: "spill", dataDir, spillOverBytes: 1000, history: 1, quota: { bytes: 12_000 } });
    const files = () => readdirSync(join(dataDir, "workspace", "spill.files")).sort();
    const out = await run(`
      await env.FS.writeFile("a.bin", new Uint8Array(5000).fill(1));
      await env.FS.writeFile("s.bin", new Response(new Uint8Array(3000).fill(2)).body);
      await env.FS.appendFile("s.bin", new Uint8Array(500).fill(3));
      await env.FS.writeFile("small.txt", "stays in SQLite");
      const s = await env.FS.readFile("s.bin");
      return Response.json({ a: (await env.FS.readFile("a.bin")).every((x) => x === 1), s: [s.length, s[0], s[2999], s[3000], s[3499]] });`, { FS: ws });
    assert.deepEqual(out, { a: true, s: [3500, 2, 2, 3, 3] });
    // a.bin and s.bin (history: 1, so the appended-to version was freed with its file).
    assert.equal(files().length, 2);
    // Replacing a.bin and adding b.bin passes the quota: the commit rolls back and a.bin's file stays.
    await assert.rejects(ws.commit([{ path: "a.bin", content: new Uint8Array(5000) }, { path: "b.bin", content: new Uint8Array(4000) }]), { code: "ENOSPC" });
    assert.equal(files().length, 2);
    assert.ok((await ws.readFile("a.bin")).every((x) => x === 1));
    await ws.rm("a.bin");
    await ws.writeFile("s.bin", "small now");
    assert.deepEqual(files(), []);
    assert.equal(await ws.readFile("s.bin", "utf8"), "small now");
    await ws.destroy();
    assert.ok(!existsSync(join(dataDir, "workspace", "spill.files")));
  });

  test("options are validated", () => {
    assert.throws(() => workspace({ name: "x", dataDir, mode: "write" as "read" }), TypeError);
    assert.throws(() => workspace({ name: "x", dataDir, history: 0 }), RangeError);
    assert.throws(() => workspace({ name: "x", dataDir, quota: { bytes: -1 } }), RangeError);
    assert.throws(() => workspace({ name: "", dataDir }), TypeError);
  });
});
