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
}

export interface RunningServer {
  url: string;
  loader: WorkerLoader;
  /** The named workers served now (at /w/<name>/). */
  workers(): string[];
  /** The plugin host, when the server has a `plugins` section. */
  plugins?: PluginHost;
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
  const prepare = (defs: Record<string, NamedWorkerConfig>, dir: string, dataDir: string | undefined): Map<string, NamedWorker> =>
    prepareNamedWorkers(defs, { baseDir: dir, dataDir: resolve(dir, dataDir ?? ".mayfly/data"), bindings, services, loader: () => loader!, onRun: (name, event) => metrics.recordWorker(name, event) });
  const workers = prepare(opts.workers ?? {}, baseDir, opts.dataDir);
  let crons: { reschedule(): void; stop(): void } | undefined;
  const watcher = opts.watch ? watchNamedWorkers({
    workers,
    onReload: () => crons?.reschedule(),
    extraFiles: opts.configFile ? [opts.configFile] : [],
    log: opts.log,
    rebuild: () => {
      // Worker definitions come from the file again; port, host and tokens need a restart.
      const c = opts.configFile ? loadConfig(opts.configFile, opts.configEnv) : undefined;
      const dir = c?.baseDir ?? baseDir;
      return prepare(c ? c.workers ?? {} : opts.workers ?? {}, dir, c?.dataDir ?? opts.dataDir);
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
    throw e;
  }
  let plugins: PluginHost | undefined;
  try {
    plugins = opts.plugins ? startPlugins(opts.plugins, { loader, baseDir, dataDir: resolve(baseDir, opts.dataDir ?? ".mayfly/data"), log: opts.log }) : undefined;
  } catch (e) {
    watcher?.close();
    await loader.close();
    throw e;
  }
  const app = createApp({ plugins,
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
  const running = loader;
  crons = startCrons(running, workers, opts.log);
  opts.log?.info({ url: `http://${shownHost}:${address.port}`, tokens: opts.tokens ? Object.keys(opts.tokens).length : 0, workers: [...workers.keys()] }, "listening");
  return {
    url: `http://${shownHost}:${address.port}`,
    loader: running,
    workers: () => [...workers.keys()],
    ...(plugins ? { plugins } : {}),
    close: async () => {
      // Stop accepting, let in-flight requests finish, then stop the executors.
      opts.log?.info("draining");
      watcher?.close();
      crons?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      plugins?.close();
      await closeActors(bindings);
      await running.close();
      opts.log?.info("closed");
    },
  };
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
    workers: config.workers, baseDir: config.baseDir, dataDir: config.dataDir, configFile: config.file, plugins: config.plugins,
    npm: config.npm ? { ...defined(config.npm), cacheDir: resolve(config.baseDir, config.npm.cacheDir ?? ".mayfly/npm") } : undefined,
    ...defined(overrides),
    // A flag for one bound leaves the file's other bounds in place.
    bounds: { ...defined(config.bounds), ...defined(overrides.bounds) },
  };
}
