/**
 * The plugin host: installs, updates, disables and removes plugins (manifest + code, kept in SQLite),
 * runs their hooks in priority order, serves their routes, and records every capability they use.
 * A plugin only ever runs with the bindings its manifest names (manifestToWorkerCode), checked against
 * the host's grants at install, at update and again at every run, so tightening the grants takes
 * effect at once. Each invocation runs in a fresh isolate, or (`warm: true`) in one kept per
 * name@version.
 */
import { z } from "zod";
// semver: an update must carry a higher version, ordered as npm orders them.
import semver from "semver";
import { PluginNotFoundError, PluginStateError, HookTimeoutError } from "../errors.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { WorkerStub } from "../loader/worker-stub.ts";
import { normalizeWorkerCode } from "../loader/worker-code.ts";
import type { Tool } from "../codemode/tool.ts";
import { workspace, type Workspace } from "../bindings/workspace/index.ts";
import { afterBody } from "../server/worker-runs.ts";
import {
  checkGrants, diffManifests, hookSubscriptions, manifestToWorkerCode, parseManifest, pluginStoreName,
  type ManifestContext, type ManifestDiff, type PluginCode, type PluginGrants, type PluginManifest,
} from "../manifests/index.ts";
import { withEntry } from "./entry.ts";
import { PluginStore, type AuditEntry, type AuditQuery, type StoredPlugin } from "./store.ts";

/** The host's own rules for a hook: whether one plugin alone may subscribe, its timeout and error policy. */
export interface HookDefinition {
  exclusive?: boolean;
  /** The longest one handler may run (default: the host's hookTimeoutMs); a subscription may ask for less. */
  timeoutMs?: number;
  /** Used where a subscription names none (default "continue"). */
  errorPolicy?: "continue" | "abort";
}

export const hookDefinitionSchema = z.strictObject({
  exclusive: z.boolean().optional(),
  timeoutMs: z.number().int().positive().optional(),
  errorPolicy: z.enum(["continue", "abort"]).optional(),
});

const optionsSchema = z.strictObject({
  loader: z.custom<WorkerLoader>((v) => typeof (v as WorkerLoader | null)?.load === "function", "loader must be a WorkerLoader"),
  /** Where the host's state and every plugin's stores live. */
  dataDir: z.string().min(1),
  /** What plugins may be granted: one set for all, or per manifest. */
  grants: z.union([z.custom<(m: PluginManifest) => PluginGrants>((v) => typeof v === "function"), z.record(z.string(), z.unknown())]),
  /** Host tools plugins may call through env.TOOLS (as their manifests name them). */
  tools: z.array(z.custom<Tool>((v) => typeof (v as Tool | null)?.invoke === "function", "a tool")).optional(),
  /** Gateway settings other than the allow-list (lookup, timeoutMs, maxResponseBytes...). */
  egress: z.record(z.string(), z.unknown()).optional(),
  /** Hooks the host defines: exclusive ones, timeouts, error policies. */
  hooks: z.record(z.string(), hookDefinitionSchema).optional(),
  /** The longest a hook handler may run (default 5 s); its isolate is then ended. */
  hookTimeoutMs: z.number().int().positive().optional(),
  /** Keep one warm isolate per name@version instead of a fresh one per invocation (default false). */
  warm: z.boolean().optional(),
  /** Time one tool call may take (default 30 s). */
  toolTimeoutMs: z.number().int().positive().optional(),
});

export interface PluginHostOptions {
  loader: WorkerLoader;
  dataDir: string;
  grants: PluginGrants | ((manifest: PluginManifest) => PluginGrants);
  tools?: readonly Tool[];
  egress?: ManifestContext["egress"];
  hooks?: Record<string, HookDefinition>;
  hookTimeoutMs?: number;
  warm?: boolean;
  toolTimeoutMs?: number;
}

/** A plugin's code: one module's source (JavaScript or TypeScript), or modules with their main one. */
export type PluginSource = string | PluginCode;

export interface PluginInfo {
  name: string;
  version: string;
  publisher: string;
  description?: string;
  enabled: boolean;
  manifest: PluginManifest;
  installedAt: number;
  updatedAt: number;
  /** An update waiting for approval. */
  pending?: { version: string; diff: ManifestDiff };
}

export type UpdateResult =
  | { status: "updated"; diff: ManifestDiff; plugin: PluginInfo }
  | { status: "pending-approval"; diff: ManifestDiff };

export interface HookInvocation {
  plugin: string;
  status: "ok" | "error";
  error?: { name: string; message: string };
  ms: number;
}

export interface HookResult {
  /** The payload after every handler that ran (each one's non-undefined return replaces it). */
  payload: unknown;
  /** One entry per subscribed plugin that ran, in order. */
  invocations: HookInvocation[];
  /** Set when a handler with errorPolicy "abort" failed: the chain stopped there. */
  aborted?: { plugin: string; error: { name: string; message: string } };
}

const DEFAULT_PRIORITY = 100;

export class PluginHost {
  private readonly opts: PluginHostOptions;
  private readonly store: PluginStore;
  /** Open stores of every plugin, by kind and name (one file handle each, across runs). */
  private readonly stores = new Map<string, unknown>();
  /** Warm instances by name@version. */
  private readonly warmStubs = new Map<string, WorkerStub>();
  private closed = false;

  constructor(options: PluginHostOptions) {
    optionsSchema.parse(options);
    this.opts = options;
    this.store = new PluginStore(options.dataDir);
  }

  // -- lifecycle ---------------------------------------------------------------------------------

  /** Installs a plugin, enabled. Refused (nothing stored) if it exists, asks for what is not granted, or takes an exclusive hook that is held. */
  install(input: { manifest: unknown; code: PluginSource }): PluginInfo {
    const manifest = parseManifest(input.manifest);
    if (this.store.get(manifest.name)) throw new PluginStateError(manifest.name, `A plugin named ${manifest.name} is installed; update() it instead.`);
    const code = this.admit(manifest, input.code);
    const now = Date.now();
    this.store.put({ manifest, code, enabled: true, installedAt: now, updatedAt: now });
    return this.info(manifest.name);
  }

  /**
   * Updates a plugin to a higher version. If the new manifest asks for more (diffManifests(...).widens),
   * nothing changes until approve(name, version); otherwise it applies at once.
   */
  update(input: { manifest: unknown; code: PluginSource }): UpdateResult {
    const manifest = parseManifest(input.manifest);
    const current = this.require(manifest.name);
    if (!semver.gt(manifest.version, current.manifest.version)) {
      throw new PluginStateError(manifest.name, `${manifest.name} ${manifest.version} is not newer than the installed ${current.manifest.version}.`);
    }
    const code = this.admit(manifest, input.code);
    const diff = diffManifests(current.manifest, manifest);
    if (diff.widens) {
      this.store.setPending({ manifest, code, diff, requestedAt: Date.now() });
      return { status: "pending-approval", diff };
    }
    this.apply(current, manifest, code);
    return { status: "updated", diff, plugin: this.info(manifest.name) };
  }

  /** Applies the pending update of `name` to `version` (checked against the grants again). */
  approve(name: string, version: string): PluginInfo {
    const current = this.require(name);
    const pending = this.store.pending(name);
    if (!pending || pending.manifest.version !== version) throw new PluginNotFoundError(name, `No update of ${name} to ${version} is waiting for approval.`);
    const code = this.admit(pending.manifest, pending.code);
    this.apply(current, pending.manifest, code);
    return this.info(name);
  }

  /** Drops the pending update of `name`, if any. */
  reject(name: string): void {
    this.require(name);
    this.store.dropPending(name);
  }

  disable(name: string): PluginInfo {
    const current = this.require(name);
    this.store.setEnabled(name, false);
    this.dropWarm(current.manifest);
    return this.info(name);
  }

  /** Enables a plugin again (its exclusive hooks must still be free, its manifest still granted). */
  enable(name: string): PluginInfo {
    const current = this.require(name);
    this.admit(current.manifest, current.code);
    this.store.setEnabled(name, true);
    return this.info(name);
  }

  /** Removes a plugin and any pending update. Its stores' files stay in dataDir (delete them to drop its data). */
  uninstall(name: string): void {
    const current = this.require(name);
    this.store.delete(name);
    this.dropWarm(current.manifest);
  }

  get(name: string): PluginInfo | undefined {
    const p = this.store.get(name);
    return p && this.describe(p);
  }

  list(): PluginInfo[] {
    return this.store.list().map((p) => this.describe(p));
  }

  /** The plugin's own workspace, host side (always writable here): to seed or inspect it. */
  workspace(name: string): Workspace {
    this.require(name);
    const key = `workspace:${pluginStoreName(name)}:host`;
    if (!this.stores.has(key)) this.stores.set(key, workspace({ name: pluginStoreName(name), dataDir: this.opts.dataDir }));
    return this.stores.get(key) as Workspace;
  }

  // -- running -----------------------------------------------------------------------------------

  /**
   * Calls `name`'s handler of every enabled plugin subscribed to it, lowest priority first (ties by
   * plugin name). Each handler gets the payload the previous one returned. A handler that throws or
   * runs past its timeout is recorded; with errorPolicy "abort" the chain stops there.
   */
  async runHook(name: string, payload: unknown): Promise<HookResult> {
    const def = this.opts.hooks?.[name] ?? {};
    const ceiling = def.timeoutMs ?? this.opts.hookTimeoutMs ?? 5_000;
    const subscribers = this.store.list()
      .filter((p) => p.enabled)
      .flatMap((p) => hookSubscriptions(p.manifest).filter(([hook]) => hook === name).map(([, sub]) => ({ p, sub })))
      .sort((a, b) => (a.sub.priority ?? DEFAULT_PRIORITY) - (b.sub.priority ?? DEFAULT_PRIORITY) || (a.p.manifest.name < b.p.manifest.name ? -1 : 1));
    let current = payload;
    const invocations: HookInvocation[] = [];
    for (const { p, sub } of subscribers) {
      const timeoutMs = Math.min(sub.timeoutMs ?? ceiling, ceiling);
      const started = performance.now();
      let run: ReturnType<PluginHost["open"]> | undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        run = this.open(p);
        const call = (run.stub.getEntrypoint() as unknown as { hook(n: string, v: unknown): Promise<unknown> }).hook(name, current);
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            // The isolate is ended, not abandoned: a hung handler must not keep running (or holding a core).
            run!.end();
            reject(new HookTimeoutError(p.manifest.name, `The ${name} handler of ${p.manifest.name} ran past ${timeoutMs} ms.`));
          }, timeoutMs);
        });
        const out = await Promise.race([call, timeout]);
        if (out !== undefined) current = out;
        invocations.push({ plugin: p.manifest.name, status: "ok", ms: performance.now() - started });
      } catch (e) {
        const error = { name: (e as Error).name, message: (e as Error).message };
        invocations.push({ plugin: p.manifest.name, status: "error", error, ms: performance.now() - started });
        if ((sub.errorPolicy ?? def.errorPolicy ?? "continue") === "abort") return { payload: current, invocations, aborted: { plugin: p.manifest.name, error } };
      } finally {
        clearTimeout(timer);
        run?.done();
      }
    }
    return { payload: current, invocations };
  }

  /**
   * Sends a request to a plugin's routes. `request`'s path is the one below the plugin's mount
   * (`/p/<name>/feed` arrives as `/feed`); a path none of its routes names is answered 404 here.
   */
  async fetch(name: string, request: Request): Promise<Response> {
    const p = this.store.get(name);
    if (!p || !p.enabled) throw new PluginNotFoundError(name, `No enabled plugin named ${name}.`);
    const path = new URL(request.url).pathname;
    if (!(p.manifest.routes ?? []).some((r) => (r.endsWith("*") ? path.startsWith(r.slice(0, -1)) : path === r))) {
      return Response.json({ error: { name: "NotFound", message: `${name} serves no route ${path}.` } }, { status: 404 });
    }
    const run = this.open(p);
    try {
      return afterBody(await run.stub.getEntrypoint().fetch(request), () => run.done());
    } catch (e) {
      run.done();
      throw e;
    }
  }

  /**
   * The tools a plugin's code exports (name, description, inputSchema), read from a fresh isolate;
   * with `typecheck`, its TypeScript is checked first (TypeCheckError).
   */
  async describeTools(name: string, options: { typecheck?: boolean } = {}): Promise<{ name: string; description?: string; inputSchema: Record<string, unknown>; runnable: boolean }[]> {
    const p = this.require(name);
    const run = this.open(p, { fresh: true, typecheck: options.typecheck });
    try {
      return await (run.stub.getEntrypoint() as unknown as { describe(): Promise<never> }).describe();
    } finally {
      run.done();
    }
  }

  /** Calls a tool a plugin's code exports, with the plugin's bindings (its manifest's, nobody else's). */
  async callTool(name: string, tool: string, input: unknown): Promise<unknown> {
    const p = this.store.get(name);
    if (!p || !p.enabled) throw new PluginNotFoundError(name, `No enabled plugin named ${name}.`);
    const run = this.open(p);
    try {
      return await (run.stub.getEntrypoint() as unknown as { tool(t: string, i: unknown): Promise<unknown> }).tool(tool, input);
    } finally {
      run.done();
    }
  }

  // -- audit -------------------------------------------------------------------------------------

  /** Capability uses, oldest first: by plugin, since a time, by capability or decision. */
  audit(query: AuditQuery = {}): AuditEntry[] {
    return this.store.audit(query);
  }

  /** The same, as JSON lines (one entry per line, `at` as an ISO date), for a log shipper or a file. */
  exportAudit(query: AuditQuery = {}): string {
    return this.audit(query).map((e) => JSON.stringify({ ...e, at: new Date(e.at).toISOString() }) + "\n").join("");
  }

  /** Ends warm instances and closes every store this host opened. The loader is the caller's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stub of this.warmStubs.values()) stub.dispose();
    this.warmStubs.clear();
    for (const s of this.stores.values()) (s as { close?: () => void }).close?.();
    this.stores.clear();
    this.store.close();
  }

  // -- inside ------------------------------------------------------------------------------------

  /** Everything an install, update, approval or enable must pass; returns the code to keep. */
  private admit(manifest: PluginManifest, source: PluginSource): PluginCode {
    const code: PluginCode = typeof source === "string" ? { mainModule: "plugin.ts", modules: { "plugin.ts": source } } : source;
    checkGrants(manifest, this.grantsFor(manifest), new Set((this.opts.tools ?? []).map((t) => `${t.namespace}.${t.name}`)));
    this.checkHooks(manifest);
    // The code's shape is checked now (InvalidWorkerCodeError), not at its first hook.
    normalizeWorkerCode({ compatibilityDate: "2025-06-01", ...withEntry(manifest.name, code) });
    return code;
  }

  /** An exclusive hook (by the host's definition or a subscription's) may have one enabled subscriber. */
  private checkHooks(manifest: PluginManifest): void {
    const others = this.store.list().filter((p) => p.enabled && p.manifest.name !== manifest.name);
    for (const [hook, sub] of hookSubscriptions(manifest)) {
      const holders = others.filter((p) => hookSubscriptions(p.manifest).some(([h]) => h === hook));
      if (!holders.length) continue;
      const exclusive = this.opts.hooks?.[hook]?.exclusive || sub.exclusive || holders.some((p) => hookSubscriptions(p.manifest).some(([h, s]) => h === hook && s.exclusive));
      if (exclusive) throw new PluginStateError(manifest.name, `The hook ${hook} is exclusive and ${holders[0]!.manifest.name} already subscribes to it.`);
    }
  }

  private apply(current: StoredPlugin, manifest: PluginManifest, code: PluginCode): void {
    this.store.put({ manifest, code, enabled: current.enabled, installedAt: current.installedAt, updatedAt: Date.now() });
    this.dropWarm(current.manifest);
  }

  private grantsFor(manifest: PluginManifest): PluginGrants {
    return typeof this.opts.grants === "function" ? this.opts.grants(manifest) : this.opts.grants;
  }

  private require(name: string): StoredPlugin {
    const p = this.store.get(name);
    if (!p) throw new PluginNotFoundError(name, `No plugin named ${name} is installed.`);
    return p;
  }

  private info(name: string): PluginInfo {
    return this.describe(this.require(name));
  }

  private describe(p: StoredPlugin): PluginInfo {
    const name = p.manifest.name;
    const pending = this.store.pending(name);
    return {
      name, version: p.manifest.version, publisher: p.manifest.publisher,
      ...(p.manifest.description !== undefined ? { description: p.manifest.description } : {}),
      enabled: p.enabled, manifest: p.manifest, installedAt: p.installedAt, updatedAt: p.updatedAt,
      ...(pending ? { pending: { version: pending.manifest.version, diff: pending.diff } } : {}),
    };
  }

  /**
   * An isolate for one invocation of `p`: its WorkerCode is built from the manifest (grants checked
   * again), every capability use recorded under its name. `done` ends a fresh isolate; `end` ends
   * even a warm one (a hook past its timeout).
   */
  private open(p: StoredPlugin, options: { fresh?: boolean; typecheck?: boolean } = {}): { stub: WorkerStub; done(): void; end(): void } {
    const { manifest } = p;
    const build = () => ({ ...manifestToWorkerCode(manifest, withEntry(manifest.name, p.code), this.grantsFor(manifest), {
      dataDir: this.opts.dataDir,
      tools: this.opts.tools,
      egress: this.opts.egress,
      stores: this.stores,
      toolTimeoutMs: this.opts.toolTimeoutMs,
      audit: (use) => { if (!this.closed) this.store.record({ plugin: manifest.name, ...use, at: Date.now() }); },
    }), ...(options.typecheck ? { typecheck: true } : {}) });
    if (!this.opts.warm || options.fresh) {
      const stub = this.opts.loader.load(build());
      return { stub, done: () => stub.dispose(), end: () => stub.dispose() };
    }
    const id = warmId(manifest);
    const stub = this.opts.loader.get(id, build);
    this.warmStubs.set(id, stub);
    return { stub, done: () => {}, end: () => { stub.dispose(); this.warmStubs.delete(id); } };
  }

  private dropWarm(manifest: PluginManifest): void {
    const id = warmId(manifest);
    this.warmStubs.get(id)?.dispose();
    this.warmStubs.delete(id);
  }
}

function warmId(m: PluginManifest): string {
  return `plugin:${m.name}@${m.version}`;
}
