import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

test("the built package is importable as `mayfly` from another project", () => {
  assert.ok(existsSync(join(root, "dist/index.js")), "dist/ is built (npm test runs `npm run build` first)");
  const dir = mkdtempSync(join(tmpdir(), "mayfly-consumer-"));
  try {
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(root, join(dir, "node_modules/mayfly"), "dir");
    writeFileSync(join(dir, "main.mjs"), `
      import { WorkerLoader, CpuTimeLimitError } from "mayfly";
      const loader = new WorkerLoader({ executors: 1 });
      const stub = loader.load({ compatibilityDate: "2025-06-01", mainModule: "w.ts",
        modules: { "w.ts": "export default { fetch(): Response { return new Response('from dist') } }" } });
      const res = await stub.getEntrypoint().fetch("http://w/");
      console.log(await res.text(), typeof CpuTimeLimitError);
      await loader.close();`);
    const out = execFileSync(process.execPath, ["main.mjs"], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    assert.equal(out.trim(), "from dist function");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the built `mayfly` bin serves the API and the playground (its script bundled from dist/)", async () => {
  const bin = join(root, "dist/cli/index.js");
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--executors", "1"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d) => {
        const m = /listening on (http:\S+)/.exec(String(d));
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`serve exited (${code})`)));
    });
    const page = await fetch(`${url}/`);
    assert.match(await page.text(), /<title>mayfly playground<\/title>/);
    const script = await fetch(`${url}/playground/app.js`);
    assert.equal(script.status, 200);
    assert.ok((await script.text()).length > 100_000, "CodeMirror is in the bundle");
  } finally {
    child.kill("SIGTERM");
  }
});
