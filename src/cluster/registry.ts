/**
 * The named-worker registry in PostgreSQL: each worker's bundled code and its config, published by
 * `mayfly cluster deploy` (or a host run with --watch) and loaded by every host, which reloads when a
 * deploy NOTIFYs. Hosts never bundle from their own disk in cluster mode: every host serves the same code.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import type { Logger } from "pino";
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import { namedWorkerSchema, type NamedWorkerConfig } from "../server/config.ts";
import { bundleNamedWorker, type WorkerBundle } from "../server/named-workers.ts";
import { ConfigError } from "../errors.ts";
import { WORKERS_CHANNEL } from "./schema.ts";

export interface WorkerRecord {
  name: string;
  config: NamedWorkerConfig;
  bundle: WorkerBundle;
  hash: string;
}

/** Bundles the workers of a config (as `mayfly serve` would) into records. */
export function bundleRecords(workers: Record<string, NamedWorkerConfig>, baseDir: string): WorkerRecord[] {
  return Object.entries(workers).map(([name, config]) => {
    const bundle = bundleNamedWorker(name, config, baseDir);
    const hash = createHash("sha256").update(JSON.stringify(config)).update("\0").update(bundle.source).update(JSON.stringify(bundle.project ?? null)).digest("hex").slice(0, 16);
    return { name, config, bundle, hash };
  });
}

/**
 * Makes `records` the cluster's named workers (those absent are removed), in one transaction that
 * ends with a NOTIFY, so every host reloads once. Resolves to what changed.
 */
export async function publishWorkers(backend: PostgresBackend, records: WorkerRecord[], options: { onlyIfEmpty?: boolean } = {}): Promise<{ changed: string[]; removed: string[] }> {
  return backend.transaction(async (c) => {
    // One deploy at a time: two publishing at once would interleave their upserts and deletes.
    await c.query("SELECT pg_advisory_xact_lock(hashtext('mayfly.deploy'))");
    const before = new Map((await c.query<{ name: string; hash: string }>("SELECT name, hash FROM mayfly_workers")).rows.map((r) => [r.name, r.hash]));
    if (options.onlyIfEmpty && before.size > 0) return { changed: [], removed: [] };
    const changed: string[] = [];
    for (const r of records) {
      if (before.get(r.name) === r.hash) continue;
      changed.push(r.name);
      await c.query(
        `INSERT INTO mayfly_workers (name, config, bundle, project, hash, deployed_at) VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (name) DO UPDATE SET config = $2, bundle = $3, project = $4, hash = $5, deployed_at = now()`,
        [r.name, JSON.stringify(r.config), r.bundle.source, r.bundle.project ? JSON.stringify(r.bundle.project) : null, r.hash]);
    }
    const keep = new Set(records.map((r) => r.name));
    const removed = [...before.keys()].filter((n) => !keep.has(n));
    if (removed.length) await c.query("DELETE FROM mayfly_workers WHERE name = ANY($1)", [removed]);
    if (changed.length || removed.length) await c.query(`NOTIFY ${WORKERS_CHANNEL}`);
    return { changed, removed };
  });
}

/** Every published worker; a record that no longer validates (an older mayfly wrote it) is an error naming it. */
export async function loadRecords(backend: PostgresBackend): Promise<WorkerRecord[]> {
  const { rows } = await backend.query<{ name: string; config: unknown; bundle: string; project: WorkerBundle["project"] | null; hash: string }>(
    "SELECT name, config, bundle, project, hash FROM mayfly_workers ORDER BY name");
  return rows.map((r) => {
    const config = namedWorkerSchema.safeParse(r.config);
    if (!config.success) throw new ConfigError(`The registry's worker "${r.name}": ${config.error.issues[0]!.path.join(".")}: ${config.error.issues[0]!.message}`);
    return { name: r.name, config: config.data, bundle: { source: r.bundle, ...(r.project ? { project: r.project } : {}) }, hash: r.hash };
  });
}

/**
 * LISTENs for deploys on a connection of its own, calling `onChange` for each; when the connection is
 * lost it reconnects (backing off) and calls `onChange` once more, since a deploy may have been missed.
 */
export function listenForDeploys(url: string, onChange: () => void, log?: Logger): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 100;
  let connectedBefore = false;
  let timer: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    c.on("end", () => {
      if (closed || client !== c) return;
      client = undefined;
      log?.warn("registry listener disconnected; reconnecting");
      timer = setTimeout(() => void connect(), delay);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${WORKERS_CHANNEL}`);
    } catch {
      await c.end().catch(() => {});
      delay = Math.min(delay * 2, 5_000);
      if (!closed) timer = setTimeout(() => void connect(), delay);
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    const reconnected = connectedBefore;
    connectedBefore = true;
    delay = 100;
    client = c;
    c.on("notification", () => onChange());
    if (reconnected) onChange();
  };
  const ready = connect();
  return {
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await ready;
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
