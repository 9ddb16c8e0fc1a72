/**
 * Cluster mode (issue 15): many `mayfly serve` hosts behind a load balancer behaving as one. The
 * shared state is in engines operators already run: PostgreSQL holds the named-worker registry, host
 * membership, actor leases (with fencing tokens) and actors' write logs (and, through the storage
 * bindings' PostgreSQL backend, KV, SQL and workspaces); an S3-compatible store holds blob buckets.
 *
 * A host opens the cluster before it starts serving (`openCluster`), joins it once it listens
 * (`join`: its membership row, with the address other hosts forward actor calls to), and leaves it on
 * drain (`drain`: actors' leases released, so other hosts take them at once instead of after the lease time).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Hono } from "hono";
import type { Logger } from "pino";
import { postgresBackend, type PostgresBackend } from "../bindings/storage/postgres.ts";
import { s3Backend, type S3Backend } from "../bindings/blob/s3.ts";
import { DEFAULT_DRAIN_MS, DEFAULT_LEASE_MS, type ClusterConfig } from "./config.ts";
import { migrateCluster } from "./schema.ts";
import { Membership, type HostRecord } from "./membership.ts";
import { ClusterPlacement } from "./placement.ts";
import { listenForDeploys, loadRecords, type WorkerRecord } from "./registry.ts";
import { mountForwardRoute } from "./forward.ts";

export { clusterConfigSchema, DEFAULT_LEASE_MS, DEFAULT_DRAIN_MS, type ClusterConfig } from "./config.ts";
export { bundleRecords, publishWorkers, loadRecords, type WorkerRecord } from "./registry.ts";
export { ClusterPlacement } from "./placement.ts";
export { migrateCluster, CLUSTER_DDL } from "./schema.ts";
export type { HostRecord } from "./membership.ts";

export interface ClusterOpenOptions {
  config: ClusterConfig;
  log?: Logger;
}

export interface Cluster {
  readonly hostId: string;
  /** hostId#incarnation: this process, as lease owner. */
  readonly owner: string;
  readonly leaseMs: number;
  readonly drainMs: number;
  readonly backend: PostgresBackend;
  readonly placement: ClusterPlacement;
  /** For the named workers' storage bindings (see PrepareOptions.backends). */
  readonly backends: { postgres: PostgresBackend; blob?: S3Backend };
  /** The named workers published to the registry. */
  loadWorkers(): Promise<WorkerRecord[]>;
  /** Calls `fn` after each deploy (LISTEN/NOTIFY), until close. */
  onDeploy(fn: () => void): void;
  /** Starts heartbeats at `address` (host:port; the config's `advertise` wins). */
  join(address: string): Promise<void>;
  /** The internal route other hosts forward actor calls to. */
  mount(app: Hono<any>): void;
  /** Whether PostgreSQL (and S3, when configured) answer now; remembered for storeAvailable. */
  ping(timeoutMs?: number): Promise<boolean>;
  /** The shared stores' state at the last ping (pinged every second). */
  storeAvailable(): boolean;
  hosts(): Promise<HostRecord[]>;
  /** Leaving: marked draining, every actor lease released. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Connects to PostgreSQL and creates the cluster's tables; fails (naming the cause) when PostgreSQL cannot be reached. */
export async function openCluster(options: ClusterOpenOptions): Promise<Cluster> {
  const { config, log } = options;
  const hostId = config.hostId ?? hostname();
  const owner = `${hostId}#${randomBytes(6).toString("hex")}`;
  const leaseMs = config.leaseMs ?? DEFAULT_LEASE_MS;
  const backend = postgresBackend({ url: config.postgresUrl, connectionTimeoutMs: Math.min(5_000, leaseMs) });
  try {
    await migrateCluster(backend);
  } catch (e) {
    await backend.close().catch(() => {});
    throw e;
  }
  // Blob buckets on S3, their quotas kept in a ledger in the same PostgreSQL (so they hold across hosts).
  const s3 = config.s3 ? s3Backend({ ...config.s3, region: config.s3.region ?? "us-east-1", quotaLedger: backend }) : undefined;
  let address = config.advertise ?? "";
  const placement = new ClusterPlacement({ backend, hostId, owner, get address() { return address; }, secret: config.secret, leaseMs, log });
  let membership: Membership | undefined;
  let available = true;
  const ping = async (timeoutMs = 1_000) => {
    const [pg, blob] = await Promise.all([backend.ping(timeoutMs), s3 ? s3.ping(timeoutMs) : true]);
    return (available = pg && blob);
  };
  const pinger = setInterval(() => void ping(), 1_000);
  pinger.unref();
  const deployListeners: (() => void)[] = [];
  const listener = listenForDeploys(config.postgresUrl, () => { for (const fn of deployListeners) fn(); }, log);
  return {
    hostId, owner, leaseMs, backend, placement,
    drainMs: config.drainMs ?? DEFAULT_DRAIN_MS,
    backends: { postgres: backend, ...(s3 ? { blob: s3 } : {}) },
    loadWorkers: () => loadRecords(backend),
    onDeploy: (fn) => void deployListeners.push(fn),
    join: async (listening) => {
      address ||= listening;
      membership = new Membership(backend, hostId, owner, address, Math.max(200, Math.floor(leaseMs / 3)));
      await membership.beat();
      log?.info({ hostId, address, owner }, "joined the cluster");
    },
    mount: (app) => mountForwardRoute(app, config.secret, (name) => placement.namespace(name)),
    ping,
    storeAvailable: () => available,
    hosts: () => membership?.hosts() ?? Promise.resolve([]),
    drain: async () => {
      await membership?.stop(true);
      await placement.releaseAll();
    },
    close: async () => {
      clearInterval(pinger);
      placement.stop();
      await membership?.stop(false);
      await listener.close();
      s3?.close();
      await backend.close().catch(() => {});
    },
  };
}
