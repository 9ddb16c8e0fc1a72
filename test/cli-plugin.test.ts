import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { useTempDir } from "./helpers.ts";

/** `mayfly plugin diff|check`, as a subprocess: its output and exit code. */
const CLI = fileURLToPath(new URL("../src/cli/index.ts", import.meta.url));
const dir = useTempDir("mayfly-cli-plugin-");

function mayfly(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

function manifest(name: string, value: object): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ name: "demo", publisher: "Acme", ...value }));
  return path;
}

describe("mayfly plugin", () => {
  const v1 = manifest("v1.json", { version: "1.0.0", permissions: { network: [{ origin: "https://api.example.com", methods: ["GET"] }], workspace: "read" } });
  const v2 = manifest("v2.json", { version: "1.1.0", permissions: { network: [{ origin: "https://api.example.com", methods: ["GET", "POST"] }, "https://cdn.example.com"], workspace: "read-write" } });
  const v3 = manifest("v3.json", { version: "1.2.0", permissions: { network: [{ origin: "https://api.example.com", methods: ["GET"] }] } });

  test("diff prints each change; --exit-code tells an update that asks for more from one that does not", async () => {
    const r = await mayfly(["plugin", "diff", v1, v2, "--exit-code"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, [
      "demo 1.0.0 → 1.1.0: asks for more (needs approval)",
      "↑ widened  network https://api.example.com: GET → GET, POST",
      "+ added    network https://cdn.example.com (every method)",
      "↑ widened  workspace: read → read-write",
      "",
    ].join("\n"));
    const narrower = await mayfly(["plugin", "diff", v1, v3, "--exit-code"]);
    assert.equal(narrower.code, 0);
    assert.match(narrower.stdout, /^↓ narrowed workspace: read → none$/m);
  });

  test("diff --json is the structured diff", async () => {
    const r = await mayfly(["plugin", "diff", v1, v2, "--json"]);
    assert.equal(r.code, 0);
    const diff = JSON.parse(r.stdout);
    assert.equal(diff.widens, true);
    assert.deepEqual(diff.changes.map((c: { kind: string; permission: string }) => `${c.kind} ${c.permission}`), ["widened network", "added network", "widened workspace"]);
  });

  test("check validates; a bad manifest is one line naming the field, exit 2", async () => {
    assert.deepEqual(await mayfly(["plugin", "check", v1]), { code: 0, stdout: "demo 1.0.0: ok\n", stderr: "" });
    const bad = manifest("bad.json", { version: "1.0.0", permissions: { workspace: "write" } });
    const r = await mayfly(["plugin", "check", bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^mayfly: .*bad\.json: ManifestError: manifest\.permissions\.workspace: /);
  });
});
