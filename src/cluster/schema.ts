/**
 * The cluster's tables in PostgreSQL: hosts (membership), named workers (the registry every host
 * serves from), and each actor's write log (what an actor is rebuilt from on another host). The
 * leases table is fencing.ts's, shared with replicated storage.
 */
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import { LEASES_DDL } from "../bindings/storage/fencing.ts";

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
CREATE TABLE IF NOT EXISTS mayfly_actor_log (
  actor TEXT NOT NULL,
  version BIGINT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('image', 'changeset')),
  data BYTEA NOT NULL,
  token BIGINT NOT NULL,
  written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (actor, version)
);
${LEASES_DDL};
`;

/** The NOTIFY channel a deploy signals on: every host reloads its named workers. */
export const WORKERS_CHANNEL = "mayfly_workers";

export function migrateCluster(backend: PostgresBackend): Promise<void> {
  return backend.migrate("cluster", CLUSTER_DDL);
}
