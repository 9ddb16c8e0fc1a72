import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { blobBucket, kv, sql } from "../../src/index.ts";
import { useTempDir } from "../helpers.ts";

const dataDir = useTempDir("mayfly-durable-");
const src = fileURLToPath(new URL("../../src/index.ts", import.meta.url));

/** Runs `write` in a child process, waits for it to acknowledge, then kills it with SIGKILL. */
async function writeThenKill(write: string): Promise<void> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", `
    const mayfly = await import(${JSON.stringify(src)});
    const dataDir = ${JSON.stringify(dataDir)};
    ${write}
    process.stdout.write("acked\\n");
    setInterval(() => {}, 1000);`], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => child.stdout!.on("data", (d) => String(d).includes("acked") && resolve()));
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
}

describe("an acknowledged write survives kill -9 of the process", () => {
  test("KV", async () => {
    await writeThenKill(`await mayfly.kv({ name: "durable", dataDir }).put("survivor", "written before the crash");`);
    const ns = kv({ name: "durable", dataDir });
    assert.equal(await ns.get("survivor"), "written before the crash");
    ns.close();
  });

  test("SQL", async () => {
    await writeThenKill(`const db = mayfly.sql({ name: "durable", dataDir }); await db.exec("CREATE TABLE t (v TEXT)"); await db.query({ sql: "INSERT INTO t VALUES (?)", params: ["row before the crash"] }, "run");`);
    const db = sql({ name: "durable", dataDir });
    assert.deepEqual(await db.query({ sql: "SELECT v FROM t", params: [] }, "raw"), [["row before the crash"]]);
    db.close();
  });

  test("blob bucket", async () => {
    await writeThenKill(`await mayfly.blobBucket({ name: "durable", dataDir }).put("obj", "object before the crash");`);
    const bucket = blobBucket({ name: "durable", dataDir });
    assert.equal(await (await bucket.get("obj"))!.text(), "object before the crash");
    bucket.close();
  });
});
