import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findPostgres, TestPostgres } from "../postgres.ts";
import { postgresBackend, type PostgresBackend } from "../../src/bindings/storage/postgres.ts";
import { FencedError } from "../../src/bindings/storage/fencing.ts";
import { appendEntries, entriesSince, materialize } from "../../src/bindings/storage/replicated-sqlite.ts";
import { migrateCluster } from "../../src/cluster/index.ts";
import { ReplicaConflictError } from "../../src/errors.ts";

const found = findPostgres();
const skip = typeof found === "string" ? found : false;

/**
 * Actors' writes go to replicated SQLite's log as the cluster uses it: an image from the executor's
 * WAL file, changesets from a session per call, fenced appends, replay into a fresh file.
 */
describe("the actor log", { skip }, () => {
  let postgres: TestPostgres;
  let backend: PostgresBackend;
  const dir = mkdtempSync(join(tmpdir(), "mayfly-actor-log-"));

  before(async () => {
    postgres = await TestPostgres.start();
    backend = postgresBackend({ url: await postgres.createDatabase("log") });
    await migrateCluster(backend);
    await backend.query("INSERT INTO mayfly_leases (name, owner, token, expires_at) VALUES ('actor:t:1', 'h#1', 3, now() + interval '1 hour')");
  });

  after(async () => {
    await backend?.close();
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("an image then changesets replay into the same database; a rebuild starts at the newest image", async () => {
    const source = join(dir, "source.sqlite");
    const db = new DatabaseSync(source);
    db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)");
    const fence = { lease: "actor:t:1", token: 3n };
    let v = await appendEntries(backend, "actor:t:1", 0, [{ kind: "image", bytes: new Uint8Array(readFileSync(source)) }], fence);
    for (let i = 0; i < 3; i++) {
      const session = db.createSession();
      db.prepare("INSERT INTO kv VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v").run(`k${i % 2}`, i);
      v = await appendEntries(backend, "actor:t:1", v, [{ kind: "changeset", bytes: session.changeset() }], fence);
      session.close();
    }
    assert.equal(v, 4);
    const copy = join(dir, "copy.sqlite");
    assert.equal(await materialize(backend, "actor:t:1", copy), 4);
    const read = (path: string) => new DatabaseSync(path).prepare("SELECT k, v FROM kv ORDER BY k").all().map((r) => ({ ...r }));
    assert.deepEqual(read(copy), [{ k: "k0", v: 2 }, { k: "k1", v: 1 }]);
    db.close();
    v = await appendEntries(backend, "actor:t:1", v, [{ kind: "image", bytes: new Uint8Array(readFileSync(source)) }], fence);
    assert.deepEqual((await entriesSince(backend, "actor:t:1", 0)).map((e) => [e.version, e.kind]), [[5, "image"]], "a rebuild starts at the newest image");
    assert.equal(await materialize(backend, "actor:t:1", copy), 5);
    assert.deepEqual(read(copy), read(source));
  });

  test("a writer with an old token is fenced out; two writers at one version conflict", async () => {
    const entry = { kind: "changeset" as const, bytes: new Uint8Array([1]) };
    await assert.rejects(appendEntries(backend, "actor:t:1", 5, [entry], { lease: "actor:t:1", token: 2n }), FencedError);
    await assert.rejects(appendEntries(backend, "actor:t:1", 4, [entry], { lease: "actor:t:1", token: 3n }), ReplicaConflictError);
    assert.equal((await entriesSince(backend, "actor:t:1", 0)).length, 1, "nothing appended");
  });
});
