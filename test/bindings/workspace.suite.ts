/**
 * The workspace binding's behaviour, whatever stores it: run against SQLite (workspace.test.ts) and
 * PostgreSQL (workspace-postgres.test.ts) alike. `storage.make` builds a workspace on the storage under
 * test; names are unique per test, so one database or data directory serves the whole suite.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WorkspaceConflictError, type Workspace, type WorkspaceChange, type WorkspaceOptions } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

export interface WorkspaceStorage {
  make(name: string, options?: Omit<WorkspaceOptions, "name" | "dataDir" | "backend">): Workspace;
  /** The sizes of every content stored for the workspace (in use, kept as history, or left behind), oldest first. */
  contentSizes(ws: Workspace, name: string): Promise<number[]>;
}

const SIZE = 50 << 20;
/** The test file's byte at `i`: varied enough that a dropped or reordered chunk changes the hash. */
const byteAt = (i: number) => (i * 7 + (i >> 16)) & 0xff;

function expectedHash(): string {
  const hash = createHash("sha256");
  const block = new Uint8Array(1 << 20);
  for (let at = 0; at < SIZE; at += block.length) {
    for (let j = 0; j < block.length; j++) block[j] = byteAt(at + j);
    hash.update(block);
  }
  return hash.digest("hex");
}

export function workspaceSuite(label: string, storage: WorkspaceStorage): void {
  describe(`workspace binding on ${label}`, () => {
    const ctx = useLoader({ executors: 1 });
    const tmp = useTempDir("mayfly-ws-suite-");
    const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);
    const make = storage.make;

    test("a worker writes files in one run and reads them in the next, with node:fs/promises shapes", async () => {
      await run(`
        await env.FS.writeFile("src/index.ts", "export const a = 1;\\n");
        await env.FS.appendFile("src/index.ts", "export const b = 2;\\n");
        await env.FS.writeFile("data/bytes.bin", new Uint8Array([0, 1, 255]));
        await env.FS.mkdir("empty/deep", { recursive: true });
        return Response.json(null);`, { FS: make("persist") });
      const out = await run(`
        const s = await env.FS.stat("src/index.ts");
        const d = await env.FS.stat("src");
        const r = {
          text: await env.FS.readFile("src/index.ts", "utf8"),
          utf8Opt: await env.FS.readFile("src/index.ts", { encoding: "utf8" }),
          bytes: [...await env.FS.readFile("data/bytes.bin")],
          root: await env.FS.readdir("."),
          typed: (await env.FS.readdir("", { withFileTypes: true })).map((e) => [e.name, e.isDirectory()]),
          recursive: await env.FS.readdir("src", { recursive: true }),
          stat: { size: s.size, file: s.isFile(), dir: s.isDirectory(), version: typeof s.version, mtime: s.mtime instanceof Date },
          dirStat: d.isDirectory(),
          glob: await env.FS.glob("**/*.ts"),
        };
        await env.FS.rename("src/index.ts", "src/main.ts");
        await env.FS.cp("src", "copy", { recursive: true });
        await env.FS.rm("empty", { recursive: true });
        r.after = await env.FS.readdir("", { recursive: true });
        r.copied = await env.FS.readFile("copy/main.ts", "utf8");
        return Response.json(r);`, { FS: make("persist") });
      assert.deepEqual(out, {
        text: "export const a = 1;\nexport const b = 2;\n", utf8Opt: "export const a = 1;\nexport const b = 2;\n", bytes: [0, 1, 255],
        root: ["data", "empty", "src"], typed: [["data", true], ["empty", true], ["src", true]], recursive: ["index.ts"],
        stat: { size: 40, file: true, dir: false, version: "number", mtime: true }, dirStat: true, glob: ["src/index.ts"],
        after: ["copy", "copy/main.ts", "data", "data/bytes.bin", "src", "src/main.ts"],
        copied: "export const a = 1;\nexport const b = 2;\n",
      });
    });


    test("errors carry Node's codes: ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY", async () => {
      const out = await run(`
        await env.FS.writeFile("f.txt", "x");
        await env.FS.mkdir("d");
        await env.FS.writeFile("full/x", "x");
        const codes = {};
        const attempt = async (name, f) => { try { await f(); codes[name] = "ok" } catch (e) { codes[name] = [e.code, e.name, e instanceof Error, e.message.startsWith(e.code + ": ")] } };
        await attempt("readMissing", () => env.FS.readFile("nope.txt"));
        await attempt("statMissing", () => env.FS.stat("a/b/c"));
        await attempt("mkdirExisting", () => env.FS.mkdir("d"));
        await attempt("mkdirNoParent", () => env.FS.mkdir("x/y"));
        await attempt("writeUnderFile", () => env.FS.writeFile("f.txt/inner", "x"));
        await attempt("readdirFile", () => env.FS.readdir("f.txt"));
        await attempt("readDir", () => env.FS.readFile("d"));
        await attempt("writeOverDir", () => env.FS.writeFile("d", "x"));
        await attempt("rmDirNotRecursive", () => env.FS.rm("d"));
        await attempt("rmMissing", () => env.FS.rm("gone.txt"));
        await attempt("rmMissingForce", () => env.FS.rm("gone.txt", { force: true }));
        await attempt("renameOntoFullDir", () => env.FS.rename("d", "full"));
        await attempt("cpDirNotRecursive", () => env.FS.cp("d", "d2"));
        await attempt("streamMissing", async () => { for await (const c of env.FS.createReadStream("nope.txt")) {} });
        return Response.json(codes);`, { FS: make("codes") });
      const e = (code: string) => [code, "WorkspaceError", true, true];
      assert.deepEqual(out, {
        readMissing: e("ENOENT"), statMissing: e("ENOENT"), mkdirExisting: e("EEXIST"), mkdirNoParent: e("ENOENT"),
        writeUnderFile: e("ENOTDIR"), readdirFile: e("ENOTDIR"), readDir: e("EISDIR"), writeOverDir: e("EISDIR"),
        rmDirNotRecursive: e("EISDIR"), rmMissing: e("ENOENT"), rmMissingForce: "ok", renameOntoFullDir: e("ENOTEMPTY"), cpDirNotRecursive: e("EISDIR"), streamMissing: e("ENOENT"),
      });
    });


    test("every traversal notation is refused with EINVAL, and nothing is written", async () => {
      const bad = [
        "../escape.txt", "a/../../escape.txt", "a/..", "..", "/etc/passwd", "//server/share", "C:/Windows/x", "c:x",
        "%2e%2e/escape.txt", "%2E%2E%2Fescape", "a%2fb", "a%5cb", "%252e%252e/x", "a\\..\\b", "..\\x",
        "a\u2215..\u2215b", "\u2215etc", "..\uFF0Fx", "a\u2044b", "\uFF0E\uFF0E/x", "a\u29F8b", "a\uFF3Cb", "\u2024\u2024/x", ".\u200b./x",
        "a\u0000b", "nul\u0000", "a\nb", "x".repeat(256), ("a".repeat(200) + "/").repeat(21) + "z",
      ];
      const out = await run(`
        const bad = ${JSON.stringify(bad)};
        const r = [];
        for (const p of bad) {
          for (const f of [() => env.FS.writeFile(p, "x"), () => env.FS.readFile(p), () => env.FS.mkdir(p, { recursive: true }), () => env.FS.commit([{ path: p, content: "x" }])]) {
            try { await f(); r.push("accepted " + JSON.stringify(p)) } catch (e) { if (e.code !== "EINVAL") r.push(e.code + " " + JSON.stringify(p)) }
          }
        }
        r.push(...await env.FS.readdir("", { recursive: true }));
        return Response.json(r);`, { FS: make("traversal") });
      assert.deepEqual(out, []);
    });


    test("harmless spellings are normalised: ./a, a//b, trailing slash, Unicode names", async () => {
      const out = await run(`
        await env.FS.writeFile("./docs//guide.md/", "g");
        await env.FS.writeFile("données/résumé ✓.txt", "u");
        await env.FS.writeFile("100%.txt", "p");
        return Response.json({ list: await env.FS.readdir("", { recursive: true }), g: await env.FS.readFile("docs/guide.md", "utf8") });`,
        { FS: make("normal") });
      assert.deepEqual(out, { list: ["100%.txt", "docs", "docs/guide.md", "données", "données/résumé ✓.txt"], g: "g" });
    });


    test("read mode: every write is EACCES and nothing changes; reads work", async () => {
      const host = make("readonly");
      await host.writeFile("seed.txt", "seeded by the host");
      const out = await run(`
        const r = {};
        const writes = {
          writeFile: () => env.FS.writeFile("new.txt", "x"), writeStream: () => env.FS.writeFile("s.txt", new Response("x").body),
          createWriteStream: async () => { const w = env.FS.createWriteStream("w.txt").getWriter(); await w.write(new Uint8Array([1])); await w.close() },
          appendFile: () => env.FS.appendFile("seed.txt", "x"), mkdir: () => env.FS.mkdir("d"), rm: () => env.FS.rm("seed.txt"),
          rename: () => env.FS.rename("seed.txt", "moved.txt"), cp: () => env.FS.cp("seed.txt", "copy.txt"),
          commit: () => env.FS.commit([{ path: "c.txt", content: "x" }]), restore: () => env.FS.restore("seed.txt", 1),
        };
        for (const [name, f] of Object.entries(writes)) { try { await f(); r[name] = "ok" } catch (e) { r[name] = e.code } }
        r.read = await env.FS.readFile("seed.txt", "utf8");
        r.list = await env.FS.readdir("");
        return Response.json(r);`, { FS: make("readonly", { mode: "read" }) });
      assert.deepEqual(out, {
        writeFile: "EACCES", writeStream: "EACCES", createWriteStream: "EACCES", appendFile: "EACCES", mkdir: "EACCES", rm: "EACCES",
        rename: "EACCES", cp: "EACCES", commit: "EACCES", restore: "EACCES", read: "seeded by the host", list: ["seed.txt"],
      });
      assert.deepEqual((await host.list()).map((e) => e.path), ["seed.txt"]);
      host.close();
    });


    test("quota: past it a write or commit is ENOSPC and nothing of it is stored", async () => {
      const ws = make("quota", { quota: { bytes: 1000, files: 3 } });
      const out = await run(`
        const r = {};
        const attempt = async (name, f) => { try { await f(); r[name] = "ok" } catch (e) { r[name] = e.code } };
        await attempt("fits", () => env.FS.writeFile("a.txt", "x".repeat(600)));
        await attempt("tooBig", () => env.FS.writeFile("b.txt", "x".repeat(500)));
        await attempt("streamTooBig", () => env.FS.writeFile("s.txt", new Response("y".repeat(5000)).body));
        await attempt("appendTooBig", () => env.FS.appendFile("a.txt", "x".repeat(401)));
        await attempt("commitTooBig", () => env.FS.commit([{ path: "c1.txt", content: "c" }, { path: "c2.txt", content: "x".repeat(400) }]));
        await attempt("replaceFits", () => env.FS.writeFile("a.txt", "x".repeat(900)));
        await attempt("tooMany", () => env.FS.commit([{ path: "f1", content: "" }, { path: "f2", content: "" }, { path: "f3", content: "" }]));
        r.files = await env.FS.readdir("");
        r.size = (await env.FS.stat("a.txt")).size;
        return Response.json(r);`, { FS: ws });
      assert.deepEqual(out, { fits: "ok", tooBig: "ENOSPC", streamTooBig: "ENOSPC", appendTooBig: "ENOSPC", commitTooBig: "ENOSPC", replaceFits: "ok", tooMany: "ENOSPC", files: ["a.txt"], size: 900 });
      // Nothing of the refused writes is left in storage either: only a.txt's kept versions' contents.
      assert.deepEqual(await storage.contentSizes(ws, "quota"), [600, 900]);
      ws.close();
    });


    test("atomic commits: two concurrent commits expecting the same version, one wins, the other is WorkspaceConflictError and applies nothing", async () => {
      const ws = make("commits");
      const first = await ws.commit([{ path: "a.txt", content: "a0" }, { path: "b.txt", content: "b0" }], { expect: { "a.txt": 0, "b.txt": 0 } });
      const v = first.files["a.txt"]!;
      const worker = (tag: string) => run(`
        try {
          const r = await env.FS.commit([{ path: "a.txt", content: "${tag}" }, { path: "b.txt", delete: true }, { path: "new-${tag}.txt", content: "n" }], { expect: { "a.txt": ${v} } });
          return Response.json({ ok: true, versions: Object.keys(r.files).length });
        } catch (e) { return Response.json({ ok: false, name: e.name, code: e.code, message: e.message }) }`, { FS: ws });
      const results = await Promise.all([worker("one"), worker("two")]);
      const won = results.filter((r) => r.ok);
      const lost = results.filter((r) => !r.ok);
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.equal(lost[0].name, "WorkspaceConflictError");
      assert.equal(lost[0].code, "ECONFLICT");
      assert.match(lost[0].message, /a\.txt: expected \d+, is \d+/);
      const winner = results[0].ok ? "one" : "two";
      const loser = winner === "one" ? "two" : "one";
      assert.equal(await ws.readFile("a.txt", "utf8"), winner);
      const paths = (await ws.list()).map((e) => e.path);
      assert.deepEqual(paths, ["a.txt", `new-${winner}.txt`]);
      assert.ok(!paths.includes(`new-${loser}.txt`));
      // The host API raises the same class; a stale "must not exist" expectation too.
      await assert.rejects(ws.commit([{ path: "a.txt", content: "late" }], { expect: { "a.txt": v } }), WorkspaceConflictError);
      await assert.rejects(ws.commit([{ path: "a.txt", content: "late" }], { expect: { "a.txt": 0 } }), (e: WorkspaceConflictError) => e.conflicts[0]!.expected === 0);
      ws.close();
    });

    test("two objects of one workspace (two hosts, or two handles in one process): each sees the other's writes; racing commits, one wins", async () => {
      const one = make("two-handles");
      const two = make("two-handles");
      // Interleaved writes through both: every one lands, each with its own version.
      const versions = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? one : two).writeFile(`n/${i}.txt`, String(i))));
      assert.equal(new Set(versions).size, 12);
      assert.deepEqual((await one.readdir("n")).map((e) => e.name).sort(), Array.from({ length: 12 }, (_, i) => `${i}.txt`).sort());
      assert.equal(await one.readFile("n/3.txt", "utf8"), "3");
      const v = (await two.stat("n/0.txt")).version;
      const results = await Promise.allSettled([one, two].map((ws, i) => ws.commit([{ path: "n/0.txt", content: `by ${i}` }, { path: `only-${i}.txt`, content: "x" }], { expect: { "n/0.txt": v } })));
      assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
      const winner = results[0]!.status === "fulfilled" ? 0 : 1;
      assert.ok((results[1 - winner] as PromiseRejectedResult).reason instanceof WorkspaceConflictError);
      assert.equal(await two.readFile("n/0.txt", "utf8"), `by ${winner}`);
      assert.deepEqual((await one.glob("only-*.txt")), [`only-${winner}.txt`]);
      one.close();
      two.close();
    });

    test("diff between files and against a kept version, restore, history limited to `history` versions", async () => {
      const ws = make("history", { history: 3 });
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
      assert.equal((await storage.contentSizes(ws, "history")).length, 4);
      // Two large, wholly different files: the diff gives up after its time budget instead of holding the host.
      const lines = (seed: number) => Array.from({ length: 200_000 }, (_, i) => String((i * seed) % 99991)).join("\n");
      await ws.writeFile("big-a.txt", lines(7));
      await ws.writeFile("big-b.txt", lines(13));
      await assert.rejects(ws.diff("big-a.txt", "big-b.txt"), { code: "ETIMEDOUT" });
      ws.close();
    });


    test("glob and grep (RegExp or source, under a path; binary files skipped; a catastrophic pattern times out)", async () => {
      const ws = make("search");
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


    test("changes: the host hears each change (on and watch), a worker lists changes since a version", async () => {
      const ws = make("changes");
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
      const src = join(tmp, "seed");
      mkdirSync(join(src, "nested/empty"), { recursive: true });
      writeFileSync(join(src, "top.txt"), "top");
      writeFileSync(join(src, "nested/big.bin"), new Uint8Array(3 << 20).fill(7));
      const a = make("seeded");
      assert.equal(await a.importDirectory(src), 2);
      const b = make("imported");
      assert.equal(await b.importTar(a.exportTar(), "copy"), 2);
      assert.deepEqual((await b.list()).map((e) => [e.path, e.type, e.size]), [
        ["copy", "dir", 0], ["copy/nested", "dir", 0], ["copy/nested/big.bin", "file", 3 << 20], ["copy/nested/empty", "dir", 0], ["copy/top.txt", "file", 3],
      ]);
      assert.equal(await b.readFile("copy/top.txt", "utf8"), "top");
      assert.ok((await b.readFile("copy/nested/big.bin") as Uint8Array).every((x) => x === 7));
      // A tar whose names climb out of the workspace is refused.
      const evil = make("evil");
      const tarOf = (await import("tar-stream")).default.pack();
      tarOf.entry({ name: "../../outside.txt" }, "x");
      tarOf.finalize();
      await assert.rejects(evil.importTar(tarOf as unknown as AsyncIterable<Uint8Array>), { code: "EINVAL" });
      assert.deepEqual(await evil.list(), []);
      await evil.destroy();
      await b.destroy();
      // Destroyed: a new object of the same name starts empty, with nothing stored; the others are untouched.
      const again = make("imported");
      assert.deepEqual(await again.list(), []);
      assert.deepEqual(await storage.contentSizes(again, "imported"), []);
      again.close();
      assert.equal((await a.list()).length, 4);
      a.close();
    });


    test("rename moves a subtree (old paths' history ends in a deletion), cp copies without sharing later writes; commit expectations may name paths it does not write", async () => {
      const ws = make("moves");
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


    test("a 50 MB file is written from a stream and read back as one in a memoryMb: 32 isolate", async () => {
      const ws = make("big");
      const load = (body: string) => ctx.loader.load({
        compatibilityDate: "2025-06-01", mainModule: "m.js", env: { FS: ws }, limits: { memoryMb: 32, cpuMs: 60_000, wallMs: 120_000 },
        modules: { "m.js": `const byteAt = ${byteAt.toString()}; export default { async fetch(request, env) { ${body} } }` },
      });
      // Written two ways: writeFile(path, ReadableStream) and createWriteStream(path).
      const write = load(`
        const source = () => { let at = 0; return new ReadableStream({ pull(c) {
          if (at >= ${SIZE}) return c.close();
          const chunk = new Uint8Array(256 * 1024); for (let j = 0; j < chunk.length; j++) chunk[j] = byteAt(at + j);
          at += chunk.length; c.enqueue(chunk);
        } }) };
        await env.FS.writeFile("big.bin", source());
        await source().pipeTo(env.FS.createWriteStream("big-2.bin"));
        return Response.json((await env.FS.stat("big.bin")).size + (await env.FS.stat("big-2.bin")).size);`);
      assert.equal(await (await write.getEntrypoint().fetch("http://w/")).json(), 2 * SIZE);
      const read = load(`
        const out = {};
        for (const name of ["big.bin", "big-2.bin"]) {
          let bytes = 0, wrong = 0;
          for await (const chunk of env.FS.createReadStream(name)) {
            for (let j = 0; j < chunk.length; j += 4093) if (chunk[j] !== byteAt(bytes + j)) wrong++;
            bytes += chunk.length;
          }
          out[name] = { bytes, wrong };
        }
        return Response.json(out);`);
      assert.deepEqual(await (await read.getEntrypoint().fetch("http://w/")).json(), { "big.bin": { bytes: SIZE, wrong: 0 }, "big-2.bin": { bytes: SIZE, wrong: 0 } });
      const want = expectedHash();
      for (const name of ["big.bin", "big-2.bin"]) {
        const hash = createHash("sha256");
        for await (const chunk of ws.createReadStream(name) as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
        assert.equal(hash.digest("hex"), want, name);
      }
      ws.close();
    });


    test("readFile of a file over the copy size crosses as a stream and arrives whole", async () => {
      const ws = make("medium");
      const data = new Uint8Array(3 << 20).map((_, i) => byteAt(i));
      await ws.writeFile("m.bin", data);
      const stub = ctx.loader.load({
        compatibilityDate: "2025-06-01", mainModule: "m.js", env: { FS: ws },
        modules: { "m.js": `export default { async fetch(request, env) { const b = await env.FS.readFile("m.bin"); let s = 0; for (let i = 0; i < b.length; i += 1000) s += b[i]; return Response.json([b.length, s]) } }` },
      });
      let s = 0;
      for (let i = 0; i < data.length; i += 1000) s += data[i]!;
      assert.deepEqual(await (await stub.getEntrypoint().fetch("http://w/")).json(), [3 << 20, s]);
      ws.close();
    });
  });
}
