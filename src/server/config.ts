/**
 * mayfly.config.json: the server's settings and its named workers (code from files, bindings, egress,
 * limits), validated with zod. `${NAME}` in tokens, env values and egress headers is replaced from the
 * environment passed in, so secrets stay out of the file.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
// croner: a maintained cron parser and scheduler (5- and 6-field expressions, no dependencies).
import { Cron } from "croner";
import { ConfigError } from "../errors.ts";
import { limitsSchema } from "../loader/worker-code.ts";
import { ruleSchema } from "../bindings/egress/policy.ts";
import { boundsSchema, tokenBoundsSchema } from "./bounds.ts";
import { pluginsConfigSchema } from "./plugins.ts";
import { clusterConfigSchema, type ClusterConfig } from "../cluster/config.ts";

/** What a bearer token may do: run, metrics, workers (all named workers) or worker:<name>, plugins (all plugins' routes and their administration) or plugin:<name> (its routes). */
export const PERMISSION_PATTERN = /^(run|metrics|workers|worker:[a-z0-9][a-z0-9_-]*|plugins|plugin:[a-z0-9][a-z0-9-]*)$/;
const permission = z.string().regex(PERMISSION_PATTERN, "a permission is run, metrics, workers, worker:<name>, plugins or plugin:<name>");
/** A token's permissions, alone or with bounds of its own (which replace the server's for its requests). */
const grant = z.union([z.array(permission), z.strictObject({ permissions: z.array(permission), bounds: tokenBoundsSchema.optional() })]);
const bindingName = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a binding name is a JavaScript identifier");

export const namedWorkerSchema = z.strictObject({
  /** The worker's entry file (TypeScript or JavaScript), relative to the config file; bundled with its imports. */
  main: z.string().min(1),
  /** Plain values in env. */
  env: z.record(bindingName, z.unknown()).optional(),
  kv: z.array(bindingName).optional(),
  sql: z.array(bindingName).optional(),
  blob: z.array(bindingName).optional(),
  /**
   * Workspaces (durable file systems): env name → the workspace's name (default <worker>-<binding>;
   * two workers naming the same one share it), what the worker may do, its quota and kept history.
   */
  workspace: z.record(bindingName, z.strictObject({
    name: z.string().min(1).max(128).optional(),
    mode: z.enum(["read", "read-write"]).optional(),
    quota: z.strictObject({ bytes: z.number().int().nonnegative().optional(), files: z.number().int().nonnegative().optional() }).optional(),
    history: z.number().int().min(1).max(10_000).optional(),
    spillOverBytes: z.number().int().nonnegative().optional(),
  })).optional(),
  /** Hosts the worker may fetch (https unless an origin is given); shorthand for egress.allow. */
  allowNet: z.array(z.string()).optional(),
  /** Full egress rules: origins, methods, secret headers injected by the gateway. */
  egress: z.strictObject({ allow: z.array(ruleSchema), timeoutMs: z.number().int().positive().optional(), maxResponseBytes: z.number().int().positive().optional() }).optional(),
  limits: limitsSchema.optional(),
  /** Service bindings: env name → another named worker (its default entrypoint, or a named one). */
  services: z.record(bindingName, z.union([z.string(), z.strictObject({ worker: z.string(), entrypoint: z.string().optional() })])).optional(),
  /**
   * Durable actors: env name → the exported class (`extends DurableObject`) of this worker that
   * implements them; the worker reaches them through env.<NAME> as on Cloudflare.
   */
  actors: z.record(bindingName, z.strictObject({ className: z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a class name"), idleTtlMs: z.number().int().positive().optional() })).optional(),
  /** Keep one warm instance (loader.get by name) instead of a fresh isolate per request. */
  warm: z.boolean().optional(),
  /** Cron Triggers: the worker's scheduled() handler runs on each (5 fields as on Cloudflare, or 6 with seconds). */
  crons: z.array(z.string().refine(isCron, "not a cron expression (e.g. \"*/5 * * * *\")")).optional(),
  /** A package.json (relative to the config file) whose dependencies the worker imports; needs the top-level `npm`. */
  packageJson: z.string().min(1).optional(),
  /** The lockfile to install exactly (default: package-lock.json beside packageJson, if any). */
  lockfile: z.string().min(1).optional(),
});

function isCron(pattern: string): boolean {
  try {
    new Cron(pattern, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

export const configSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().optional(),
  /** token → permissions, or { permissions, bounds }. */
  tokens: z.record(z.string().min(8, "tokens must be at least 8 characters"), grant).optional(),
  /** Where kv/sql/blob/workspace bindings keep their files, relative to the config file (default .mayfly/data). */
  dataDir: z.string().optional(),
  /** The older name of bounds.maxRequestBodyBytes. */
  maxBodyBytes: z.number().int().positive().optional(),
  /** Ceilings on what callers may ask for, body sizes and runs in flight (see bounds.ts for defaults). */
  bounds: boundsSchema.optional(),
  /** Grants npm packages to named workers and POST /v1/run (registry from npm's own configuration unless given). */
  npm: z.strictObject({
    cacheDir: z.string().optional(),
    allow: z.array(z.string()).optional(),
    registry: z.string().url().optional(),
  }).optional(),
  workers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "worker names are lower-case letters, digits, - and _"), namedWorkerSchema).optional(),
  /** Plugins: the grants they are checked against, hook rules, and the plugins installed from files (served at /p/<name>/). */
  plugins: pluginsConfigSchema.optional(),
  /** Cluster mode: many hosts sharing PostgreSQL (and S3), see src/cluster/. */
  // Checked (clusterConfigSchema) after `${NAME}` substitution: its values usually come from the environment.
  cluster: z.record(z.string(), z.unknown()).optional(),
});

export type NamedWorkerConfig = z.infer<typeof namedWorkerSchema>;
export type MayflyConfig = Omit<z.infer<typeof configSchema>, "cluster"> & {
  cluster?: ClusterConfig;
  /** The directory relative paths in the file are resolved against. */
  baseDir: string;
  /** The file it was read from, if any. */
  file?: string;
};

/** Reads and checks a config file. `env` supplies `${NAME}` substitutions (the CLI passes process.env). */
export function loadConfig(path: string, env: Record<string, string | undefined> = {}): MayflyConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`Cannot read the config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not JSON: ${(e as Error).message}`);
  }
  return { ...parseConfig(json, dirname(resolve(path)), env, path), file: resolve(path) };
}

export function parseConfig(json: unknown, baseDir: string, env: Record<string, string | undefined> = {}, source = "config"): MayflyConfig {
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // A bad record key (a token, a worker name) carries the reason in its nested issue.
    const reason = issue.code === "invalid_key" ? issue.issues[0]?.message ?? issue.message : issue.message;
    throw new ConfigError(`${source}: ${issue.path.join(".") || "(top level)"}: ${reason}`);
  }
  const config = parsed.data;
  for (const [name, w] of Object.entries(config.workers ?? {})) {
    for (const [b, target] of Object.entries(w.services ?? {})) {
      const other = typeof target === "string" ? target : target.worker;
      if (!Object.hasOwn(config.workers ?? {}, other)) throw new ConfigError(`${source}: workers.${name}.services.${b}: no worker named "${other}".`);
    }
  }
  if (config.tokens) {
    config.tokens = Object.fromEntries(Object.entries(config.tokens).map(([token, perms]) => {
      const value = substitute(token, env, "tokens") as string;
      if (value.length < 8) throw new ConfigError(`${source}: tokens: a token from ${token} is shorter than 8 characters.`);
      return [value, perms];
    }));
  }
  for (const [name, w] of Object.entries(config.workers ?? {})) {
    if (w.env) w.env = substitute(w.env, env, `workers.${name}.env`) as Record<string, unknown>;
    for (const rule of w.egress?.allow ?? []) {
      if (rule.headers) rule.headers = substitute(rule.headers, env, `workers.${name}.egress`) as Record<string, string>;
    }
  }
  const secrets = config.plugins?.grants?.secrets;
  if (secrets) config.plugins!.grants!.secrets = substitute(secrets, env, "plugins.grants.secrets") as Record<string, string>;
  // The cluster's URL (with its password), secret and S3 credentials come from the environment.
  let cluster: ClusterConfig | undefined;
  if (config.cluster) {
    const checked = clusterConfigSchema.safeParse(substitute(config.cluster, env, "cluster"));
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new ConfigError(`${source}: cluster.${issue.path.join(".")}: ${issue.message}`);
    }
    cluster = checked.data;
  }
  return { ...config, cluster, baseDir };
}

/** `${NAME}` in strings, from `env`; a missing variable is an error, not an empty secret. */
function substitute(value: unknown, env: Record<string, string | undefined>, where: string): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(`${where}: the environment variable ${name} is not set.`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, env, where));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, env, where)]));
  return value;
}
