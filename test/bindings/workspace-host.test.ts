import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { workspace } from "../../src/index.ts";
import { runHandler, useLoader, useTempDir } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-ws-host-");

const run = (body: string, env: Record<string, unknown>) => runHandler(ctx.loader, body, env);

/** What is particular to the SQLite storage and to the host process (the rest: workspace.suite.ts). */
describe("workspace on SQLite: files, spill-over, the host's event loop", () => {
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

  test("destroy deletes the workspace's files and no other's", async () => {
    const a = workspace({ name: "kept", dataDir });
    const b = workspace({ name: "gone", dataDir });
    await a.writeFile("a.txt", "a");
    await b.writeFile("b.txt", "b");
    await b.destroy();
    assert.equal(readdirSync(join(dataDir, "workspace")).filter((f) => f.startsWith("gone")).length, 0);
    assert.ok(existsSync(join(dataDir, "workspace", "kept.sqlite")));
    assert.equal(await a.readFile("a.txt", "utf8"), "a");
    a.close();
  });
});
