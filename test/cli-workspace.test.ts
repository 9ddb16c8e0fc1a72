import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { workspace } from "../src/index.ts";
import { runCli, useTempDir } from "./helpers.ts";

/** The CLI as a user runs it: a subprocess, its output (bytes) and exit code. */
const dir = useTempDir("mayfly-cli-ws-");
const dataDir = join(dir, "data");

const mayfly = async (args: string[], stdin?: Uint8Array) => {
  const r = await runCli(args, { stdin });
  return { code: r.code, stdout: r.stdoutBytes, stderr: r.stderr };
};

describe("mayfly workspace", () => {
  test("import a directory, ls, cat, export as tar and import it into another workspace from stdin", async () => {
    const src = join(dir, "project");
    mkdirSync(join(src, "src"), { recursive: true });
    writeFileSync(join(src, "README.md"), "# project\n");
    writeFileSync(join(src, "src/main.ts"), "console.log(1);\n");
    const imported = await mayfly(["workspace", "import", "proj", src, "--data-dir", dataDir]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stderr, /imported 2 files into proj/);

    const ls = await mayfly(["workspace", "ls", "proj", "--data-dir", dataDir]);
    assert.equal(ls.stdout.toString(), "README.md\nsrc/\n");
    const deep = await mayfly(["workspace", "ls", "proj", "-r", "-l", "--data-dir", dataDir]);
    assert.match(deep.stdout.toString(), /^- +10 v\d+ +\S+ README\.md\nd +0 v\d+ +\S+ src\/\n- +16 v\d+ +\S+ src\/main\.ts\n$/);

    const cat = await mayfly(["workspace", "cat", "proj", "src/main.ts", "--data-dir", dataDir]);
    assert.equal(cat.stdout.toString(), "console.log(1);\n");

    // A version kept in history, through --version.
    const ws = workspace({ name: "proj", dataDir });
    const v = (await ws.stat("README.md")).version;
    await ws.writeFile("README.md", "# changed\n");
    ws.close();
    assert.equal((await mayfly(["workspace", "cat", "proj", "README.md", "--version", String(v), "--data-dir", dataDir])).stdout.toString(), "# project\n");

    const tarFile = join(dir, "proj.tar");
    assert.equal((await mayfly(["workspace", "export", "proj", tarFile, "--data-dir", dataDir])).code, 0);
    const tarBytes = readFileSync(tarFile);
    const toStdout = await mayfly(["workspace", "export", "proj", "--data-dir", dataDir]);
    assert.deepEqual(toStdout.stdout.length, tarBytes.length);
    const fromStdin = await mayfly(["workspace", "import", "copy", "-", "--into", "restored", "--data-dir", dataDir], tarBytes);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal((await mayfly(["workspace", "cat", "copy", "restored/README.md", "--data-dir", dataDir])).stdout.toString(), "# changed\n");
    const fromFile = await mayfly(["workspace", "import", "copy2", tarFile, "--data-dir", dataDir]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal((await mayfly(["workspace", "ls", "copy2", "src", "--data-dir", dataDir])).stdout.toString(), "main.ts\n");
  });

  test("mayfly run --workspace / --workspace-read bind one to a worker file", async () => {
    const ws = workspace({ name: "run-ws", dataDir });
    await ws.writeFile("in.txt", "input");
    ws.close();
    const worker = join(dir, "worker.js");
    writeFileSync(worker, `export default { async fetch(req, env) {
      const text = await env.FS.readFile("in.txt", "utf8");
      try { await env.FS.writeFile("out.txt", text.toUpperCase()); return new Response("wrote") } catch (e) { return new Response(e.code) }
    } }`);
    const readOnly = await mayfly(["run", worker, "--workspace-read", "FS=run-ws", "--data-dir", dataDir]);
    assert.equal(readOnly.stdout.toString().trim(), "EACCES", readOnly.stderr);
    const readWrite = await mayfly(["run", worker, "--workspace", "FS=run-ws", "--data-dir", dataDir]);
    assert.equal(readWrite.stdout.toString().trim(), "wrote", readWrite.stderr);
    assert.equal((await mayfly(["workspace", "cat", "run-ws", "out.txt", "--data-dir", dataDir])).stdout.toString(), "INPUT");
  });

  test("failures are one line on stderr and exit 1: a missing workspace, a missing file, a refused path", async () => {
    const missing = await mayfly(["workspace", "ls", "nope", "--data-dir", dataDir]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no workspace "nope"/);
    const ws = workspace({ name: "errs", dataDir });
    await ws.writeFile("a.txt", "a");
    ws.close();
    const noFile = await mayfly(["workspace", "cat", "errs", "b.txt", "--data-dir", dataDir]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /ENOENT: no such file or directory, open 'b\.txt'/);
    const refused = await mayfly(["workspace", "cat", "errs", "../a.txt", "--data-dir", dataDir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /EINVAL/);
  });
});
