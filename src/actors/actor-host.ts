/**
 * One live durable actor (or facet) in the host: its worker instance, the calls in flight into it,
 * its facets, and the control channel its guest reaches through `ctx` (alarms, facets, parent).
 */
import { createHash } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ActorAbortedError } from "../errors.ts";
import { BINDING, fetcherCapability, type Capability, type CapabilityTable } from "../bindings/capability.ts";
import { fileNameFor } from "../bindings/storage/sqlite-file.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { WorkerCode } from "../loader/worker-code.ts";
import type { WorkerStub } from "../loader/worker-stub.ts";
import type { ActorLogEntry } from "./placement.ts";
import type { ActorAlarms } from "./alarms.ts";

/** What an actor's host needs from its namespace: the loader, and its alarms (top-level actors only). */
export interface ActorContext {
  loader: WorkerLoader;
  alarms?: Pick<ActorAlarms, "get" | "set" | "delete">;
  /** Cluster mode: appends the actor's committed writes to the shared log (the output gate). */
  replicate?: (entries: ActorLogEntry[]) => Promise<{ compact?: boolean } | void>;
}

export interface ActorParams {
  id: string;
  name?: string;
  className: string;
  code: WorkerCode;
  storagePath: string;
  /** The most the actor's database may hold; facets have their parent's. */
  maxStorageBytes: number;
  /** Capture each write as a changeset for `ctx.replicate` (top-level actors in cluster mode). */
  replicate?: boolean;
  parent?: ActorHost;
}

const MAX_LIVE_FACETS = 32;
const MAX_FACET_DEPTH = 4;

/** A facet's start options, as its parent's guest sent them. */
interface FacetOptions { code?: WorkerCode; className?: string; env?: Record<string, unknown> }

export class ActorHost {
  readonly params: ActorParams;
  private readonly ctx: ActorContext;
  private readonly stub: WorkerStub;
  private readonly capabilities: CapabilityTable;
  private readonly control: Capability;
  private readonly inFlight = new Set<(e: Error) => void>();
  private readonly facets = new Map<string, ActorHost>();
  active = 0;
  lastUsed = Date.now();
  private ended = false;

  constructor(ctx: ActorContext, params: ActorParams) {
    this.ctx = ctx;
    this.params = params;
    this.control = this.controlCapability();
    const loaded = ctx.loader._loadActor(params.code, {
      className: params.className, id: params.id, name: params.name, storagePath: params.storagePath, maxStorageBytes: params.maxStorageBytes, control: this.control, replicate: params.replicate,
    });
    this.stub = loaded.stub;
    this.capabilities = loaded.capabilities;
  }

  /** Whether the actor or any facet of it has a call in flight. */
  get busy(): boolean {
    return this.active > 0 || [...this.facets.values()].some((f) => f.busy);
  }

  /** An RPC call of `method` on the actor's instance. */
  call(method: string, args: unknown[]): Promise<unknown> {
    return this.track(() => this.stub.getEntrypoint(this.params.className)[method]!(...args));
  }

  fetch(request: Request): Promise<Response> {
    return this.track(() => this.stub.getEntrypoint(this.params.className).fetch(request));
  }

  /**
   * Ends the actor's isolate (and its facets'): calls in flight fail with ActorAbortedError; the
   * storage stays, and a later call starts the actor afresh from it.
   */
  abort(reason = "The actor was aborted."): void {
    if (this.ended) return;
    this.ended = true;
    const error = new ActorAbortedError(reason);
    for (const reject of this.inFlight) reject(error);
    this.inFlight.clear();
    for (const f of this.facets.values()) f.abort(reason);
    this.facets.clear();
    this.stub.dispose();
  }

  private async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.ended) throw new ActorAbortedError("The actor was aborted.");
    this.active++;
    let reject!: (e: Error) => void;
    const aborted = new Promise<never>((_, r) => (reject = r));
    this.inFlight.add(reject);
    try {
      return await Promise.race([work(), aborted]);
    } finally {
      this.inFlight.delete(reject);
      this.active--;
      this.lastUsed = Date.now();
    }
  }

  /** Where this actor's facets keep their SQLite files. */
  private get facetDir(): string {
    return this.params.storagePath.replace(/\.sqlite$/, ".facets");
  }

  private facetPath(name: string): string {
    return join(this.facetDir, `${fileNameFor(name)}.sqlite`);
  }

  /** How deep facets nest (a facet's facet's facet…): each level is an isolate of its own. */
  private get depth(): number {
    return this.params.parent ? this.params.parent.depth + 1 : 0;
  }

  private startFacet(name: string, options: FacetOptions): ActorHost {
    // Every running facet is an isolate: an actor may not fill the executors with them.
    if (this.facets.size >= MAX_LIVE_FACETS) throw new RangeError(`An actor may run at most ${MAX_LIVE_FACETS} facets at once; abort one first.`);
    if (this.depth >= MAX_FACET_DEPTH) throw new RangeError(`Facets nest at most ${MAX_FACET_DEPTH} deep.`);
    const className = options.className ?? this.params.className;
    // A sub-agent (no code of its own) runs its parent's code; either way it gets only the env its
    // parent passed, never the parent's own, and no globalOutbound (a capability too).
    const code: WorkerCode = { ...(options.code ? this.guestCode(options.code) : { ...this.params.code, globalOutbound: null }), env: this.facetEnv(options.env) };
    const facet = new ActorHost({ loader: this.ctx.loader }, {
      id: createHash("sha256").update(this.params.id).update("/").update(name).digest("hex"),
      name,
      className,
      code,
      storagePath: this.facetPath(name),
      maxStorageBytes: this.params.maxStorageBytes,
      parent: this,
    });
    this.facets.set(name, facet);
    return facet;
  }

  /**
   * A facet's code as its parent's guest sent it: modules and compatibility only. It runs under the
   * parent's limits, with no network and no npm (nothing its parent could not grant it).
   */
  private guestCode(code: WorkerCode): WorkerCode {
    const c = (typeof code === "object" && code !== null ? code : {}) as Partial<WorkerCode>;
    return {
      compatibilityDate: c.compatibilityDate ?? this.params.code.compatibilityDate,
      compatibilityFlags: c.compatibilityFlags,
      mainModule: c.mainModule as string,
      modules: c.modules as WorkerCode["modules"],
      limits: this.params.code.limits,
    };
  }

  /** A facet's env: plain data as sent; `{ __mayflyParentCap: n }` is this actor's binding n, handed on. */
  private facetEnv(env: Record<string, unknown> | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(env ?? {})) {
      const ref = (value as { __mayflyParentCap?: unknown } | null)?.__mayflyParentCap;
      if (typeof ref !== "number") {
        out[key] = value;
        continue;
      }
      const cap = this.capabilities.get(ref);
      // The control channel and body streams are this actor's own, never a binding to hand on.
      if (!cap || cap === this.control || cap.kind === "stream") throw new TypeError(`env.${key}: not a binding of this actor.`);
      out[key] = { [BINDING]: () => cap };
    }
    return out;
  }

  private facet(name: string): ActorHost {
    const f = this.facets.get(name);
    if (!f) throw new TypeError(`The facet "${name}" is not running; get it with ctx.facets.get() first.`);
    return f;
  }

  /** Names of this actor's facets: running, or with stored data. */
  private facetNames(): string[] {
    const names = new Set(this.facets.keys());
    try {
      for (const f of readdirSync(this.facetDir)) {
        if (f.endsWith(".sqlite")) names.add(nameFromFile(f.slice(0, -".sqlite".length)));
      }
    } catch {
      // No facet has stored anything yet.
    }
    return [...names].sort();
  }

  /** The capability behind `ctx` in the guest: alarms, facets, and the parent of a facet. */
  private controlCapability(): Capability {
    const fetchInto = (target: { fetch(r: Request): Promise<Response> }, wire: unknown) =>
      fetcherCapability(target, "actor").call("fetch", [wire]);
    return {
      kind: "rpc",
      call: async (method, args) => {
        const alarms = this.params.parent ? undefined : this.ctx.alarms;
        const noAlarms = () => new TypeError("Alarms are not available to facets; the parent actor can set one and call the facet.");
        switch (method) {
          case "getAlarm":
            if (!alarms) throw noAlarms();
            return alarms.get(this.params.id);
          case "setAlarm":
            if (!alarms) throw noAlarms();
            return alarms.set(this.params.id, this.params.name, Number(args[0]));
          case "deleteAlarm":
            if (!alarms) return null;
            return alarms.delete(this.params.id);
          case "replicate": {
            if (!this.ctx.replicate || this.params.parent) throw new TypeError("This actor's storage is not replicated.");
            // A failure fails this call and every later one of this instance (the guest chains them);
            // the placement then rebuilds the actor from the shared log before it serves again.
            return this.ctx.replicate((Array.isArray(args[0]) ? args[0] : []) as ActorLogEntry[]);
          }
          case "facetStart": {
            // A facet's file is not in the shared log: on another host it would come back empty.
            if (this.ctx.replicate) throw new TypeError("Facets are not available in cluster mode yet: their storage is not replicated.");
            const [name, options] = args as [string, FacetOptions | null];
            if (this.facets.has(name)) return true;
            if (options === null) return false;
            this.startFacet(String(name), options);
            return true;
          }
          case "facetCall":
            return this.facet(String(args[0])).call(String(args[1]), args[2] as unknown[]);
          case "facetFetch":
            return fetchInto(this.facet(String(args[0])), args[1]);
          case "facetAbort": {
            const f = this.facets.get(String(args[0]));
            this.facets.delete(String(args[0]));
            f?.abort(args[1] === undefined || args[1] === null ? "The facet was aborted." : String(args[1]));
            return null;
          }
          case "facetDelete": {
            const name = String(args[0]);
            this.facets.get(name)?.abort("The facet was deleted.");
            this.facets.delete(name);
            const path = this.facetPath(name);
            for (const p of [path, `${path}-wal`, `${path}-shm`]) rmSync(p, { force: true });
            rmSync(path.replace(/\.sqlite$/, ".facets"), { recursive: true, force: true });
            return null;
          }
          case "facetList":
            return this.facetNames();
          case "parentCall":
            if (!this.params.parent) throw new TypeError("This actor is not a facet: it has no parent.");
            return this.params.parent.call(String(args[0]), args[1] as unknown[]);
          case "parentFetch":
            if (!this.params.parent) throw new TypeError("This actor is not a facet: it has no parent.");
            return fetchInto(this.params.parent, args[0]);
          default:
            throw new TypeError(`Unknown actor control method ${method}().`);
        }
      },
    };
  }
}

/** The inverse of fileNameFor: ".xx" escapes back to bytes. */
function nameFromFile(file: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < file.length; i++) {
    if (file[i] === "." && /^[0-9a-f]{2}$/.test(file.slice(i + 1, i + 3))) {
      bytes.push(parseInt(file.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(file.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}
