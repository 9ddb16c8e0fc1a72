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

/** run: POST /v1/run; metrics: GET /metrics; workers: every named worker; worker:<name>: that one. */
export type Permission = "run" | "metrics" | "workers" | `worker:${string}`;

export interface AppOptions {
  loader: WorkerLoader;
  metrics: Metrics;
  /** token → what it may do. Without tokens the API is open (only ever on loopback, see server.ts). */
  tokens?: Record<string, Permission[]>;
  /** Refuse every API request: bound to a non-loopback address without tokens. */
  lockedOut?: boolean;
  maxBodyBytes?: number;
  /** Structured request logs (pino); none when absent. */
  log?: Logger;
  /** Named workers from the config file, served at /w/<name>/*. */
  workers?: Map<string, NamedWorker>;
  /** Request bodies to named workers stream through, up to this size (default 100 MiB, as on Workers). */
  maxWorkerBodyBytes?: number;
  /** Serve the playground page at "/" (default true). */
  playground?: boolean;
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
  }),
  request: z.strictObject({
    method: z.string().optional(),
    url: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.string().optional(),
  }).optional(),
});

export function createApp(opts: AppOptions): Hono {
  const app = new Hono();
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
  app.use(async (c, next) => (new URL(c.req.url).pathname.startsWith("/w/") ? next() : hardened(c, next)));
  if (opts.playground !== false) app.route("/", playground());
  app.get("/openapi.json", (c) => c.json(openapi));
  app.get("/healthz", (c) => c.json({ ok: true, executors: opts.loader.engine.stats().executors.length }));
  app.get("/metrics", authorize(opts, "metrics"), async (c) => c.body(await opts.metrics.registry.metrics(), 200, { "content-type": opts.metrics.registry.contentType }));
  app.post("/v1/run", authorize(opts, "run"), bodyLimit({
    maxSize: opts.maxBodyBytes ?? 1024 * 1024,
    onError: (c) => tooLarge(c, opts.maxBodyBytes ?? 1024 * 1024),
  }), (c) => runOnce(c, opts));
  const workers = opts.workers ?? new Map<string, NamedWorker>();
  const workerLimit = opts.maxWorkerBodyBytes ?? 100 * 1024 * 1024;
  const named = [
    authorize(opts, (c) => ["workers", `worker:${c.req.param("name")}`]),
    bodyLimit({ maxSize: workerLimit, onError: (c) => tooLarge(c, workerLimit) }),
    serveNamedWorker(opts.loader, workers, opts.log),
  ] as const;
  // The named workers served now: what /w/<name>/ offers (with the same permissions as calling them).
  app.get("/v1/workers", authorize(opts, "workers"), (c) => c.json({
    workers: [...workers.values()].map((w) => ({ name: w.name, path: `/w/${w.name}/`, warm: w.warm, crons: w.crons, limits: w.code.limits ?? {} })),
  }));
  // Runs a named worker's scheduled() handler now (what a Cron Trigger does), e.g. to test it.
  app.post("/v1/scheduled/:name", authorize(opts, (c) => ["workers", `worker:${c.req.param("name")}`]), async (c) => {
    const name = c.req.param("name")!;
    const worker = workers.get(name);
    if (!worker) return c.json({ error: { name: "NotFound", message: `No worker named "${name}".` } }, 404);
    const result = await runScheduled(opts.loader, worker, c.req.query("cron") ?? worker.crons[0] ?? "");
    return c.json(result, result.outcome === "ok" ? 200 : 422);
  });
  app.all("/w/:name", ...named);
  app.all("/w/:name/*", ...named);
  app.notFound((c) => c.json({ error: { name: "NotFound", message: `No route ${c.req.method} ${new URL(c.req.url).pathname}` } }, 404));
  return app;
}

function tooLarge(c: Context, limit: number): Response {
  return c.json({ error: { name: "PayloadTooLarge", message: `Request bodies are limited to ${limit} bytes.` } }, 413);
}

/** A route's permission, or (for named workers) any of the permissions that grant it. */
function authorize(opts: AppOptions, needed: Permission | ((c: Context) => Permission[])) {
  return async (c: Context, next: Next) => {
    if (opts.lockedOut) {
      return c.json({ error: { name: "Unauthorized", message: "This server listens beyond loopback without tokens; configure tokens to use it." } }, 401);
    }
    if (!opts.tokens) return next();
    const m = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "");
    if (!m) return c.json({ error: { name: "Unauthorized", message: "A bearer token is required." } }, 401, { "www-authenticate": "Bearer" });
    const perms = Object.hasOwn(opts.tokens, m[1]!) ? opts.tokens[m[1]!] : undefined;
    if (!perms) return c.json({ error: { name: "Unauthorized", message: "Unknown token." } }, 401, { "www-authenticate": "Bearer" });
    const accepted = typeof needed === "function" ? needed(c) : [needed];
    if (!accepted.some((p) => perms.includes(p))) return c.json({ error: { name: "Forbidden", message: `This token lacks the permission ${accepted.at(-1)}.` } }, 403);
    return next();
  };
}

async function runOnce(c: Context, opts: AppOptions): Promise<Response> {
  let input: z.infer<typeof runBody>;
  try {
    input = runBody.parse(await c.req.json());
  } catch (e) {
    return c.json({ error: { name: "BadRequest", message: e instanceof z.ZodError ? e.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") : "The body must be JSON." } }, 400);
  }
  const w = input.worker;
  // This run's trace arrives through a tail, before fetch() settles.
  let trace: TailEvent | undefined;
  try {
    const stub = opts.loader.load({
      compatibilityDate: w.compatibilityDate ?? "2025-06-01",
      compatibilityFlags: w.compatibilityFlags,
      mainModule: w.mainModule,
      modules: w.modules as never,
      env: w.env,
      limits: w.limits,
      globalOutbound: outbound(w.allowNet, w.egress?.allow),
      tails: [(e: TailEvent) => { trace = e; }],
    });
    const r = input.request ?? {};
    const started = performance.now();
    try {
      const res = await stub.getEntrypoint().fetch(r.url ?? "http://worker/", { method: r.method ?? "GET", headers: r.headers, body: r.body });
      const body = await res.text();
      return c.json({ response: { status: res.status, headers: Object.fromEntries(res.headers), body }, ...summary(trace), elapsedMs: performance.now() - started });
    } finally {
      stub.dispose();
    }
  } catch (e) {
    const err = e as Error;
    return c.json({ error: { name: err.name, message: err.message }, ...summary(trace) }, err.name === "InvalidWorkerCodeError" || err.name === "DataCloneError" ? 400 : 422);
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
