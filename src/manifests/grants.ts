/**
 * What a host grants plugins: the most any manifest may ask for. A manifest that names more (an origin
 * outside the granted ones, a wider method set, a store kind, a tool, a secret, a limit above the
 * ceiling) is refused whole at install time with ManifestGrantError naming the permission: a plugin
 * never runs with less than it asked for, it just does not get installed.
 */
import { z } from "zod";
import { ManifestGrantError } from "../errors.ts";
import { methodsCover, originCovers } from "./origins.ts";
import { networkOf, originSchema as origin, workspaceOf, type PluginManifest } from "./schema.ts";


export const grantsSchema = z.strictObject({
  /** Origins plugins may ask for (with `*.` wildcards), optionally only some methods. */
  network: z.array(z.union([origin, z.strictObject({
    origin,
    methods: z.array(z.string()).optional(),
    /** Let these origins resolve to private or loopback addresses (an intranet service, a test listener). */
    allowPrivateAddresses: z.boolean().optional(),
  })])).optional(),
  /** The most workspace access a plugin may have (default "none"). */
  workspace: z.enum(["none", "read", "read-write"]).optional(),
  /** Whether plugins may have KV namespaces, SQL databases, blob buckets of their own (default false). */
  kv: z.boolean().optional(),
  sql: z.boolean().optional(),
  blob: z.boolean().optional(),
  /** Host tools plugins may call: "namespace.name", "namespace.*" or "*". */
  tools: z.array(z.string()).optional(),
  /** Secret values by name, added by the egress gateway as the manifest says; never in the isolate. */
  secrets: z.record(z.string(), z.string()).optional(),
  /** Ceilings on a manifest's limits. */
  limits: z.strictObject({
    cpuMs: z.number().positive().optional(),
    memoryMb: z.number().positive().optional(),
    wallMs: z.number().positive().optional(),
    subRequests: z.number().int().nonnegative().optional(),
  }).optional(),
});

export type PluginGrants = z.input<typeof grantsSchema>;
type Grants = z.output<typeof grantsSchema>;
export type GrantedOrigin = { origin: string; methods?: string[]; allowPrivateAddresses?: boolean };

const ACCESS = { none: 0, read: 1, "read-write": 2 } as const;

/** The granted network entries as objects. */
function grantedNetwork(g: Grants): GrantedOrigin[] {
  return (g.network ?? []).map((n) => (typeof n === "string" ? { origin: n } : n));
}

/**
 * Checks every permission of `manifest` against `grants`; throws ManifestGrantError for the first one
 * not granted. Returns, for each network entry, the grant that covers it (its address rule applies).
 * `tools`: the names of the tools the host has (a manifest naming another is refused too).
 */
export function checkGrants(manifest: PluginManifest, input: PluginGrants, tools: ReadonlySet<string> = new Set()): Map<string, GrantedOrigin> {
  const grants = grantsSchema.parse(input);
  const network = grantedNetwork(grants);
  const covering = new Map<string, GrantedOrigin>();
  for (const want of networkOf(manifest)) {
    const grant = network.find((g) => originCovers(g.origin, want.origin));
    if (!grant) throw new ManifestGrantError("network", want.origin, "no granted origin covers it");
    if (!methodsCover(grant.methods, want.methods)) {
      throw new ManifestGrantError("network", `${want.origin} (${want.methods?.join(", ") ?? "every method"})`, `only ${grant.methods!.join(", ")} are granted there`);
    }
    covering.set(want.origin, grant);
  }
  const access = workspaceOf(manifest);
  const most = grants.workspace ?? "none";
  if (ACCESS[access] > ACCESS[most]) throw new ManifestGrantError("workspace", access, `the most granted is "${most}"`);
  for (const kind of ["kv", "sql", "blob"] as const) {
    const names = manifest.permissions?.[kind] ?? [];
    if (names.length && !grants[kind]) throw new ManifestGrantError(kind, names.join(", "), `plugins are not granted ${kind} stores`);
  }
  for (const tool of manifest.permissions?.tools ?? []) {
    if (!tools.has(tool)) throw new ManifestGrantError("tools", tool, "the host has no such tool");
    const ns = tool.split(".")[0];
    if (!(grants.tools ?? []).some((t) => t === "*" || t === tool || t === `${ns}.*`)) throw new ManifestGrantError("tools", tool, "it is not among the granted tools");
  }
  for (const secret of manifest.permissions?.secrets ?? []) {
    if (!Object.hasOwn(grants.secrets ?? {}, secret.name)) throw new ManifestGrantError("secrets", secret.name, "the host holds no secret by that name");
  }
  for (const [limit, value] of Object.entries(manifest.limits ?? {}) as [keyof NonNullable<Grants["limits"]>, number | undefined][]) {
    const ceiling = grants.limits?.[limit];
    if (value !== undefined && ceiling !== undefined && value > ceiling) throw new ManifestGrantError(`limits.${limit}`, String(value), `the ceiling is ${ceiling}`);
  }
  return covering;
}

/** The granted value of a secret (checkGrants has made sure it exists). */
export function secretValue(input: PluginGrants, name: string): string {
  return input.secrets![name]!;
}
