/**
 * The mayfly server: the HTTP API on Node's http server (through @hono/node-server), with header and
 * request timeouts against slow clients, a loopback-only rule when no tokens are configured, and a
 * graceful close that lets in-flight runs finish.
 */
import { createAdaptorServer } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { WorkerLoader, type WorkerLoaderOptions } from "../loader/worker-loader.ts";
import type { NpmOptions } from "../bundler/npm/index.ts";
import { ConfigError } from "../errors.ts";
import { createApp, type Permission, type TokenGrant } from "./app.ts";
import { checkBounds, tokenBoundsSchema, type Bounds } from "./bounds.ts";
import { resolveLimits } from "../engine/limits.ts";
import { Metrics } from "./metrics.ts";
import type { Logger } from "pino";
import { resolve } from "node:path";
import type { MayflyConfig, NamedWorkerConfig } from "./config.ts";
import { prepareNamedWorkers, type NamedWorker } from "./named-workers.ts";
import { ActorNamespace } from "../actors/index.ts";
import { watchNamedWorkers } from "./watch.ts";
import { startCrons } from "./scheduler.ts";
import { loadConfig } from "./config.ts";
import { playgroundScript } from "./playground/index.ts";
import { startPlugins, type PluginsConfig } from "./plugins.ts";
import type { PluginHost } from "../plugins/index.ts";
import { openCluster, publishWorkers, bundleRecords, type Cluster, type ClusterConfig, type WorkerRecord } from "../cluster/index.ts";

export interface ServerOptions {
  port?: number;
  /** Default 127.0.0.1. Listening elsewhere without tokens leaves the API refusing every request. */
  host?: string;
  /** token → permissions, or { permissions, bounds } to give the token bounds of its own. */
  tokens?: Record<string, Permission[] | TokenGrant>;
  /** Ceilings on what callers may ask for (limits, body sizes) and runs in flight; see DEFAULT_BOUNDS. */
  bounds?: Partial<Bounds>;
  /** The older name of bounds.maxRequestBodyBytes. */
  maxBodyBytes?: number;
  /** A client must send its request headers within this time (default 10 s). */
  headersTimeoutMs?: number;
  /** And its whole request within this time (default 30 s). */
  requestTimeoutMs?: number;
  loader?: WorkerLoaderOptions;
  /** Structured JSON logs (pino) of requests and lifecycle; none when absent. */
  log?: Logger;
  /** Named workers, served at /w/<name>/* (usually from mayfly.config.json, see loadConfig). */
  workers?: Record<string, NamedWorkerConfig>;
  /** Relative worker paths are resolved against this directory (default: the working directory). */
  baseDir?: string;
  /** Where named workers' kv/sql/blob bindings keep their files (default <baseDir>/.mayfly/data). */
  dataDir?: string;
  /** Serve the playground page at "/" (default true). */
  playground?: boolean;
  /** Rebuild named workers when a file of theirs (or `configFile`) changes. */
  watch?: boolean;
  /** The config file the workers came from: re-read on change when watching. */
  configFile?: string;
  /** `${NAME}` values for re-reading the config file. */
  configEnv?: Record<string, string | undefined>;
  /** Grants npm packages to named workers (`packageJson`) and to POST /v1/run; none without it. */
  npm?: NpmOptions;
  /** Plugins: grants, hook rules, plugins installed from files; served at /p/<name>/ (config's `plugins`). */
  plugins?: PluginsConfig;
  /**
   * Cluster mode (src/cluster/): named workers come from the shared registry in PostgreSQL (with
   * `watch`, this host publishes the config's workers there first), storage bindings use the shared
   * backends, actors have one owner across hosts, and /readyz follows PostgreSQL.
   */
  cluster?: ClusterConfig;
}

export interface RunningServer {
  url: string;
  loader: WorkerLoader;
  /** The named workers served now (at /w/<name>/). */
  workers(): string[];
  /** The plugin host, when the server has a `plugins` section. */
  plugins?: PluginHost;
  /** Cluster mode: the cluster this host joined. */
  cluster?: Cluster;
  /**
   * Stops gracefully: /readyz answers 503, no new connections, in-flight requests finish (in cluster
   * mode within the drain time, then connections are cut), actors' leases released, executors stopped.
   */
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const host = opts.host ?? "127.0.0.1";
  checkBounds(opts.bounds, "bounds");
  for (const [token, g] of Object.entries(opts.tokens ?? {})) if (!Array.isArray(g)) checkBounds(g.bounds, `tokens.${token.slice(0, 4)}….bounds`, tokenBoundsSchema);
  const baseDir = opts.baseDir ?? process.cwd();
  // Bundle named workers before starting anything: a broken one stops startup with its name.
  const bindings = new Map<string, unknown>();
  let loader: WorkerLoader | undefined;
  // Service bindings find their target in the served set when called, and the loader once it exists.
  const services = { loader: () => loader!, resolve: (name: string): NamedWorker | undefined => workers.get(name) };
  const metrics = new Metrics(() => loader);
  const cluster = opts.cluster ? await openCluster({ config: opts.cluster, log: opts.log }) : undefined;
  const clustered = cluster ? { backends: cluster.backends, placement: cluster.placement } : {};
  const prepare = (defs: Record<string, NamedWorkerConfig>, dir: string, dataDir: string | undefined, records?: WorkerRecord[]): Map<string, NamedWorker> =>
    prepareNamedWorkers(defs, {
      baseDir: dir, dataDir: resolve(dir, dataDir ?? ".mayfly/data"), bindings, services, loader: () => loader!, onRun: (name, event) => metrics.recordWorker(name, event),
      ...clustered,
      ...(records ? { prebuilt: (name: string) => records.find((r) => r.name === name)?.bundle } : {}),
    });
  let workers: Map<string, NamedWorker>;
  /** Cluster mode: the registry hash of each worker served now. */
  const servedHashes = new Map<string, string>();
  let crons: { reschedule(): void; stop(): void } | undefined;
  try {
    workers = cluster ? await clusterWorkers(cluster, opts, baseDir, prepare, servedHashes) : prepare(opts.workers ?? {}, baseDir, opts.dataDir);
  } catch (e) {
    await cluster?.close();
    throw e;
  }
  // Cluster mode: a deploy (NOTIFY) replaces the served set in place, as --watch does locally.
  // Only the workers whose record changed are rebuilt (their actors restart on the new code); the
  // others keep serving as they are. Reloads run one after another, in the order of the notifications.
  let reloading = Promise.resolve();
  cluster?.onDeploy(() => void (reloading = reloading.then(async () => {
    const records = await cluster.loadWorkers();
    const changed = records.filter((r) => servedHashes.get(r.name) !== r.hash || !workers.has(r.name));
    const next = prepare(Object.fromEntries(changed.map((r) => [r.name, r.config])), baseDir, opts.dataDir, changed);
    const keep = new Set(records.map((r) => r.name));
    for (const name of [...workers.keys()]) if (!keep.has(name)) workers.delete(name);
    for (const [name, w] of next) workers.set(name, w);
    servedHashes.clear();
    for (const r of records) servedHashes.set(r.name, r.hash);
    crons?.reschedule();
    opts.log?.info({ changed: changed.map((r) => r.name), workers: [...workers.keys()] }, "reloaded from the cluster's registry");
  }).catch((e: Error) => opts.log?.error({ err: e.message }, "registry reload failed; the previous workers keep serving"))));
  const watcher = opts.watch ? watchNamedWorkers({
    workers,
    onReload: () => crons?.reschedule(),
    extraFiles: opts.configFile ? [opts.configFile] : [],
    log: opts.log,
    rebuild: () => {
      // Worker definitions come from the file again; port, host and tokens need a restart.
      const c = opts.configFile ? loadConfig(opts.configFile, opts.configEnv) : undefined;
      const dir = c?.baseDir ?? baseDir;
      const defs = c ? c.workers ?? {} : opts.workers ?? {};
      if (!cluster) return prepare(defs, dir, c?.dataDir ?? opts.dataDir);
      // Cluster mode: what this host builds is published for every host (their reload follows the NOTIFY).
      const records = bundleRecords(defs, dir);
      for (const r of records) servedHashes.set(r.name, r.hash);
      void publishWorkers(cluster.backend, records).catch((e: Error) => opts.log?.error({ err: e.message }, "publishing the workers failed"));
      return prepare(defs, dir, c?.dataDir ?? opts.dataDir, records);
    },
  }) : undefined;
  const npm = opts.npm ?? opts.loader?.npm;
  for (const w of workers.values()) {
    if (w.code.packageJson && !npm) watcher?.close();
    if (w.code.packageJson && !npm) throw new ConfigError(`workers.${w.name}.packageJson: npm packages need the config's "npm" section (or --npm-cache-dir).`);
  }
  loader = new WorkerLoader({ ...opts.loader, npm, onRun: (r) => { metrics.record(r); opts.loader?.onRun?.(r); } });
  // The playground's script is bundled while the executors start, not on its first visitor's time.
  if (opts.playground !== false) playgroundScript().catch((e: Error) => opts.log?.warn({ err: e.message }, "playground bundle failed"));
  await loader.ready();
  // Named workers' packages are resolved, verified and bundled now (then cached on disk): a missing or
  // tampered package stops startup with the worker's name, as a broken file does.
  try {
    await Promise.all([...workers.values()].filter((w) => w.code.packageJson).map(async (w) => {
      const stub = loader!.load(w.code);
      try {
        await stub.npmReport();
      } catch (e) {
        throw new ConfigError(`workers.${w.name}: ${(e as Error).name}: ${(e as Error).message}`);
      } finally {
        stub.dispose();
      }
    }));
  } catch (e) {
    watcher?.close();
    await closeActors(bindings);
    await loader.close();
    await cluster?.close();
    throw e;
  }
  let plugins: PluginHost | undefined;
  try {
    plugins = opts.plugins ? startPlugins(opts.plugins, { loader, baseDir, dataDir: resolve(baseDir, opts.dataDir ?? ".mayfly/data"), log: opts.log }) : undefined;
  } catch (e) {
    watcher?.close();
    await loader.close();
    await cluster?.close();
    throw e;
  }
  let draining = false;
  let closing: Promise<void> | undefined;
  const app = createApp({ plugins,
    health: {
      // Ready: not draining, and (cluster mode) PostgreSQL answers: a host that cannot reach it must
      // not be sent traffic it would answer from stale state.
      ready: async () => {
        if (draining) return { ready: false, reason: "draining" };
        if (cluster && !(await cluster.ping(1_000))) return { ready: false, reason: "the shared store (PostgreSQL or S3) is unreachable" };
        return { ready: true };
      },
      ...(cluster ? { storeAvailable: () => cluster.storeAvailable() } : {}),
    },
    ...(cluster ? { mount: (a: Parameters<Cluster["mount"]>[0]) => cluster.mount(a) } : {}),
    loader, metrics, tokens: opts.tokens, bounds: opts.bounds, maxBodyBytes: opts.maxBodyBytes, log: opts.log, workers, playground: opts.playground,
    defaultLimits: resolveLimits(opts.loader?.limits, undefined),
    lockedOut: !opts.tokens && !LOOPBACK.test(host),
  });
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const server = createAdaptorServer({
    fetch: app.fetch,
    // Node checks these timeouts every connectionsCheckingInterval: often enough to cut slowloris clients.
    serverOptions: { headersTimeout, requestTimeout: opts.requestTimeoutMs ?? 30_000, connectionsCheckingInterval: Math.min(1_000, headersTimeout) },
  }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8787, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  await cluster?.join(`${shownHost}:${address.port}`);
  const running = loader;
  crons = startCrons(running, workers, opts.log);
  opts.log?.info({ url: `http://${shownHost}:${address.port}`, tokens: opts.tokens ? Object.keys(opts.tokens).length : 0, workers: [...workers.keys()] }, "listening");
  return {
    url: `http://${shownHost}:${address.port}`,
    loader: running,
    workers: () => [...workers.keys()],
    ...(plugins ? { plugins } : {}),
    ...(cluster ? { cluster } : {}),
    close: () => (closing ??= shutdown()),
  };

  async function shutdown(): Promise<void> {
    // Not ready any more, stop accepting, let in-flight requests finish, release the actors'
    // leases (other hosts take them at once), then stop the executors.
    draining = true;
    opts.log?.info("draining");
    watcher?.close();
    crons?.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // close() ends the connections idle now; a keep-alive connection whose request finishes later
    // would hold the server open until its client leaves: end those as they become idle.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    void closed.then(() => clearInterval(idle));
    if (cluster) {
      // A bound: a client holding a request open must not keep the host (and its leases) forever.
      const cut = setTimeout(() => server.closeAllConnections(), cluster.drainMs);
      await closed;
      clearTimeout(cut);
    } else await closed;
    plugins?.close();
    await closeActors(bindings);
    await cluster?.drain();
    await running.close();
    await cluster?.close();
    opts.log?.info("closed");
  }
}

/**
 * Cluster mode's named workers: from the registry; with --watch this host first publishes the
 * config's workers there (bundled from its files, which it then watches).
 */
async function clusterWorkers(cluster: Cluster, opts: ServerOptions, baseDir: string, prepare: (defs: Record<string, NamedWorkerConfig>, dir: string, dataDir: string | undefined, records?: WorkerRecord[]) => Map<string, NamedWorker>, hashes: Map<string, string>): Promise<Map<string, NamedWorker>> {
  const local = opts.workers ?? {};
  if (opts.watch && Object.keys(local).length) {
    const records = bundleRecords(local, baseDir);
    await publishWorkers(cluster.backend, records);
    for (const r of records) hashes.set(r.name, r.hash);
    return prepare(local, baseDir, opts.dataDir, records);
  }
  let records = await cluster.loadWorkers();
  if (records.length === 0 && Object.keys(local).length) {
    // An empty registry (a new cluster) is seeded from the first host's config; after that only a
    // deploy (or a --watch host) changes it, so a host restarted with an older config cannot revert one.
    const { changed } = await publishWorkers(cluster.backend, bundleRecords(local, baseDir), { onlyIfEmpty: true });
    if (changed.length) opts.log?.info({ workers: changed }, "seeded the cluster's empty registry from the config");
    records = await cluster.loadWorkers();
  } else if (Object.keys(local).length) opts.log?.info("cluster mode: named workers come from the registry (mayfly cluster deploy changes them), not the config");
  for (const r of records) hashes.set(r.name, r.hash);
  return prepare(Object.fromEntries(records.map((r) => [r.name, r.config])), baseDir, opts.dataDir, records);
}

/** Durable actor namespaces of named workers: evicted, their alarms stopped. */
async function closeActors(bindings: Map<string, unknown>): Promise<void> {
  for (const b of bindings.values()) if (b instanceof ActorNamespace) await b.close();
}

/** Server options from a config file; explicit options (e.g. command-line flags) win. */
export function serverOptionsFromConfig(config: MayflyConfig, overrides: ServerOptions = {}): ServerOptions {
  const defined = <T extends object>(o: T | undefined) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    port: config.port, host: config.host, tokens: config.tokens as ServerOptions["tokens"], maxBodyBytes: config.maxBodyBytes,
    workers: config.workers, baseDir: config.baseDir, dataDir: config.dataDir, configFile: config.file, plugins: config.plugins, cluster: config.cluster,
    npm: config.npm ? { ...defined(config.npm), cacheDir: resolve(config.baseDir, config.npm.cacheDir ?? ".mayfly/npm") } : undefined,
    ...defined(overrides),
    // A flag for one bound leaves the file's other bounds in place.
    bounds: { ...defined(config.bounds), ...defined(overrides.bounds) },
  };
}
