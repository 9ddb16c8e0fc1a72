import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { workspace } from "../../src/index.ts";
import { useTempDir } from "../helpers.ts";

const dataDir = useTempDir("mayfly-ws-durable-");
const src = fileURLToPath(new URL("../../src/index.ts", import.meta.url));

test("every acknowledged workspace write survives kill -9 of the host", async () => {
  // The child writes without pause (the streamed file is over spillOverBytes: it is a file of its own), printing after each acknowledged write, until it is killed.
  const child = spawn(process.execPath, ["--input-type=module", "-e", `
    const mayfly = await import(${JSON.stringify(src)});
    const ws = mayfly.workspace({ name: "durable", dataDir: ${JSON.stringify(dataDir)}, spillOverBytes: 1 << 20 });
    let left = 48;
    await ws.writeFile("streamed.bin", new ReadableStream({ pull(c) { if (left-- > 0) c.enqueue(new Uint8Array(64 * 1024).fill(left)); else c.close(); } }));
    process.stdout.write("acked streamed\\n");
    for (let i = 0; ; i++) {
      if (i % 2) await ws.writeFile("files/" + i + ".txt", "written " + i);
      else await ws.commit([{ path: "files/" + i + ".txt", content: "written " + i }, { path: "last.txt", content: String(i) }]);
      process.stdout.write("acked " + i + "\\n");
    }`], { stdio: ["ignore", "pipe", "inherit"] });
  const acked: string[] = [];
  let buffered = "";
  await new Promise<void>((resolve) => child.stdout!.on("data", (d) => {
    buffered += String(d);
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    acked.push(...lines.map((l) => l.replace(/^acked /, "")));
    if (acked.length >= 40) resolve();
  }));
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));

  const ws = workspace({ name: "durable", dataDir, spillOverBytes: 1 << 20 });
  const streamed = await ws.readFile("streamed.bin") as Uint8Array;
  assert.equal(streamed.byteLength, 48 * 64 * 1024);
  assert.equal(streamed[0], 47);
  for (const i of acked.slice(1)) assert.equal(await ws.readFile(`files/${i}.txt`, "utf8"), `written ${i}`, `acked write ${i}`);
  const lastCommitted = Number(await ws.readFile("last.txt", "utf8"));
  assert.ok(lastCommitted >= Number(acked.filter((i) => Number(i) % 2 === 0).at(-1)));
  // The store is consistent: every file's content is whole, no half-written content is in use.
  const db = (ws as unknown as { store: { db: import("node:sqlite").DatabaseSync } }).store.db;
  assert.equal((db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check, "ok");
  assert.deepEqual(db.prepare("SELECT e.path FROM entries e JOIN contents c ON c.id = e.content WHERE c.pending IS NOT NULL OR c.size != e.size").all(), []);
  ws.close();
});
