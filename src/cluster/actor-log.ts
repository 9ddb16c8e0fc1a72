/**
 * Each actor's committed writes in PostgreSQL: an ordered log of entries (a node:sqlite changeset,
 * or the whole database file after a schema change), appended by the owner under its fencing token
 * and replayed into a fresh local SQLite file by the next owner.
 *
 * This is the minimal log the cluster needs until the replicated-sqlite module (D1 on PostgreSQL)
 * lands; the functions are named and shaped as that module's (appendEntries, entriesSince,
 * materialize) so the two can be reconciled into one.
 */
import { DatabaseSync } from "node:sqlite";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { checkFence, type Fence } from "../bindings/storage/fencing.ts";
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import type { ActorLogEntry } from "../actors/placement.ts";
import { ActorLogConflictError } from "../errors.ts";

export interface LoggedEntry extends ActorLogEntry {
  version: number;
}

/**
 * Appends `entries` after `expectVersion` (one transaction: all or none), refused with FencedError
 * when `fence` is no longer the lease's token. An image makes every entry before it unneeded: they
 * are deleted in the same transaction. Resolves to the new version.
 */
export async function appendEntries(backend: PostgresBackend, id: string, expectVersion: number, entries: ActorLogEntry[], fence?: Fence): Promise<number> {
  if (entries.length === 0) return expectVersion;
  return backend.transaction(async (c) => {
    if (fence) await checkFence(c, fence);
    let version = expectVersion;
    for (const e of entries) {
      version++;
      try {
        await c.query("INSERT INTO mayfly_actor_log (actor, version, kind, data, token) VALUES ($1, $2, $3, $4, $5)", [id, version, e.kind, Buffer.from(e.data), String(fence?.token ?? 0n)]);
      } catch (error) {
        if ((error as { code?: string }).code === "23505") throw new ActorLogConflictError(`The log of ${id} already has version ${version}: another writer appended.`);
        throw error;
      }
      if (e.kind === "image") await c.query("DELETE FROM mayfly_actor_log WHERE actor = $1 AND version < $2", [id, version]);
    }
    return version;
  });
}

/** The entries after `version`, in order, starting at the latest image if there is one. */
export async function entriesSince(backend: PostgresBackend, id: string, version = 0): Promise<LoggedEntry[]> {
  const { rows } = await backend.query<{ version: string; kind: "image" | "changeset"; data: Buffer }>(
    `SELECT version, kind, data FROM mayfly_actor_log WHERE actor = $1 AND version > $2
       AND version >= COALESCE((SELECT max(version) FROM mayfly_actor_log WHERE actor = $1 AND kind = 'image' AND version > $2), 0)
     ORDER BY version`, [id, version]);
  return rows.map((r) => ({ version: Number(r.version), kind: r.kind, data: new Uint8Array(r.data) }));
}

/** Writes the actor's database as the log has it to `localPath` (replacing any file there); resolves to its version. */
export async function materialize(backend: PostgresBackend, id: string, localPath: string): Promise<number> {
  const entries = await entriesSince(backend, id, 0);
  for (const p of [localPath, `${localPath}-wal`, `${localPath}-shm`, `${localPath}-journal`]) rmSync(p, { force: true });
  if (entries.length === 0) return 0;
  mkdirSync(dirname(localPath), { recursive: true });
  let start = 0;
  if (entries[0]!.kind === "image") {
    writeFileSync(localPath, entries[0]!.data);
    start = 1;
  }
  if (start < entries.length) {
    const db = new DatabaseSync(localPath);
    try {
      for (const e of entries.slice(start)) {
        if (!db.applyChangeset(e.data)) throw new Error(`Replaying version ${e.version} of ${id} conflicted with the database.`);
      }
    } finally {
      db.close();
    }
  }
  return entries.at(-1)!.version;
}
