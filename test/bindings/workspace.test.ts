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
});
