/**
 * The workspace suite on PostgreSQL, plus what only a shared database has: two hosts (two Workspace
 * objects of one name, each on its own postgresBackend, as two mayfly processes would be) reading each
 * other's writes, racing commits and quotas, and hearing each other's changes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { postgresBackend, WorkerLoader, workspace, WorkspaceConflictError, type PostgresBackend, type WorkspaceChange } from "../../src/index.ts";
import { runHandler } from "../helpers.ts";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { workspaceSuite } from "./workspace.suite.ts";

const found = findPostgres();

async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("workspace binding on PostgreSQL", { skip: typeof found === "string" ? found : false }, () => {
  let server: TestPostgres;
  let a: PostgresBackend;
  let b: PostgresBackend;

  before(async () => {
    server = await TestPostgres.start();
    const url = await server.createDatabase("ws");
    a = postgresBackend({ url });
    b = postgresBackend({ url });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await server?.close();
  });

  workspaceSuite("PostgreSQL", {
    make: (name, options) => workspace({ name, backend: a, ...options }),
    contentSizes: async (_ws, name) => (await a.query("SELECT size FROM mayfly_ws_contents WHERE ws = $1 ORDER BY id", [name])).rows.map((r) => Number(r.size)),
  });

  test("what host A writes, host B reads: files, versions, history, changes", async () => {
    const onA = workspace({ name: "shared", backend: a });
    const onB = workspace({ name: "shared", backend: b });
    const v = await onA.writeFile("src/a.txt", "from A");
    assert.equal(await onB.readFile("src/a.txt", "utf8"), "from A");
    assert.equal((await onB.stat("src/a.txt")).version, v);
    await onB.appendFile("src/a.txt", ", then B");
    assert.equal(await onA.readFile("src/a.txt", "utf8"), "from A, then B");
    assert.deepEqual((await onA.history("src/a.txt")).map((h) => h.version).length, 2);
    const changes = await onA.changes(0);
    assert.deepEqual(changes.changes.map((c) => [c.path, c.kind]), [["src", "mkdir"], ["src/a.txt", "create"], ["src/a.txt", "modify"]]);
    // Another name on the same database is another workspace.
    assert.deepEqual(await workspace({ name: "shared-2", backend: b }).list(), []);
  });

  test("two hosts committing against the same version: one wins, the other is WorkspaceConflictError and applies nothing", async () => {
    const onA = workspace({ name: "race", backend: a });
    const onB = workspace({ name: "race", backend: b });
    for (let round = 0; round < 10; round++) {
      const v = (await onA.stat("doc.txt").catch(() => ({ version: 0 }))).version;
      const attempt = (ws: typeof onA, tag: string) => ws.commit(
        [{ path: "doc.txt", content: `${tag}${round}` }, { path: `by-${tag}-${round}.txt`, content: tag }], { expect: { "doc.txt": v } });
      const results = await Promise.allSettled([attempt(onA, "a"), attempt(onB, "b")]);
      const won = results.findIndex((r) => r.status === "fulfilled");
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      assert.ok(won >= 0 && lost, `round ${round}: exactly one commit wins`);
      assert.ok(lost.reason instanceof WorkspaceConflictError, String(lost.reason));
      const winner = won === 0 ? "a" : "b";
      assert.equal(await onB.readFile("doc.txt", "utf8"), `${winner}${round}`);
      const paths = (await onA.list()).map((e) => e.path);
      assert.ok(paths.includes(`by-${winner}-${round}.txt`));
      assert.ok(!paths.includes(`by-${winner === "a" ? "b" : "a"}-${round}.txt`), "nothing of the losing commit");
    }
    // No content of a losing commit is left behind: one per file, plus doc.txt's kept versions.
    const { rows } = await a.query("SELECT count(*) AS n FROM mayfly_ws_contents WHERE ws = 'race'");
    assert.equal(Number(rows[0].n), 10 + 10);
  });

  test("two hosts racing for one quota: together they never pass it, and a refused write leaves nothing", async () => {
    const quota = { files: 6, bytes: 1_000_000 };
    const onA = workspace({ name: "quota-race", backend: a, quota });
    const onB = workspace({ name: "quota-race", backend: b, quota });
    const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => (i % 2 ? onA : onB).writeFile(`f${i}.txt`, "x".repeat(100))));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 6);
    assert.ok(results.every((r) => r.status === "fulfilled" || (r.reason as { code?: string }).code === "ENOSPC"));
    assert.equal((await onB.list()).length, 6);
    const { rows } = await a.query("SELECT count(*) AS n FROM mayfly_ws_contents WHERE ws = 'quota-race'");
    assert.equal(Number(rows[0].n), 6);
    // The byte quota likewise: each host's room() looks fine alone; the check in the transaction decides.
    const bytes = { bytes: 550 };
    const [bytesA, bytesB] = [workspace({ name: "bytes-race", backend: a, quota: bytes }), workspace({ name: "bytes-race", backend: b, quota: bytes })];
    const written = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => (i % 2 ? bytesA : bytesB).writeFile(`b${i}`, "y".repeat(100))));
    assert.equal(written.filter((r) => r.status === "fulfilled").length, 5);
    assert.equal((await bytesA.list()).length, 5);
  });

  test("a host watching hears the changes another host makes (LISTEN/NOTIFY), each once", async () => {
    const onA = workspace({ name: "events", backend: a });
    const onB = workspace({ name: "events", backend: b });
    const heard: WorkspaceChange[] = [];
    const stop = onA.watch((c) => heard.push(c));
    await new Promise((r) => setTimeout(r, 300)); // the listening connection is set up
    await onB.writeFile("x/y.txt", "1");
    await onA.writeFile("x/z.txt", "local");
    await onB.rm("x", { recursive: true });
    await until(() => heard.length >= 6);
    await new Promise((r) => setTimeout(r, 200)); // nothing more (no duplicates) arrives
    assert.deepEqual(heard.map((c) => [c.path, c.kind]).sort(), [
      ["x", "mkdir"], ["x", "rmdir"], ["x/y.txt", "create"], ["x/y.txt", "delete"], ["x/z.txt", "create"], ["x/z.txt", "delete"],
    ].sort());
    assert.deepEqual(heard.map((c) => c.version).sort((p, q) => p - q), heard.map((c) => c.version).sort((p, q) => p - q).filter((v, i, all) => all.indexOf(v) === i));
    stop();
    await onB.writeFile("after.txt", "x");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(heard.length, 6);
    onA.close();
  });

  test("PostgreSQL down: writes fail with BackendUnavailableError and leave nothing; once it is back, writes work and a watcher still hears them", async () => {
    const onA = workspace({ name: "restart", backend: a });
    const onB = workspace({ name: "restart", backend: b });
    await onB.writeFile("before.txt", "1");
    const heard: string[] = [];
    const stop = onA.watch((c) => heard.push(c.path));
    await new Promise((r) => setTimeout(r, 300));
    await server.stop();
    try {
      await assert.rejects(onB.writeFile("during.txt", "x"), { name: "BackendUnavailableError" });
      await assert.rejects(onA.readFile("before.txt"), { name: "BackendUnavailableError" });
    } finally {
      await server.restart();
    }
    await onB.writeFile("after.txt", "2");
    await until(() => heard.includes("after.txt"), 10_000);
    assert.deepEqual((await onA.list()).map((e) => e.path), ["after.txt", "before.txt"]);
    stop();
    onA.close();
  });

  test("a worker's env.FS backed by PostgreSQL: what a worker writes through host A, a worker reads through host B", async () => {
    const loader = new WorkerLoader({ executors: 1 });
    try {
      await loader.ready();
      const wrote = await runHandler(loader, `
        const r = await env.FS.commit([{ path: "notes/today.md", content: "# written by a worker\\n" }, { path: "notes/big.bin", content: new Uint8Array(600 * 1024).fill(9) }]);
        return Response.json(r.files);`, { FS: workspace({ name: "from-worker", backend: a }) });
      assert.deepEqual(Object.keys(wrote), ["notes/today.md", "notes/big.bin"]);
      const read = await runHandler(loader, `
        const big = await env.FS.readFile("notes/big.bin");
        return Response.json({ text: await env.FS.readFile("notes/today.md", "utf8"), big: [big.length, big[0], big[big.length - 1]], list: await env.FS.readdir("notes") });`,
        { FS: workspace({ name: "from-worker", backend: b, mode: "read" }) });
      assert.deepEqual(read, { text: "# written by a worker\n", big: [600 * 1024, 9, 9], list: ["big.bin", "today.md"] });
    } finally {
      await loader.close();
    }
  });
});
