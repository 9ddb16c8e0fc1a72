import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { workspace, WorkspaceConflictError } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-ws-");

const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

describe("workspace binding (a durable file system in env)", () => {
  test("a worker writes files in one run and reads them in the next, with node:fs/promises shapes", async () => {
    await run(`
      await env.FS.writeFile("src/index.ts", "export const a = 1;\\n");
      await env.FS.appendFile("src/index.ts", "export const b = 2;\\n");
      await env.FS.writeFile("data/bytes.bin", new Uint8Array([0, 1, 255]));
      await env.FS.mkdir("empty/deep", { recursive: true });
      return Response.json(null);`, { FS: workspace({ name: "persist", dataDir }) });
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
      return Response.json(r);`, { FS: workspace({ name: "persist", dataDir }) });
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
      return Response.json(codes);`, { FS: workspace({ name: "codes", dataDir }) });
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
      return Response.json(r);`, { FS: workspace({ name: "traversal", dataDir }) });
    assert.deepEqual(out, []);
  });

  test("harmless spellings are normalised: ./a, a//b, trailing slash, Unicode names", async () => {
    const out = await run(`
      await env.FS.writeFile("./docs//guide.md/", "g");
      await env.FS.writeFile("données/résumé ✓.txt", "u");
      await env.FS.writeFile("100%.txt", "p");
      return Response.json({ list: await env.FS.readdir("", { recursive: true }), g: await env.FS.readFile("docs/guide.md", "utf8") });`,
      { FS: workspace({ name: "normal", dataDir }) });
    assert.deepEqual(out, { list: ["100%.txt", "docs", "docs/guide.md", "données", "données/résumé ✓.txt"], g: "g" });
  });

  test("read mode: every write is EACCES and nothing changes; reads work", async () => {
    const host = workspace({ name: "readonly", dataDir });
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
      return Response.json(r);`, { FS: workspace({ name: "readonly", dataDir, mode: "read" }) });
    assert.deepEqual(out, {
      writeFile: "EACCES", writeStream: "EACCES", createWriteStream: "EACCES", appendFile: "EACCES", mkdir: "EACCES", rm: "EACCES",
      rename: "EACCES", cp: "EACCES", commit: "EACCES", restore: "EACCES", read: "seeded by the host", list: ["seed.txt"],
    });
    assert.deepEqual((await host.list()).map((e) => e.path), ["seed.txt"]);
    host.close();
  });

  test("quota: past it a write or commit is ENOSPC and nothing of it is stored", async () => {
    const ws = workspace({ name: "quota", dataDir, quota: { bytes: 1000, files: 3 } });
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
    const db = (ws as unknown as { store: { db: import("node:sqlite").DatabaseSync } }).store.db;
    assert.deepEqual(db.prepare("SELECT size FROM contents ORDER BY id").all().map((r) => (r as { size: number }).size), [600, 900]);
    ws.close();
  });

  test("atomic commits: two concurrent commits expecting the same version, one wins, the other is WorkspaceConflictError and applies nothing", async () => {
    const ws = workspace({ name: "commits", dataDir });
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
});
