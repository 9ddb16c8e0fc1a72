import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { useTempDir } from "./helpers.ts";

/**
 * A host that goes away without loader.close(): its executors must leave quietly (no
 * ERR_IPC_CHANNEL_CLOSED stack trace on the user's terminal) and promptly (no orphans).
 * Driven through the built package, as a user's script would import it.
 */
const DIST = pathToFileURL(fileURLToPath(new URL("../dist/index.js", import.meta.url))).href;
const dir = useTempDir("mayfly-parent-exit-");

/** The host script: runs workers, prints its executors' pids, then `ending` (exit, or wait to be killed). */
function hostScript(name: string, ending: string, executors = 3): string {
  const path = join(dir, name);
  writeFileSync(path, `
    import { readdirSync, readFileSync } from "node:fs";
    import { WorkerLoader } from ${JSON.stringify(DIST)};
    const loader = new WorkerLoader({ executors: ${executors} });
    const stub = loader.load({ compatibilityDate: "2025-06-01", mainModule: "m.js", modules: { "m.js":
      "export default { fetch(r, env, ctx) { ctx.waitUntil(new Promise((ok) => setTimeout(ok, 30))); return new Response('ran') } }" } });
    const text = await (await stub.getEntrypoint().fetch("http://w/")).text();
    // The executors are this process's children (the API does not expose their pids).
    const children = readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).filter((p) => {
      try { return readFileSync("/proc/" + p + "/stat", "utf8").split(") ")[1].split(" ")[1] === String(process.pid); } catch { return false; }
    });
    process.stdout.write(JSON.stringify({ text, children }) + "\\n");
    ${ending}
  `);
  return path;
}

/** Gone, or a zombie waiting for a reaper (it runs nothing and holds no isolate). */
function isGone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return readFileSync(stat, "utf8").split(") ")[1]!.startsWith("Z");
  } catch {
    return true;
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (pids.every(isGone)) return [];
    await new Promise((r) => setTimeout(r, 50));
  }
  return pids.filter((p) => !isGone(p));
}

/** Spawns the host; resolves with its first stdout line (the report) once it is printed. */
function startHost(script: string): { child: ChildProcess; report: Promise<{ text: string; children: string[] }>; stderr: () => string } {
  const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const report = new Promise<{ text: string; children: string[] }>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]!));
    });
    child.once("exit", (code) => reject(new Error(`host exited (${code}) before reporting: ${err}`)));
  });
  return { child, report, stderr: () => err };
}

/** Stderr is collected a little past the executors' end: anything they print on the way out lands here. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
}

describe("an executor whose host is gone exits quietly", () => {
  test("process.exit() without loader.close() after the last run: no ERR_IPC_CHANNEL_CLOSED, no orphans", async () => {
    // Some executors are still warming up when the host exits: their "ready" frame finds no channel.
    for (let round = 0; round < 3; round++) {
      const host = startHost(hostScript(`exit-${round}.mjs`, "process.exit(0);"));
      const { text, children } = await host.report;
      assert.equal(text, "ran");
      assert.equal(children.length, 3, "three executor children");
      await new Promise((r) => host.child.once("close", r));
      const left = await waitGone(children.map(Number), 5_000);
      for (const p of left) process.kill(p, "SIGKILL");
      assert.deepEqual(left, [], "every executor exited within 5 s");
      await settle();
      assert.doesNotMatch(host.stderr(), /ERR_IPC_CHANNEL_CLOSED|Channel closed|\n\s+at /, host.stderr());
      assert.equal(host.stderr(), "");
    }
  });

  test("a host that exits during executor startup leaves no orphans either", async () => {
    const path = join(dir, "startup.mjs");
    writeFileSync(path, `
      import { readdirSync, readFileSync } from "node:fs";
      import { WorkerLoader } from ${JSON.stringify(DIST)};
      new WorkerLoader({ executors: 3 });
      setTimeout(() => {
        const children = readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).filter((p) => {
          try { return readFileSync("/proc/" + p + "/stat", "utf8").split(") ")[1].split(" ")[1] === String(process.pid); } catch { return false; }
        });
        process.stdout.write(JSON.stringify({ text: "", children }) + "\\n", () => process.exit(0));
      }, 20);
    `);
    const host = startHost(path);
    const { children } = await host.report;
    assert.ok(children.length >= 1);
    await new Promise((r) => host.child.once("close", r));
    const left = await waitGone(children.map(Number), 5_000);
    for (const p of left) process.kill(p, "SIGKILL");
    assert.deepEqual(left, []);
    await settle();
    assert.equal(host.stderr(), "");
  });

  test("a SIGKILLed host: its executors see the channel close and exit", async () => {
    const host = startHost(hostScript("killed.mjs", "setInterval(() => {}, 1000);", 2));
    const { children } = await host.report;
    assert.equal(children.length, 2);
    host.child.kill("SIGKILL");
    await new Promise((r) => host.child.once("close", r));
    const left = await waitGone(children.map(Number), 5_000);
    for (const p of left) process.kill(p, "SIGKILL");
    assert.deepEqual(left, [], "every executor exited within 5 s of its host's SIGKILL");
    await settle();
    assert.equal(host.stderr(), "");
  });
});
