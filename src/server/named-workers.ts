/**
 * Named workers from the config file, served at /w/<name>/*. Each worker's file is bundled once at
 * startup; every request then runs in a fresh isolate (or in one warm instance with `warm: true`).
 * The worker sees the request as if it were mounted at "/": /w/hello/api?x=1 arrives as /api?x=1.
 */
import { resolve } from "node:path";
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { bundleWorker } from "../bundler/index.ts";
import { readProjectPackages } from "../bundler/npm/index.ts";
import { allowNetRules, egress, type EgressPolicy } from "../bindings/egress/index.ts";
import { kv } from "../bindings/kv/index.ts";
import { sql } from "../bindings/sql/index.ts";
import { blobBucket, type BlobBackend } from "../bindings/blob/index.ts";
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import { workspace } from "../bindings/workspace/index.ts";
import { ActorNamespace, actorNamespace, type ActorPlacement } from "../actors/index.ts";
import { ConfigError, LimitError } from "../errors.ts";
import type { WorkerCode } from "../loader/worker-code.ts";
import type { TailEvent } from "../bindings/tails/index.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { Logger } from "pino";
import type { NamedWorkerConfig } from "./config.ts";
import { NamedServiceBinding, type ServiceContext } from "./service-binding.ts";
import { callRun, fetchRun } from "./worker-runs.ts";

export interface NamedWorker {
  name: string;
  /** Cache id for warm workers: the name and a hash of the bundled code. */
  id: string;
  warm: boolean;
  code: WorkerCode;
  /** Absolute paths of the files bundled into it. */
  inputs: string[];
  /** Cron Triggers for its scheduled() handler. */
  crons: string[];
  /** Whether it reaches shared state (storage, actors, other workers): in cluster mode, not served while the store is unreachable. */
  stateful: boolean;
}

export interface PrepareOptions {
  /** Relative worker paths are resolved against it. */
  baseDir: string;
  /** Where kv/sql/blob bindings keep their files. */
  dataDir: string;
  /** Storage bindings kept across reloads (one open file per namespace, not one per reload). */
  bindings?: Map<string, unknown>;
  /** The loader durable actors run in (a function: the server makes its loader after preparing workers). */
  loader?: () => WorkerLoader;
  /** For service bindings between named workers. */
  services?: ServiceContext;
  /** Every run of a named worker, by name (per-worker metrics). */
  onRun?: (worker: string, event: TailEvent) => void;
  /** Code already bundled (cluster mode: from the shared registry) instead of the worker's files. */
  prebuilt?: (name: string) => WorkerBundle | undefined;
  /** Shared storage (cluster mode): kv, sql and workspace bindings get `backend: postgres`, blob buckets `backend: blob` (an S3 backend). */
  backends?: { postgres?: PostgresBackend; blob?: BlobBackend };
  /** Where each actor runs when there are many hosts (cluster mode); none: here. */
  placement?: ActorPlacement;
}

/** A named worker's code as bundled from its files: what the cluster's registry stores. */
export interface WorkerBundle {
  source: string;
  project?: { packageJson: { dependencies?: Record<string, string> }; lockfile?: string };
  /** The files it was built from (watched by --watch); none for a bundle from the registry. */
  inputs?: string[];
}

/** Bundles one worker's entry file with its imports (and reads its package.json); errors name the worker. */
export function bundleNamedWorker(name: string, w: NamedWorkerConfig, baseDir: string): WorkerBundle {
  try {
    const project = w.packageJson ? readProjectPackages(resolve(baseDir, w.packageJson), w.lockfile && resolve(baseDir, w.lockfile)) : undefined;
    // Declared packages stay bare imports: the loader resolves them from the registry, not node_modules.
    const bundle = bundleWorker(resolve(baseDir, w.main), { packages: Object.keys(project?.packageJson.dependencies ?? {}) });
    if (w.packageJson) bundle.inputs.push(resolve(baseDir, w.packageJson));
    return { source: bundle.code, inputs: bundle.inputs, ...(project ? { project } : {}) };
  } catch (e) {
    throw new ConfigError(`workers.${name}: ${(e as Error).message}`);
  }
}

/** Bundles each configured worker and builds its bindings; a broken worker stops startup with its name. */
export function prepareNamedWorkers(workers: Record<string, NamedWorkerConfig>, options: PrepareOptions): Map<string, NamedWorker> {
  const { baseDir, dataDir, services, onRun } = options;
  const bindings = options.bindings ?? new Map<string, unknown>();
  const out = new Map<string, NamedWorker>();
  const storage = (key: string, make: () => unknown) => {
    if (!bindings.has(key)) bindings.set(key, make());
    return bindings.get(key);
  };
  for (const [name, w] of Object.entries(workers)) {
    const bundle = options.prebuilt?.(name) ?? bundleNamedWorker(name, w, baseDir);
    const { source, project } = bundle;
    const { postgres, blob } = options.backends ?? {};
    const pg = postgres ? { backend: postgres } : {};
    const env: Record<string, unknown> = { ...w.env };
    for (const b of w.kv ?? []) env[b] = storage(`kv:${name}-${b}`, () => kv({ name: `${name}-${b}`, dataDir, ...pg }));
    for (const b of w.sql ?? []) env[b] = storage(`sql:${name}-${b}`, () => sql({ name: `${name}-${b}`, dataDir, ...pg }));
    for (const b of w.blob ?? []) env[b] = storage(`blob:${name}-${b}`, () => blobBucket({ name: `${name}-${b}`, dataDir, ...(blob ? { backend: blob } : {}) }));
    for (const [b, o] of Object.entries(w.workspace ?? {})) {
      const options = { ...o, name: o.name ?? `${name}-${b}`, dataDir };
      // One object per workspace and set of options: the data is shared either way, the object keeps its listeners.
      env[b] = storage(`workspace:${JSON.stringify(options)}`, () => workspace({ ...options, ...pg }));
    }
    for (const [b, target] of Object.entries(w.services ?? {})) {
      if (!services) throw new ConfigError(`workers.${name}.services: service bindings need a server.`);
      env[b] = typeof target === "string" ? new NamedServiceBinding(services, target) : new NamedServiceBinding(services, target.worker, target.entrypoint);
    }
    const allow = [...(w.egress?.allow ?? []), ...allowNetRules(w.allowNet)];
    const policy: EgressPolicy | undefined = allow.length ? { ...w.egress, allow } : undefined;
    const code: WorkerCode = {
        compatibilityDate: "2025-06-01",
        mainModule: `${name}.js`,
        modules: { [`${name}.js`]: source },
        env,
        limits: w.limits,
        globalOutbound: policy ? egress(policy) : null,
        tails: onRun ? [(event: TailEvent) => onRun(name, event)] : [],
        ...project,
    };
    for (const [b, a] of Object.entries(w.actors ?? {})) {
      // The worker's own code implements its actors, with the same env (env.<NAME> included). One
      // namespace per binding lives across reloads (it owns the actors' alarms); a reload gives it the new code.
      const key = `actors:${name}-${b}:${a.className}`;
      const existing = bindings.get(key);
      if (existing instanceof ActorNamespace) existing._replaceWorker(code);
      else {
        if (!options.loader) throw new ConfigError(`workers.${name}.actors: actors need a loader.`);
        bindings.set(key, actorNamespace({ loader: options.loader, worker: code, className: a.className, name: `${name}-${b}`, dataDir, idleTtlMs: a.idleTtlMs, placement: options.placement }));
      }
      env[b] = bindings.get(key);
    }
    out.set(name, {
      name,
      id: `${name}:${createHash("sha256").update(source).update(JSON.stringify(project ?? null)).digest("hex").slice(0, 16)}`,
      warm: w.warm ?? false,
      inputs: bundle.inputs ?? [],
      crons: w.crons ?? [],
      stateful: [w.kv, w.sql, w.blob].some((b) => (b?.length ?? 0) > 0) || [w.workspace, w.actors, w.services].some((b) => Object.keys(b ?? {}).length > 0),
      code,
    });
  }
  return out;
}

/** The handler for /w/:name and /w/:name/*; `onCancel` counts runs ended because their client disconnected. */
export function serveNamedWorker(loader: WorkerLoader, workers: Map<string, NamedWorker>, log?: Logger, onCancel?: () => void) {
  return async (c: Context): Promise<Response> => {
    const name = c.req.param("name")!;
    const worker = workers.get(name);
    if (!worker) return c.json({ error: { name: "NotFound", message: `No worker named "${name}".` } }, 404);
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(`/w/${name}`.length) || "/";
    const raw = c.req.raw;
    try {
      return await fetchRun(loader, worker, url, {
        method: raw.method,
        headers: raw.headers,
        body: raw.method === "GET" || raw.method === "HEAD" ? undefined : raw.body,
        duplex: "half",
      } as RequestInit, undefined, { signal: raw.signal, onCancel });
    } catch (e) {
      const err = e as Error;
      // Workers answers 503 when a worker exceeded its resources, 500 when it threw. A worker's own
      // error text stays in the server's log: it may carry details its clients should not see.
      if (err instanceof LimitError) return c.json({ error: { name: err.name, message: err.message } }, 503);
      log?.error({ worker: name, error: { name: err.name, message: err.message } }, "worker threw");
      return c.json({ error: { name: "WorkerException", message: `The worker threw ${err.name}; the details are in the server's log.` } }, 500);
    }
  };
}

/**
 * Runs the worker's scheduled() handler once (a Cron Trigger firing, or a test), in a fresh isolate
 * or its warm one; the outcome is reported, never thrown.
 */
export async function runScheduled(loader: WorkerLoader, worker: NamedWorker, cron: string, scheduledTime = Date.now()): Promise<{ outcome: "ok" } | { outcome: "exception"; error: { name: string; message: string } }> {
  try {
    await callRun(loader, worker, undefined, "scheduled", [{ scheduledTime, cron }]);
    return { outcome: "ok" };
  } catch (e) {
    const err = e as Error;
    return { outcome: "exception", error: { name: err.name, message: err.message } };
  }
}
