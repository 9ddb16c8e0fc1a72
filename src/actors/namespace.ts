/**
 * An actor namespace (Cloudflare's DurableObjectNamespace): ids from names or at random, and a stub
 * per id whose calls reach the one live instance of that actor in this host. Usable from the host
 * (`ns.get(id).method()`), or placed in a worker's env, where it is the same API.
 */
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { BINDING, fetcherCapability, type Bindable, type Capability } from "../bindings/capability.ts";
import { fileNameFor } from "../bindings/storage/sqlite-file.ts";
import { actorIdFromName } from "../engine/executor/services/actor-storage.ts";
import { WorkerLoader } from "../loader/worker-loader.ts";
import type { WorkerCode } from "../loader/worker-code.ts";
import type { RpcMethods, Untyped } from "../loader/worker-stub.ts";
import { ActorHost } from "./actor-host.ts";
import { AlarmStore, type ActorAlarms, type FireAlarm } from "./alarms.ts";
import type { ActorPlacement, ActorTarget } from "./placement.ts";

const OptionsSchema = z.object({
  className: z.string().min(1),
  worker: z.custom<WorkerCode>((v) => typeof v === "object" && v !== null && typeof (v as WorkerCode).mainModule === "string", "a WorkerCode"),
  loader: z.custom<WorkerLoader | (() => WorkerLoader)>((v) => v instanceof WorkerLoader || typeof v === "function", "a WorkerLoader").optional(),
  name: z.string().min(1).max(128).optional(),
  dataDir: z.string().min(1).default(".mayfly/data"),
  idleTtlMs: z.number().int().positive().default(30_000),
  maxStorageBytes: z.number().int().min(64 * 1024).default(10 * 2 ** 30),
  placement: z.custom<ActorPlacement>((v) => typeof v === "object" && v !== null && typeof (v as ActorPlacement).place === "function", "an ActorPlacement").optional(),
}).strict();

export interface ActorNamespaceOptions {
  /** The exported class (`extends DurableObject`) that implements the actors. */
  className: string;
  /** The worker that exports it (its env is every actor's env). */
  worker: WorkerCode;
  /**
   * The loader the actors run in (or a function giving it, for a loader made after the namespace);
   * without one, the namespace starts (and closes) its own.
   */
  loader?: WorkerLoader | (() => WorkerLoader);
  /**
   * Names the namespace: ids from names are derived from it, and its data lives in
   * `<dataDir>/actors/<name>/` (default: `className`).
   */
  name?: string;
  /** Directory for storage (default ".mayfly/data"). */
  dataDir?: string;
  /** An actor with no call in flight for this long is evicted: its isolate is freed (default 30 s). */
  idleTtlMs?: number;
  /**
   * The most one actor's database (and each of its facets') may hold, in bytes (default 10 GiB, as on
   * Cloudflare); a write past it fails with QuotaExceededError and changes nothing.
   */
  maxStorageBytes?: number;
  /**
   * Many hosts (cluster mode): where each actor runs. The actor runs here only while this host holds
   * its lease; otherwise calls go to the host that does. Without it every actor runs in this host.
   */
  placement?: ActorPlacement;
}

/** An actor's id: 64 hex digits; `name` when it came from idFromName(). */
export class ActorId {
  readonly #hex: string;
  readonly name: string | undefined;
  constructor(hex: string, name?: string) {
    if (!HEX64.test(hex)) throw new TypeError("Invalid actor id: must be 64 hex digits.");
    this.#hex = hex;
    this.name = name;
  }
  toString(): string {
    return this.#hex;
  }
  equals(other: unknown): boolean {
    return other instanceof ActorId && other.#hex === this.#hex;
  }
}

/** What `get(id)` returns: `fetch()`, and every other property as an RPC method of the actor. */
export type ActorStub<T extends object = Untyped> = {
  readonly id: ActorId;
  readonly name: string | undefined;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
} & (string extends keyof T ? Untyped : RpcMethods<T>);

const HEX64 = /^[0-9a-f]{64}$/;

/** Data directories with an open namespace in this process: one live instance per actor means one namespace per directory. */
const open = new Set<string>();

export class ActorNamespace implements Bindable {
  readonly name: string;
  private readonly opts: z.output<typeof OptionsSchema>;
  private ownLoader: WorkerLoader | undefined;
  private worker: WorkerCode;
  private readonly dir: string;
  private readonly live = new Map<string, ActorHost>();
  private readonly alarms: ActorAlarms;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(options: ActorNamespaceOptions) {
    const parsed = OptionsSchema.safeParse(options);
    if (!parsed.success) throw new ConfigError(`actorNamespace(): ${parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")}`);
    this.opts = parsed.data;
    this.name = this.opts.name ?? this.opts.className;
    const kind = join("actors", fileNameFor(this.name));
    this.dir = resolve(this.opts.dataDir, kind);
    if (open.has(this.dir)) throw new ConfigError(`An actor namespace over ${this.dir} is already open in this process; close it first (each actor must have one live instance).`);
    this.worker = this.opts.worker;
    const fire: FireAlarm = async (id, name, info) => { await (await this.target(id, name)).call("alarm", [info]); };
    const placement = this.opts.placement;
    this.alarms = placement?.alarms ? placement.alarms(this.name, fire) : new AlarmStore(this.opts.dataDir, kind, fire);
    open.add(this.dir);
    const ttl = this.opts.idleTtlMs;
    this.sweeper = setInterval(() => this.evictIdle(ttl), Math.max(10, Math.min(ttl / 2, 5_000)));
    this.sweeper.unref();
    this.opts.placement?.attach(this.name, {
      localTarget: async (hex, name) => this.placed(hex, name, true),
      lost: (hex) => this.dropLocal(hex, "This host no longer owns the actor."),
    });
  }

  idFromName(name: string): ActorId {
    return new ActorId(actorIdFromName(this.name, String(name)), String(name));
  }

  newUniqueId(): ActorId {
    return new ActorId(randomBytes(32).toString("hex"));
  }

  idFromString(hex: string): ActorId {
    return new ActorId(String(hex));
  }

  get<T extends object = Untyped>(id: ActorId): ActorStub<T> {
    if (!(id instanceof ActorId)) throw new TypeError("get() takes an id from idFromName(), newUniqueId() or idFromString().");
    const hex = id.toString();
    const target = {
      id,
      name: id.name,
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => (await this.target(hex, id.name)).fetch(new Request(input, init)),
    };
    return new Proxy(target, {
      get: (t, prop) => {
        if (Object.hasOwn(t, prop)) return t[prop as keyof typeof t];
        if (typeof prop !== "string" || prop === "then") return undefined;
        return async (...args: unknown[]) => (await this.target(hex, id.name)).call(prop, args);
      },
    }) as unknown as ActorStub<T>;
  }

  getByName<T extends object = Untyped>(name: string): ActorStub<T> {
    return this.get<T>(this.idFromName(name));
  }

  /** Actors with a live instance (not evicted). */
  get liveActors(): number {
    return this.live.size;
  }

  /** Ends an actor's instance now: its calls in flight fail with ActorAbortedError; its storage stays. */
  abort(id: ActorId, reason?: string): void {
    const host = this.live.get(id.toString());
    this.live.delete(id.toString());
    host?.abort(reason);
  }

  /** Evicts every actor and stops the alarms; a loader the namespace started is closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const [hex, host] of this.live) {
      host.abort("The actor namespace was closed.");
      this.opts.placement?.release(this.name, hex);
    }
    this.live.clear();
    this.opts.placement?.detach(this.name);
    this.alarms.close();
    open.delete(this.dir);
    await this.ownLoader?.close();
  }

  /**
   * @internal New code for the actors (a named worker rebuilt by --watch): live actors are ended, and
   * each starts again, from its storage, on the new code at its next call.
   */
  _replaceWorker(code: WorkerCode): void {
    this.worker = code;
    for (const host of this.live.values()) host.abort("The actor's code changed.");
    this.live.clear();
  }

  private get loader(): WorkerLoader {
    const given = this.opts.loader;
    if (given) return typeof given === "function" ? given() : given;
    return (this.ownLoader ??= new WorkerLoader());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** In a worker's env: the same API, every call crossing back to this namespace. */
  [BINDING](): Capability {
    return {
      kind: "actors",
      meta: { namespace: this.name },
      call: async (method, args) => {
        const [hex, name] = args as [string, string | null];
        if (typeof hex !== "string" || !HEX64.test(hex)) throw new TypeError("Invalid actor id: must be 64 hex digits.");
        // A name is believed only if it is the id's own (ctx.id.name must not be forged by a caller).
        const host = await this.target(hex, typeof name === "string" && actorIdFromName(this.name, name) === hex ? name : undefined);
        if (method === "call") return host.call(String(args[2]), Array.isArray(args[3]) ? args[3] : []);
        if (method === "fetch") return fetcherCapability(host, "actor").call("fetch", [args[2]]);
        throw new TypeError(`Actor namespaces have no method ${method}().`);
      },
    };
  }

  /** What a call of actor `hex` reaches: its instance here, or (cluster mode) the host that owns it. */
  private target(hex: string, name: string | undefined): ActorTarget | Promise<ActorTarget> {
    return this.opts.placement ? this.placed(hex, name, false) : this.host(hex, name);
  }

  /** Cluster mode: the actor's instance here while this host holds its lease, else its owner. */
  private async placed(hex: string, name: string | undefined, forwarded: boolean): Promise<ActorTarget> {
    const placement = this.opts.placement!;
    const live = this.live.get(hex);
    const held = placement.holds(this.name, hex);
    if (live && held === live.params.storagePath) return live;
    const where = await placement.place(this.name, hex, this.dir, forwarded, name);
    if (!where.local) {
      this.dropLocal(hex, "This host no longer owns the actor.");
      return where.remote;
    }
    const now = this.live.get(hex);
    // A new file (the lease changed hands since): the old instance's state is not the actor's any more.
    if (now && now.params.storagePath !== where.storagePath) this.dropLocal(hex, "The actor was rebuilt from shared storage.");
    return this.host(hex, name, where.storagePath);
  }

  private dropLocal(hex: string, reason: string): void {
    const host = this.live.get(hex);
    this.live.delete(hex);
    host?.abort(reason);
  }

  /** The live instance of actor `hex`, started if it is not. */
  private host(hex: string, name: string | undefined, storagePath = join(this.dir, `${hex}.sqlite`)): ActorHost {
    if (this.closed) throw new ConfigError("The actor namespace was closed.");
    let host = this.live.get(hex);
    if (host) return host;
    const placement = this.opts.placement;
    host = new ActorHost({
      loader: this.loader,
      alarms: this.alarms,
      // Cluster mode: each call's committed writes reach the shared log before its result is released.
      ...(placement ? { replicate: (entries) => placement.replicate(this.name, hex, entries) } : {}),
    }, {
      id: hex,
      name,
      className: this.opts.className,
      code: this.worker,
      storagePath,
      maxStorageBytes: this.opts.maxStorageBytes,
      replicate: placement !== undefined,
    });
    this.live.set(hex, host);
    return host;
  }

  /** Hibernation: an actor idle past the TTL loses its isolate; its next call rebuilds it from storage. */
  private evictIdle(ttlMs: number): void {
    const now = Date.now();
    for (const [hex, host] of this.live) {
      if (host.busy || now - host.lastUsed < ttlMs) continue;
      this.live.delete(hex);
      host.abort("The actor was evicted.");
      this.opts.placement?.release(this.name, hex);
    }
  }
}

/** A namespace of durable actors, for the host or for a worker's env: `env: { COUNTER: actorNamespace({ ... }) }`. */
export function actorNamespace(options: ActorNamespaceOptions): ActorNamespace {
  return new ActorNamespace(options);
}
