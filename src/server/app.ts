/**
 * The HTTP API (Hono: the core speaks only Web Request/Response). POST /v1/run runs a worker once;
 * /healthz and /metrics for operators. Bearer tokens with per-token permissions guard the API.
 */
import { Hono, type Context, type Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { secureHeaders } from "hono/secure-headers";
import { z } from "zod";
import { allowNetRules, egress } from "../bindings/egress/index.ts";
import { ruleSchema, type EgressRule } from "../bindings/egress/policy.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { TailEvent } from "../bindings/tails/index.ts";
import type { Metrics } from "./metrics.ts";
import { openapi } from "./openapi.ts";
import type { Logger } from "pino";
import { runScheduled, serveNamedWorker, type NamedWorker } from "./named-workers.ts";
import { playground } from "./playground/index.ts";
import { BodyTooLargeError, InFlight, LimitAboveCeilingError, boundLimits, resolveBounds, type Bounds, type TokenBounds } from "./bounds.ts";
import { afterBody, onAbort } from "./worker-runs.ts";
import { DEFAULT_LIMITS, type Limits } from "../engine/limits.ts";
import { InvalidWorkerCodeError, PluginError } from "../errors.ts";
import type { PluginHost } from "../plugins/index.ts";
import { describePlugin, servePlugin } from "./plugins.ts";

/** run: POST /v1/run; metrics: GET /metrics; workers: every named worker; worker:<name>: that one; plugins: every plugin's routes and their administration; plugin:<name>: its routes. */
export type Permission = "run" | "metrics" | "workers" | `worker:${string}` | "plugins" | `plugin:${string}`;

/** A token's permissions and, optionally, bounds that replace the server's for its requests. */
export interface TokenGrant {
  permissions: Permission[];
  bounds?: TokenBounds;
}

/** Who is calling: their token (none on an open server) and the bounds their requests get. */
interface Caller {
  token: string | undefined;
  bounds: Bounds;
}

type AppEnv = { Variables: { caller: Caller } };
type Ctx = Context<AppEnv>;

/** What the routes share: the options, the bounds resolved per token, and the runs in flight. */
interface Runtime {
  opts: AppOptions;
  bounds: Bounds;
  grants: Map<string, { permissions: Permission[]; bounds: Bounds }>;
  inFlight: InFlight;
  defaultLimits: Limits;
}

export interface AppOptions {
  loader: WorkerLoader;
  metrics: Metrics;
  /** token → what it may do (and its own bounds). Without tokens the API is open (only ever on loopback, see server.ts). */
  tokens?: Record<string, Permission[] | TokenGrant>;
  /** Ceilings on requested limits, body sizes and runs in flight (defaults: DEFAULT_BOUNDS). */
  bounds?: Partial<Bounds>;
  /** The limits a run gets for what it leaves out, before the ceilings cap them (the loader's defaults). */
  defaultLimits?: Limits;
  /** Refuse every API request: bound to a non-loopback address without tokens. */
  lockedOut?: boolean;
  /** The older name of bounds.maxRequestBodyBytes. */
  maxBodyBytes?: number;
  /** Structured request logs (pino); none when absent. */
  log?: Logger;
  /** Named workers from the config file, served at /w/<name>/*. */
  workers?: Map<string, NamedWorker>;
  /** The older name of bounds.maxWorkerBodyBytes (default 100 MiB, as on Workers). */
  maxWorkerBodyBytes?: number;
  /** Serve the playground page at "/" (default true). */
  playground?: boolean;
  /** Plugins: their routes at /p/<name>/*, and /v1/plugins for operators. */
  plugins?: PluginHost;
  /**
   * Readiness (/readyz, for load balancers and Kubernetes) and, in cluster mode, whether the shared
   * store answers: while it does not, named workers answer 503 rather than serve from stale state.
   */
  health?: { ready(): Promise<{ ready: boolean; reason?: string }>; storeAvailable?(): boolean };
  /** Extra routes (cluster mode: the internal forwarding route), outside the token checks. */
  mount?: (app: Hono<AppEnv>) => void;
}

const runBody = z.strictObject({
  worker: z.strictObject({
    mainModule: z.string(),
    modules: z.record(z.string(), z.union([z.string(), z.record(z.string(), z.unknown())])),
    compatibilityDate: z.string().optional(),
    compatibilityFlags: z.array(z.string()).optional(),
    env: z.record(z.string(), z.unknown()).optional(),
    limits: z.record(z.string(), z.number()).optional(),
    /** Hosts (or origins) the worker may fetch; nothing without. */
    allowNet: z.array(z.string()).optional(),
    /** Full egress rules (origins, methods, headers the gateway adds: secrets the worker never sees). */
    egress: z.strictObject({ allow: z.array(ruleSchema) }).optional(),
    /** npm dependencies, when the server grants npm (config "npm" or --npm-cache-dir); resolved on the server. */
    packageJson: z.looseObject({ dependencies: z.record(z.string(), z.string()).optional() }).optional(),
    /** A package-lock.json (object or text) to install exactly. */
    lockfile: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    /** Type-check the TypeScript modules first: errors as TypeCheckError with file:line:col. */
    typecheck: z.boolean().optional(),
  }),
  request: z.strictObject({
    method: z.string().optional(),
    url: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.string().optional(),
  }).optional(),
});

export function createApp(opts: AppOptions): Hono<AppEnv> {
  const rt = runtime(opts);
  const app = new Hono<AppEnv>();
  if (opts.log) {
    const log = opts.log;
    app.use(async (c, next) => {
      const started = performance.now();
      await next();
      log.info({ method: c.req.method, path: new URL(c.req.url).pathname, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 }, "request");
    });
  }
  // The server's own responses get the usual hardening headers (Hono's secureHeaders: nosniff,
  // frame-ancestors, referrer policy, ...); a named worker's responses are its own and pass unchanged.
  const hardened = secureHeaders({ contentSecurityPolicy: undefined });
  app.use(async (c, next) => (/^\/[wp]\//.test(new URL(c.req.url).pathname) ? next() : hardened(c, next)));
  if (opts.playground !== false) app.route("/", playground());
  app.get("/openapi.json", (c) => c.json(openapi));
  app.get("/healthz", (c) => c.json({ ok: true, executors: opts.loader.engine.stats().executors.length }));
  app.get("/readyz", async (c) => {
    const r = opts.health ? await opts.health.ready() : { ready: true };
    return c.json(r, r.ready ? 200 : 503);
  });
  opts.mount?.(app);
  app.get("/metrics", authorize(rt, "metrics"), async (c) => c.body(await opts.metrics.registry.metrics(), 200, { "content-type": opts.metrics.registry.contentType }));
  app.post("/v1/run", authorize(rt, "run"), limitBody(rt, "maxRequestBodyBytes"), (c) => runOnce(c, rt));
  const workers = opts.workers ?? new Map<string, NamedWorker>();
  const named = [
    authorize(rt, (c) => ["workers", `worker:${c.req.param("name")}`]),
    limitBody(rt, "maxWorkerBodyBytes"),
    storeGate(opts, workers),
    holdSlot(rt),
    serveNamedWorker(opts.loader, workers, opts.log, () => opts.metrics.recordCanceled("worker")),
  ] as const;
  // The named workers served now: what /w/<name>/ offers (with the same permissions as calling them).
  app.get("/v1/workers", authorize(rt, "workers"), (c) => c.json({
    workers: [...workers.values()].map((w) => ({ name: w.name, path: `/w/${w.name}/`, warm: w.warm, crons: w.crons, limits: w.code.limits ?? {} })),
  }));
  // Runs a named worker's scheduled() handler now (what a Cron Trigger does), e.g. to test it.
  app.post("/v1/scheduled/:name", authorize(rt, (c) => ["workers", `worker:${c.req.param("name")}`]), holdSlot(rt), async (c) => {
    const name = c.req.param("name")!;
    const worker = workers.get(name);
    if (!worker) return c.json({ error: { name: "NotFound", message: `No worker named "${name}".` } }, 404);
    const result = await runScheduled(opts.loader, worker, c.req.query("cron") ?? worker.crons[0] ?? "");
    return c.json(result, result.outcome === "ok" ? 200 : 422);
  });
  app.all("/w/:name", ...named);
  app.all("/w/:name/*", ...named);
  if (opts.plugins) mountPlugins(app, rt, opts.plugins);
  app.notFound((c) => c.json({ error: { name: "NotFound", message: `No route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404));
  return app;
}

/** Plugin routes at /p/<name>/*, and the operators' API: list, approve, run a hook, the audit log. */
function mountPlugins(app: Hono<AppEnv>, rt: Runtime, host: PluginHost): void {
  const routes = [
    authorize(rt, (c) => ["plugins", `plugin:${c.req.param("name")}`]),
    limitBody(rt, "maxWorkerBodyBytes"),
    holdSlot(rt),
    servePlugin(host, rt.opts.log),
  ] as const;
  app.all("/p/:name", ...routes);
  app.all("/p/:name/*", ...routes);
  const admin = authorize(rt, "plugins");
  const failed = (c: Ctx, e: unknown) => {
    if (!(e instanceof PluginError)) throw e;
    return c.json({ error: { name: e.name, message: e.message } }, e.name === "PluginNotFoundError" ? 404 : 409);
  };
  app.get("/v1/plugins", admin, (c) => c.json({ plugins: host.list().map(describePlugin) }));
  // Consent: an update that asked for more waits here until an operator approves that version.
  app.post("/v1/plugins/:name/approve", admin, limitBody(rt, "maxRequestBodyBytes"), async (c) => {
    const body = z.strictObject({ version: z.string() }).safeParse(await c.req.json().catch(() => null));
    if (!body.success) return c.json({ error: { name: "BadRequest", message: "The body must be { \"version\": \"x.y.z\" }." } }, 400);
    try {
      return c.json(describePlugin(host.approve(c.req.param("name")!, body.data.version)));
    } catch (e) {
      return failed(c, e);
    }
  });
  // The audit log as JSON lines: ?plugin=<name>&since=<ISO date or ms>.
  app.get("/v1/plugins/audit", admin, (c) => {
    const since = c.req.query("since");
    const at = since === undefined ? undefined : /^\d+$/.test(since) ? Number(since) : Date.parse(since);
    if (at !== undefined && Number.isNaN(at)) return c.json({ error: { name: "BadRequest", message: "since is an ISO date or milliseconds since the epoch." } }, 400);
    return c.body(host.exportAudit({ plugin: c.req.query("plugin"), since: at }), 200, { "content-type": "application/x-ndjson" });
  });
  app.post("/v1/hooks/:hook", admin, limitBody(rt, "maxRequestBodyBytes"), holdSlot(rt), async (c) => {
    const payload = await c.req.json().catch(() => undefined);
    return c.json(await host.runHook(c.req.param("hook")!, payload));
  });
}

/** The server's bounds, each token's (the server's with the token's own on top), and the in-flight counts. */
function runtime(opts: AppOptions): Runtime {
  const bounds = resolveBounds({ maxRequestBodyBytes: opts.maxBodyBytes, maxWorkerBodyBytes: opts.maxWorkerBodyBytes }, opts.bounds);
  const grants = new Map(Object.entries(opts.tokens ?? {}).map(([token, g]) => {
    const grant = Array.isArray(g) ? { permissions: g } : g;
    return [token, { permissions: grant.permissions, bounds: resolveBounds(bounds, grant.bounds) }] as const;
  }));
  return { opts, bounds, grants, inFlight: new InFlight(bounds.maxInFlight), defaultLimits: opts.defaultLimits ?? DEFAULT_LIMITS };
}

/** The JSON error body: the error's stable name, its message, and the fields that say which bound. */
function errorBody(err: Error, details: object): { error: Record<string, unknown> } {
  return { error: { name: err.name, message: err.message, ...details } };
}

/** Request bodies up to the caller's bound for this route; beyond it, 413 naming the bound. */
function limitBody(rt: Runtime, bound: "maxRequestBodyBytes" | "maxWorkerBodyBytes") {
  return (c: Ctx, next: Next) => {
    const maxSize = c.get("caller").bounds[bound];
    return bodyLimit({
      maxSize,
      onError: (c) => {
        rt.opts.metrics.recordRefused(bound);
        return c.json(errorBody(new BodyTooLargeError(bound, maxSize), { bound, ceiling: maxSize }), 413);
      },
    })(c, next);
  };
}

/** Takes an in-flight slot for the caller, or answers 429; the release is idempotent. */
function admit(c: Ctx, rt: Runtime): (() => void) | Response {
  const caller = c.get("caller");
  const slot = rt.inFlight.acquire(caller.token, caller.bounds.maxInFlightPerToken);
  if (typeof slot === "function") return slot;
  rt.opts.metrics.recordRefused(slot.bound);
  return c.json(errorBody(slot, { bound: slot.bound, ceiling: slot.ceiling }), 429, { "retry-after": String(rt.bounds.retryAfterSeconds) });
}

/** An in-flight slot held until the response body is done (a named worker's response streams). */
function holdSlot(rt: Runtime) {
  return async (c: Ctx, next: Next) => {
    const release = admit(c, rt);
    if (release instanceof Response) return release;
    try {
      await next();
    } catch (e) {
      release();
      throw e;
    }
    c.res = afterBody(c.res, release);
  };
}

/**
 * Cluster mode: a worker that reaches shared state answers 503 while the store does not answer,
 * rather than fail half-way or serve stale state (retry-after: the store is pinged every second).
 */
function storeGate(opts: AppOptions, workers: Map<string, NamedWorker>) {
  return async (c: Ctx, next: Next) => {
    if (opts.health?.storeAvailable && !opts.health.storeAvailable() && workers.get(c.req.param("name") ?? "")?.stateful !== false) {
      return c.json({ error: { name: "BackendUnavailableError", message: "The cluster's shared store (PostgreSQL or S3) is unreachable." } }, 503, { "retry-after": "1" });
    }
    return next();
  };
}

/** A route's permission, or (for named workers) any of the permissions that grant it; sets the caller. */
function authorize(rt: Runtime, needed: Permission | ((c: Ctx) => Permission[])) {
  const { opts } = rt;
  return async (c: Ctx, next: Next) => {
    if (opts.lockedOut) {
      return c.json({ error: { name: "Unauthorized", message: "This server listens beyond loopback without tokens; configure tokens to use it." } }, 401);
    }
    if (!opts.tokens) {
      c.set("caller", { token: undefined, bounds: rt.bounds });
      return next();
    }
    const m = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "");
    if (!m) return c.json({ error: { name: "Unauthorized", message: "A bearer token is required." } }, 401, { "www-authenticate": "Bearer" });
    const grant = rt.grants.get(m[1]!);
    if (!grant) return c.json({ error: { name: "Unauthorized", message: "Unknown token." } }, 401, { "www-authenticate": "Bearer" });
    const accepted = typeof needed === "function" ? needed(c) : [needed];
    if (!accepted.some((p) => grant.permissions.includes(p))) return c.json({ error: { name: "Forbidden", message: `This token lacks the permission ${accepted.at(-1)}.` } }, 403);
    c.set("caller", { token: m[1]!, bounds: grant.bounds });
    return next();
  };
}

async function runOnce(c: Ctx, rt: Runtime): Promise<Response> {
  const { opts } = rt;
  let input: z.infer<typeof runBody>;
  try {
    input = runBody.parse(await c.req.json());
  } catch (e) {
    return c.json({ error: { name: "BadRequest", message: e instanceof z.ZodError ? e.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") : "The body must be JSON." } }, 400);
  }
  const w = input.worker;
  let limits: Record<string, number>;
  try {
    limits = boundLimits(w.limits, c.get("caller").bounds, rt.defaultLimits);
  } catch (e) {
    if (!(e instanceof LimitAboveCeilingError)) throw e;
    opts.metrics.recordRefused(e.bound);
    return c.json(errorBody(e, { limit: e.limit, bound: e.bound, requested: e.requested, ceiling: e.ceiling }), 400);
  }
  const release = admit(c, rt);
  if (release instanceof Response) return release;
  // This run's trace arrives through a tail, before fetch() settles.
  let trace: TailEvent | undefined;
  let detach = () => {};
  try {
    const stub = opts.loader.load({
      compatibilityDate: w.compatibilityDate ?? "2025-06-01",
      compatibilityFlags: w.compatibilityFlags,
      mainModule: w.mainModule,
      modules: w.modules as never,
      env: w.env,
      limits,
      globalOutbound: outbound(w.allowNet, w.egress?.allow),
      tails: [(e: TailEvent) => { trace = e; }],
      packageJson: w.packageJson,
      lockfile: w.lockfile,
      typecheck: w.typecheck,
    });
    // A client that gave up must not leave its run holding a core: its isolate is ended now.
    detach = onAbort(c.req.raw.signal, () => {
      opts.metrics.recordCanceled("run");
      stub.dispose();
    });
    const r = input.request ?? {};
    const started = performance.now();
    try {
      const res = await stub.getEntrypoint().fetch(r.url ?? "http://worker/", { method: r.method ?? "GET", headers: r.headers, body: r.body });
      const body = await res.text();
      // What was bundled from npm, and the lockfile a caller can send back to pin it.
      const npm = w.packageJson ? await stub.npmReport() : undefined;
      return c.json({
        response: { status: res.status, headers: Object.fromEntries(res.headers), body }, ...summary(trace), elapsedMs: performance.now() - started,
        ...(npm ? { npm: { packages: npm.packages.map((p) => ({ name: p.name, version: p.version, bytes: p.bytes })), bytes: npm.bytes, cached: npm.cached, lockfile: npm.lockfile } } : {}),
      });
    } finally {
      detach();
      stub.dispose();
    }
  } catch (e) {
    const err = e as Error;
    return c.json({ error: { name: err.name, message: err.message }, ...summary(trace) }, err instanceof InvalidWorkerCodeError || err.name === "DataCloneError" ? 400 : 422);
  } finally {
    release();
  }
}

/** The run's gateway from allowNet hosts and/or full rules; none (no network) without either. */
function outbound(allowNet: string[] = [], rules: EgressRule[] = []) {
  const allow = [...rules, ...allowNetRules(allowNet)];
  return allow.length ? egress({ allow }) : null;
}

function summary(t: TailEvent | undefined) {
  return t ? { outcome: t.outcome, logs: t.logs.map((l) => ({ level: l.level, message: l.message.join(" ") })), cpuMs: t.cpuTime, wallMs: t.wallTime, memoryBytes: t.memoryBytes, subRequests: t.subrequests } : {};
}
