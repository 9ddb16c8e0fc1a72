/**
 * The plugin manifest: what a plugin is, and every capability it asks for. The host turns it into
 * exactly those bindings (see worker-code.ts) and nothing else, so the manifest is the whole of a
 * plugin's authority, and what a person consents to. The JSON Schema shipped in
 * schemas/plugin-manifest.schema.json is generated from this zod schema (scripts/manifest-schema.ts).
 */
import { z } from "zod";
// semver: npm's own parser, so "1.2.0-beta.1" orders as every package manager orders it.
import semver from "semver";
import { ManifestError } from "../errors.ts";

const identifier = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, "a binding name is a JavaScript identifier");
export const originSchema = z.string().regex(/^https?:\/\/(\*\.)?[a-z0-9.-]+(:\d{1,5})?$/, "an origin is lower-case and looks like https://host, https://*.host or http://host:port");
const method = z.string().regex(/^[A-Za-z]+$/, "an HTTP method").transform((m) => m.toUpperCase());

/** One origin the plugin may fetch, alone (every method but CONNECT/TRACE) or with its methods. */
export const networkEntrySchema = z.union([
  originSchema,
  z.strictObject({ origin: originSchema, methods: z.array(method).min(1).optional() }),
]);

/**
 * A secret the egress gateway adds, as a header, to the plugin's requests to one of its origins. The
 * value comes from the host's grants; it never enters the isolate.
 */
export const secretSchema = z.strictObject({
  name: z.string().regex(/^[A-Z][A-Z0-9_]*$/, "a secret's name is UPPER_SNAKE_CASE"),
  origin: originSchema,
  header: z.string().regex(/^[A-Za-z0-9-]+$/, "a header name"),
  /** Put before the value, e.g. "Bearer ". */
  prefix: z.string().max(64).optional(),
});

export const permissionsSchema = z.strictObject({
  network: z.array(networkEntrySchema).describe("Origins the plugin may fetch (https://host, https://*.host, http://host:port), each with its methods or every method. Without it the plugin has no network.").optional(),
  /** The plugin's own workspace (env.WORKSPACE): none, read, or read-write. */
  workspace: z.enum(["none", "read", "read-write"]).describe("The plugin's own workspace as env.WORKSPACE (default none).").optional(),
  /** KV namespaces, SQL databases and blob buckets, by env binding name; each the plugin's own. */
  kv: z.array(identifier).describe("KV namespaces of its own, by env binding name.").optional(),
  sql: z.array(identifier).describe("SQL (D1) databases of its own, by env binding name.").optional(),
  blob: z.array(identifier).describe("Blob (R2) buckets of its own, by env binding name.").optional(),
  /** Host tools it may call through env.TOOLS, as "namespace.name". */
  tools: z.array(z.string().regex(/^[A-Za-z_$][\w$]*\.[A-Za-z_$][\w$]*$/, "a tool is named namespace.name")).describe("Host tools it may call through env.TOOLS.invoke(name, input), as namespace.name.").optional(),
  secrets: z.array(secretSchema).describe("Secrets the egress gateway adds as headers to requests to one of its origins; never visible to the plugin.").optional(),
});

export const manifestLimitsSchema = z.strictObject({
  cpuMs: z.number().positive().optional(),
  memoryMb: z.number().positive().optional(),
  wallMs: z.number().positive().optional(),
  subRequests: z.number().int().nonnegative().optional(),
});

/** A hook the plugin subscribes to: its place in the chain and what its failure means. */
export const hookSubscriptionSchema = z.strictObject({
  /** Lower runs first (default 100); ties run in plugin-name order. */
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  /** At most this long per call (capped by the host's hook timeout). */
  timeoutMs: z.number().int().positive().optional(),
  /** "continue" (default): a failure is recorded and the next plugin runs; "abort": the chain stops. */
  errorPolicy: z.enum(["continue", "abort"]).optional(),
  /** Only one enabled plugin may subscribe to this hook. */
  exclusive: z.boolean().optional(),
});

export const hookNameSchema = z.string().regex(/^[a-z][a-zA-Z0-9]*(:[a-z][a-zA-Z0-9]*)*$/, "a hook name looks like content:beforeSave");

export const manifestSchema = z.strictObject({
  /** The JSON Schema an editor checks the file against (ignored here). */
  $schema: z.string().optional(),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "a plugin name is 1-64 lower-case letters, digits and -"),
  version: z.string().refine((v) => semver.valid(v) === v, "a version is semver (1.2.3)"),
  publisher: z.string().min(1).max(128),
  description: z.string().max(1000).optional(),
  permissions: permissionsSchema.describe("Everything the plugin may touch; nothing else is bound.").optional(),
  limits: manifestLimitsSchema.describe("Its limits per invocation; one left out is the host's ceiling.").optional(),
  /** Hooks it subscribes to: a name, or a name with its subscription. */
  hooks: z.record(hookNameSchema, z.union([z.literal(true), hookSubscriptionSchema])).describe("Hooks it subscribes to: true, or { priority, timeoutMs, errorPolicy, exclusive }.").optional(),
  /**
   * Paths it serves under /p/<name>/: "/" or "/feed.xml" exactly, "/api/*" a prefix. Requests to other
   * paths are answered 404 without reaching the plugin.
   */
  routes: z.array(z.string().regex(/^\/[A-Za-z0-9._~!$&'()+,;=:@/-]*(\*)?$/, "a route is a path, ending in * for a prefix")).describe("Paths it serves under /p/<name>/: exact, or ending in * for a prefix.").optional(),
}).superRefine((m, ctx) => {
  const origins = new Set((m.permissions?.network ?? []).map((n) => (typeof n === "string" ? n : n.origin)));
  for (const [i, s] of (m.permissions?.secrets ?? []).entries()) {
    if (!origins.has(s.origin)) {
      ctx.addIssue({ code: "custom", path: ["permissions", "secrets", i, "origin"], message: `the secret ${s.name} goes to ${s.origin}, which is not in permissions.network` });
    }
  }
});

export type PluginManifest = z.output<typeof manifestSchema>;
export type PluginManifestInput = z.input<typeof manifestSchema>;
export type HookSubscription = z.output<typeof hookSubscriptionSchema>;
export type NetworkEntry = { origin: string; methods?: string[] };
export type WorkspaceAccess = "none" | "read" | "read-write";

/** Checks a manifest (parsed JSON); throws ManifestError naming the first bad field. */
export function parseManifest(input: unknown): PluginManifest {
  const parsed = manifestSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const reason = issue.code === "invalid_key" ? issue.issues[0]?.message ?? issue.message : issue.message;
  throw new ManifestError(`manifest${issue.path.length ? `.${issue.path.join(".")}` : ""}: ${reason}`, issue.path.join("."));
}

/** The network entries as objects, methods (when given) sorted and without repeats. */
export function networkOf(m: PluginManifest): NetworkEntry[] {
  return (m.permissions?.network ?? []).map((n) =>
    typeof n === "string" ? { origin: n } : { origin: n.origin, ...(n.methods ? { methods: [...new Set(n.methods)].sort() } : {}) });
}

export function workspaceOf(m: PluginManifest): WorkspaceAccess {
  return m.permissions?.workspace ?? "none";
}

/** The hooks as full subscriptions. */
export function hookSubscriptions(m: PluginManifest): [string, HookSubscription][] {
  return Object.entries(m.hooks ?? {}).map(([name, s]) => [name, s === true ? {} : s]);
}
