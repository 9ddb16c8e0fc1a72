/**
 * A manifest as a WorkerCode: exactly the bindings and the egress policy it names, and nothing else.
 * Storage is the plugin's own (named `plugin:<name>:<binding>`, so two plugins never share a file),
 * secrets become headers the gateway adds for their origin, tools are one `env.TOOLS` dispatcher that
 * calls only the tools the manifest lists, and without `network` the gateway has no rule at all (it
 * refuses every request). Every capability use can be reported
 * (`audit`), allowed or denied.
 */
import { BINDING, type Bindable, type Capability } from "../bindings/capability.ts";
import { egress, type EgressPolicy, type EgressRule } from "../bindings/egress/index.ts";
import { kv } from "../bindings/kv/index.ts";
import { sql } from "../bindings/sql/index.ts";
import { blobBucket } from "../bindings/blob/index.ts";
import { workspace } from "../bindings/workspace/index.ts";
import { rpc } from "../bindings/rpc/index.ts";
import type { ModuleSource, WorkerCode } from "../loader/worker-code.ts";
import type { Tool } from "../codemode/tool.ts";
import { PluginToolError, QuotaExceededError, WorkspaceError } from "../errors.ts";
import { checkGrants, grantsSchema, secretValue, type PluginGrants } from "./grants.ts";
import { networkOf, workspaceOf, type PluginManifest } from "./schema.ts";

/** A plugin's code: its modules and which one is the entry (as in WorkerCode). */
export interface PluginCode {
  mainModule: string;
  modules: Record<string, ModuleSource>;
}

/** One use of a capability, as the audit log records it. */
export interface CapabilityUse {
  /** network, kv, sql, blob, workspace, tool. */
  capability: string;
  /** What was used: a URL, `CACHE.get(key)`, `content.get`. */
  target: string;
  allowed: boolean;
  /** Why it was refused, or the error an allowed use failed with. */
  reason?: string;
}

export interface ManifestContext {
  /** Where the plugin's stores keep their files (default ".mayfly/data"). */
  dataDir?: string;
  /** The host's tools; the manifest's `tools` pick from them. */
  tools?: readonly Tool[];
  /** Gateway settings other than the allow-list (lookup, timeoutMs, maxResponseBytes...). */
  egress?: Omit<EgressPolicy, "allow" | "onDecision">;
  /** Told of every capability use. */
  audit?: (use: CapabilityUse) => void;
  /** Open stores kept between calls, by `kind:name` (one open file per store, not one per run). */
  stores?: Map<string, unknown>;
  /** Time one tool call may take (default 30 s). */
  toolTimeoutMs?: number;
}

/** The storage name of a plugin's binding: never the same for two plugins (a plugin name has no ":"). */
export function pluginStoreName(plugin: string, binding?: string): string {
  return binding === undefined ? `plugin:${plugin}` : `plugin:${plugin}:${binding}`;
}

/**
 * The WorkerCode for `manifest` running `code` under `grants`. Throws ManifestGrantError (nothing
 * built) when the manifest names anything the grants do not allow.
 */
export function manifestToWorkerCode(manifest: PluginManifest, code: PluginCode, grants: PluginGrants, context: ManifestContext = {}): WorkerCode {
  const tools = new Map((context.tools ?? []).map((t) => [`${t.namespace}.${t.name}`, t]));
  const covering = checkGrants(manifest, grants, new Set(tools.keys()));
  const dataDir = context.dataDir ?? ".mayfly/data";
  const audit = context.audit ?? (() => {});
  const stores = context.stores ?? new Map<string, unknown>();
  const store = <T>(key: string, make: () => T): T => {
    if (!stores.has(key)) stores.set(key, make());
    return stores.get(key) as T;
  };
  const env: Record<string, unknown> = {};
  const p = manifest.permissions ?? {};
  for (const b of p.kv ?? []) env[b] = audited(store(`kv:${pluginStoreName(manifest.name, b)}`, () => kv({ name: pluginStoreName(manifest.name, b), dataDir })), "kv", b, audit);
  for (const b of p.sql ?? []) env[b] = audited(store(`sql:${pluginStoreName(manifest.name, b)}`, () => sql({ name: pluginStoreName(manifest.name, b), dataDir })), "sql", b, audit);
  for (const b of p.blob ?? []) env[b] = audited(store(`blob:${pluginStoreName(manifest.name, b)}`, () => blobBucket({ name: pluginStoreName(manifest.name, b), dataDir })), "blob", b, audit);
  const access = workspaceOf(manifest);
  if (access !== "none") {
    const name = pluginStoreName(manifest.name);
    env.WORKSPACE = audited(store(`workspace:${name}:${access}`, () => workspace({ name, dataDir, mode: access })), "workspace", "WORKSPACE", audit);
  }
  if (p.tools?.length) env.TOOLS = rpc(toolDispatcher(manifest, tools, audit), { timeoutMs: context.toolTimeoutMs });
  const network = networkOf(manifest);
  // A plugin without `network` still gets a gateway, one with no rule: it refuses every request as
  // null would, and the audit log then holds the attempts too ("every allowed and denied use").
  const allow: EgressRule[] = network.map((n) => {
    const headers: Record<string, string> = {};
    for (const s of p.secrets ?? []) {
      if (s.origin === n.origin) headers[s.header.toLowerCase()] = `${s.prefix ?? ""}${secretValue(grants, s.name)}`;
    }
    return {
      origin: n.origin,
      ...(n.methods ? { methods: n.methods } : {}),
      ...(Object.keys(headers).length ? { headers } : {}),
      ...(covering.get(n.origin)?.allowPrivateAddresses ? { allowPrivateAddresses: true } : {}),
    };
  });
  const globalOutbound = egress({
    ...context.egress,
    allow,
    onDecision: (d) => audit({ capability: "network", target: `${d.method} ${d.url}`, allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) }),
  });
  // A limit the manifest leaves out is the host's ceiling, not the loader's default (which may be above it).
  const limits = { ...grantsSchema.parse(grants).limits, ...manifest.limits };
  return {
    compatibilityDate: "2025-06-01",
    mainModule: code.mainModule,
    modules: code.modules,
    env,
    globalOutbound,
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

/** env.TOOLS: `invoke("namespace.name", input)`, for the tools the manifest names and no other. */
function toolDispatcher(manifest: PluginManifest, tools: Map<string, Tool>, audit: (use: CapabilityUse) => void) {
  const declared = new Set(manifest.permissions?.tools ?? []);
  return {
    invoke: async (name: unknown, input: unknown) => {
      const target = String(name);
      const tool = declared.has(target) ? tools.get(target) : undefined;
      if (!tool) {
        const error = new PluginToolError(manifest.name, `The plugin ${manifest.name} may not call the tool ${target}: its manifest names ${[...declared].join(", ") || "no tools"}.`);
        audit({ capability: "tool", target, allowed: false, reason: error.message });
        throw error;
      }
      try {
        const result = await tool.invoke(tool.validate(input === undefined && tool.inputSchema.type === "object" ? {} : input));
        audit({ capability: "tool", target, allowed: true });
        return result;
      } catch (e) {
        audit({ capability: "tool", target, allowed: true, reason: `${(e as Error).name}: ${(e as Error).message}` });
        throw e;
      }
    },
  };
}

/** A binding whose every call is reported: a refusal (EACCES, a quota) as denied, other failures as allowed uses that failed. */
function audited(binding: Bindable, capability: string, name: string, audit: (use: CapabilityUse) => void): Bindable {
  return {
    [BINDING]: (): Capability => {
      const cap = binding[BINDING]();
      return {
        kind: cap.kind,
        async call(method, args) {
          const arg = typeof args[0] === "string" ? JSON.stringify(args[0].slice(0, 200)) : "";
          const target = `${name}.${method}(${arg})`;
          try {
            const result = await cap.call(method, args);
            audit({ capability, target, allowed: true });
            return result;
          } catch (e) {
            const denied = (e instanceof WorkspaceError && e.code === "EACCES") || e instanceof QuotaExceededError;
            audit({ capability, target, allowed: !denied, reason: `${(e as Error).name}: ${(e as Error).message}` });
            throw e;
          }
        },
      };
    },
  };
}
