/**
 * Cluster mode on the command line: `mayfly serve --cluster` (flags, or MAYFLY_* environment
 * variables, over the config's `cluster` section) and `mayfly cluster deploy` / `hosts`.
 */
import type { Command } from "commander";
import { clusterConfigSchema, bundleRecords, migrateCluster, publishWorkers, type ClusterConfig } from "../cluster/index.ts";
import { postgresBackend } from "../bindings/storage/postgres.ts";
import { loadConfig } from "../server/config.ts";
import { ConfigError } from "../errors.ts";

export interface ClusterFlags {
  cluster?: boolean;
  postgresUrl?: string;
  hostId?: string;
  advertise?: string;
  clusterSecret?: string;
  leaseMs?: number;
  drainMs?: number;
}

/**
 * The cluster settings for `serve`: the config file's section, then the environment (MAYFLY_POSTGRES_URL,
 * MAYFLY_HOST_ID, MAYFLY_ADVERTISE, MAYFLY_CLUSTER_SECRET, and MAYFLY_S3_BUCKET with MAYFLY_S3_ENDPOINT,
 * MAYFLY_S3_REGION, MAYFLY_S3_ACCESS_KEY_ID, MAYFLY_S3_SECRET_ACCESS_KEY), then flags; none unless
 * --cluster or the section.
 */
export function clusterFromFlags(flags: ClusterFlags, env: Record<string, string | undefined>, fromFile?: ClusterConfig): ClusterConfig | undefined {
  if (!flags.cluster && !fromFile) return undefined;
  const pick = <T>(...values: (T | undefined)[]) => values.find((v) => v !== undefined && v !== "");
  const merged = {
    ...fromFile,
    postgresUrl: pick(flags.postgresUrl, fromFile?.postgresUrl, env.MAYFLY_POSTGRES_URL),
    hostId: pick(flags.hostId, fromFile?.hostId, env.MAYFLY_HOST_ID),
    advertise: pick(flags.advertise, fromFile?.advertise, env.MAYFLY_ADVERTISE),
    secret: pick(flags.clusterSecret, fromFile?.secret, env.MAYFLY_CLUSTER_SECRET),
    leaseMs: pick(flags.leaseMs, fromFile?.leaseMs),
    drainMs: pick(flags.drainMs, fromFile?.drainMs),
    s3: fromFile?.s3 ?? s3FromEnv(env),
  };
  const parsed = clusterConfigSchema.safeParse(Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const hint = issue.path[0] === "postgresUrl" ? " (--postgres-url or MAYFLY_POSTGRES_URL)" : issue.path[0] === "secret" ? " (--cluster-secret or MAYFLY_CLUSTER_SECRET)" : "";
    throw new ConfigError(`cluster.${issue.path.join(".")}: ${issue.message}${hint}`);
  }
  return parsed.data;
}

function s3FromEnv(env: Record<string, string | undefined>): ClusterConfig["s3"] {
  if (!env.MAYFLY_S3_BUCKET) return undefined;
  const key = env.MAYFLY_S3_ACCESS_KEY_ID;
  const secret = env.MAYFLY_S3_SECRET_ACCESS_KEY;
  return {
    bucket: env.MAYFLY_S3_BUCKET,
    ...(env.MAYFLY_S3_ENDPOINT ? { endpoint: env.MAYFLY_S3_ENDPOINT, forcePathStyle: true } : {}),
    ...(env.MAYFLY_S3_REGION ? { region: env.MAYFLY_S3_REGION } : {}),
    // Without both, the SDK's default chain (instance or pod role).
    ...(key && secret ? { credentials: { accessKeyId: key, secretAccessKey: secret } } : {}),
  };
}

export function addClusterCommands(program: Command): void {
  const cluster = program.command("cluster").description("many hosts sharing PostgreSQL: publish named workers, list hosts");
  cluster
    .command("deploy")
    .description("bundle the config's named workers and publish them to the cluster's registry; every host reloads")
    .requiredOption("-c, --config <file>", "mayfly.config.json with the workers")
    .option("--postgres-url <url>", "the cluster's PostgreSQL (default: the config's cluster.postgresUrl, or MAYFLY_POSTGRES_URL)")
    .action(async (opts: { config: string; postgresUrl?: string }) => {
      await withBackend(opts, async (backend, config) => {
        const records = bundleRecords(config.workers ?? {}, config.baseDir);
        const { changed, removed } = await publishWorkers(backend, records);
        process.stdout.write(`${records.length} worker(s) in the registry; changed: ${changed.join(", ") || "none"}; removed: ${removed.join(", ") || "none"}\n`);
      });
    });
  cluster
    .command("hosts")
    .description("list the cluster's hosts and their heartbeats")
    .requiredOption("-c, --config <file>", "mayfly.config.json (for its cluster section)")
    .option("--postgres-url <url>", "the cluster's PostgreSQL")
    .action(async (opts: { config: string; postgresUrl?: string }) => {
      await withBackend(opts, async (backend) => {
        const { rows } = await backend.query("SELECT id, address, draining, (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::int AS age_ms FROM mayfly_hosts ORDER BY id");
        for (const r of rows) process.stdout.write(`${r.id}\t${r.address}\t${r.draining ? "draining" : "up"}\theartbeat ${r.age_ms} ms ago\n`);
      });
    });
}

async function withBackend(opts: { config: string; postgresUrl?: string }, fn: (backend: ReturnType<typeof postgresBackend>, config: ReturnType<typeof loadConfig>) => Promise<void>): Promise<void> {
  try {
    await run(opts, fn);
  } catch (e) {
    // One line naming the cause (a broken worker, PostgreSQL unreachable), as the other commands do.
    process.stderr.write(`mayfly: ${(e as Error).name}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

async function run(opts: { config: string; postgresUrl?: string }, fn: (backend: ReturnType<typeof postgresBackend>, config: ReturnType<typeof loadConfig>) => Promise<void>): Promise<void> {
  const config = loadConfig(opts.config, process.env);
  const url = opts.postgresUrl ?? config.cluster?.postgresUrl ?? process.env.MAYFLY_POSTGRES_URL;
  if (!url) throw new ConfigError("No PostgreSQL URL: --postgres-url, the config's cluster.postgresUrl, or MAYFLY_POSTGRES_URL.");
  const backend = postgresBackend({ url });
  try {
    await migrateCluster(backend);
    await fn(backend, config);
  } finally {
    await backend.close();
  }
}
