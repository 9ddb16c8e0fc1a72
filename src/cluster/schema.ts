/**
 * The cluster's tables in PostgreSQL: hosts (membership) and named workers (the registry every host
 * serves from). The leases table is fencing.ts's, and each actor's write log (what an actor is
 * rebuilt from on another host) is replicated SQLite's log (sqlite-log.ts), both shared with D1.
 */
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import { LEASES_DDL } from "../bindings/storage/fencing.ts";
import { ensureLog } from "../bindings/storage/sqlite-log.ts";
import { ALARMS_DDL } from "./alarms.ts";

export const CLUSTER_DDL = `
CREATE TABLE IF NOT EXISTS mayfly_hosts (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  address TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  draining BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS mayfly_workers (
  name TEXT PRIMARY KEY,
  config JSONB NOT NULL,
  bundle TEXT NOT NULL,
  project JSONB,
  hash TEXT NOT NULL,
  deployed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
${LEASES_DDL};
${ALARMS_DDL};
`;

/** The NOTIFY channel a deploy signals on: every host reloads its named workers. */
export const WORKERS_CHANNEL = "mayfly_workers";

export async function migrateCluster(backend: PostgresBackend): Promise<void> {
  await backend.migrate("cluster", CLUSTER_DDL);
  await ensureLog(backend);
}
