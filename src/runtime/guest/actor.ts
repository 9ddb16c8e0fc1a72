/**
 * Durable actors in the guest: the `ctx` a `DurableObject` class is constructed with (Cloudflare's
 * DurableObjectState: id, storage, blockConcurrencyWhile, waitUntil, facets), the one instance that
 * serves every call of this isolate, and the stubs of actor namespaces placed in env.
 *
 * `ctx.storage` is in actor-storage.ts; facets are capability calls to the actor's control channel
 * in the host.
 */
import { callHost, startHostTask } from "./host-calls.ts";
import { getRandomValues } from "./crypto.ts";
import { makeStorage } from "./actor-storage.ts";

export interface ActorStart { className: string; id: string; name?: string; control: number; replicate?: boolean }

type Ctor = new (ctx: unknown, env: unknown) => Record<string, unknown>;

let actor: ActorStart | undefined;
let instance: Record<string, unknown> | undefined;
/**
 * blockConcurrencyWhile()'s gate. While it is closed, calls wait in `waiting`, in order; once it
 * opens they are delivered one at a time, each running to its first await before the next is let
 * in (as Cloudflare delivers events), so a call that closes the gate again holds the rest.
 */
let gate: Promise<unknown> | undefined;
const waiting: (() => void)[] = [];

function releaseNext(): void {
  if (!gate) waiting.shift()?.();
}

/** A call into the actor has run to its first await (or failed before it): the next may come in. */
export function actorDelivered(): void {
  releaseNext();
}
let waitUntil: (p: Promise<unknown>) => void = () => {};

export function setActor(a: ActorStart | undefined, keepAlive: (p: Promise<unknown>) => void): void {
  actor = a;
  instance = undefined;
  durable = Promise.resolve();
  compact = false;
  waitUntil = keepAlive;
}

function cap(id: number, method: string, args: unknown[]): Promise<unknown> {
  return startHostTask<unknown>("cap", "call", id, method, args).promise;
}

function store<T>(op: string, ...args: unknown[]): T {
  return callHost<T>("actor", op, ...args);
}

/**
 * Cluster mode's output gate: a call's result is released only once the writes committed so far
 * (captured as changesets by the storage service) are appended to the shared log under this host's
 * fencing token. Entries go to the host as soon as they are drained (it appends them in arrival
 * order, batching those that arrive while an append is in flight); a call waits for its own append
 * and every one before it, so a call that wrote nothing still waits for the writes it may have read.
 * A failed append fails every call waiting on it and every later one of this instance.
 */
let durable: Promise<unknown> = Promise.resolve();
/** The host asked for the whole file next time (its log has many changesets since the last one). */
let compact = false;

export async function actorOutputGate(): Promise<void> {
  if (!actor?.replicate) return;
  const entries = store<unknown[] | null>("drain", compact);
  if (entries) {
    compact = false;
    const control = actor.control;
    const sent = cap(control, "replicate", [entries]).then((r) => {
      if ((r as { compact?: boolean } | null)?.compact) compact = true;
    });
    durable = Promise.all([durable, sent]);
  }
  await durable;
}

/** Whether `entrypoint` names the actor class this isolate hosts. */
export function hostsActor(entrypoint: string | null): boolean {
  return actor !== undefined && entrypoint === actor.className;
}

/** The actor instance (hostsActor(entrypoint) holds); constructed on first use, after the input gate. */
export async function actorTarget(entrypoint: string | null, exported: unknown, env: unknown): Promise<Record<string, unknown>> {
  if (!actor || entrypoint !== actor.className) throw new TypeError(`"${entrypoint}" is not this isolate's actor class.`);
  if (gate || waiting.length) await new Promise<void>((r) => waiting.push(r));
  if (!instance) {
    if (typeof exported !== "function") throw new TypeError(`The actor class "${actor.className}" is not exported by the worker.`);
    instance = new (exported as Ctor)(makeState(actor), env);
    // The constructor closed the gate (blockConcurrencyWhile): this call goes first once it opens.
    if (gate) await new Promise<void>((r) => waiting.unshift(r));
  }
  return instance;
}

// ----- ids -----

const HEX64 = /^[0-9a-f]{64}$/;

class DurableObjectId {
  readonly #hex: string;
  readonly name: string | undefined;
  constructor(hex: string, name?: string) {
    this.#hex = hex;
    this.name = name;
  }
  toString(): string {
    return this.#hex;
  }
  equals(other: unknown): boolean {
    return other instanceof DurableObjectId && other.#hex === this.#hex;
  }
}

function randomHex(): string {
  const bytes = getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ----- facets -----

/** Stubs of capabilities: env values the runtime made, known by their capability id. */
const capabilityIds = new WeakMap<object, number>();

export function rememberCapability(stub: object, id: number): object {
  capabilityIds.set(stub, id);
  return stub;
}

/**
 * A facet's env as it crosses to the host: plain data by copy; a binding of this actor by its id
 * here, which the host resolves in this actor's own table (so a facet can be given only what its
 * parent holds, and only what its parent passes).
 */
function facetEnv(env: unknown): Record<string, unknown> | undefined {
  if (env === undefined || env === null) return undefined;
  if (typeof env !== "object") throw new TypeError("A facet's env must be an object.");
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
    const id = (typeof v === "object" || typeof v === "function") && v !== null ? capabilityIds.get(v) : undefined;
    out[k] = id !== undefined ? { __mayflyParentCap: id } : v;
  }
  return out;
}

type FacetOptions = { code?: unknown; className?: string; env?: unknown };

function rpcStub(call: (method: string, args: unknown[]) => Promise<unknown>, fetch: (input: unknown, init?: unknown) => Promise<unknown>, extra: Record<string, unknown> = {}): object {
  return new Proxy(Object.freeze({ ...extra }), {
    get: (t, prop) => {
      if (typeof prop !== "string" || prop === "then") return undefined;
      if (Object.hasOwn(t, prop)) return (t as Record<string, unknown>)[prop];
      if (prop === "fetch") return fetch;
      return (...args: unknown[]) => call(prop, args);
    },
  });
}

export type FetchVia = (capId: number, input: unknown, init: unknown, method: string, lead: unknown[]) => Promise<unknown>;
let fetchVia: FetchVia = () => Promise.reject(new TypeError("fetch is not available"));

export function setFetchVia(f: FetchVia): void {
  fetchVia = f;
}

function makeFacets(control: number) {
  const started = new Map<string, Promise<void>>();
  const ensure = (name: string, getOptions: () => FacetOptions | Promise<FacetOptions>) => {
    let p = started.get(name);
    if (!p) {
      p = (async () => {
        if (await cap(control, "facetStart", [name, null])) return;
        const o = await getOptions();
        if (typeof o !== "object" || o === null) throw new TypeError("facets.get()'s callback must return { code?, className?, env? }.");
        await cap(control, "facetStart", [name, { code: o.code, className: o.className, env: facetEnv(o.env) }]);
      })();
      started.set(name, p);
      p.catch(() => started.delete(name));
    }
    return p;
  };
  return Object.freeze({
    get(name: string, getOptions: () => FacetOptions | Promise<FacetOptions>) {
      name = String(name);
      if (typeof getOptions !== "function") throw new TypeError("facets.get(name, callback): the callback gives the facet's code.");
      return rpcStub(
        async (method, args) => { await ensure(name, getOptions); return cap(control, "facetCall", [name, method, args]); },
        async (input, init) => { await ensure(name, getOptions); return fetchVia(control, input, init, "facetFetch", [name]); },
      );
    },
    abort(name: string, reason?: unknown) {
      started.delete(String(name));
      void cap(control, "facetAbort", [String(name), reason === undefined ? undefined : String((reason as Error)?.message ?? reason)]).catch(() => {});
    },
    async delete(name: string) {
      started.delete(String(name));
      await cap(control, "facetDelete", [String(name)]);
    },
    /** Not in Cloudflare's API: the names of this actor's facets (live or stored). */
    async list(): Promise<string[]> {
      return (await cap(control, "facetList", [])) as string[];
    },
  });
}

function makeState(a: ActorStart) {
  const facets = makeFacets(a.control);
  return Object.freeze({
    id: new DurableObjectId(a.id, a.name),
    storage: makeStorage(a.control),
    facets,
    waitUntil(p: Promise<unknown>) {
      waitUntil(p);
    },
    /** Holds every other call to this actor until `fn` settles (e.g. loading state in the constructor). */
    blockConcurrencyWhile<T>(fn: () => Promise<T> | T): Promise<T> {
      const run = Promise.resolve().then(fn);
      const g = run.then(() => {}, () => {});
      gate = g;
      void g.then(() => {
        if (gate !== g) return;
        gate = undefined;
        releaseNext();
      });
      return run;
    },
    /** For sub-agents: the actor that hosts this one as a facet (mayfly:agents' parentAgent()). */
    [Symbol.for("mayfly.parent")]: () => rpcStub(
      (method, args) => cap(a.control, "parentCall", [method, args]),
      (input, init) => fetchVia(a.control, input, init, "parentFetch", []),
    ),
  });
}

// ----- namespaces in env -----

/** An actor namespace binding (Cloudflare's DurableObjectNamespace). */
export function namespaceStub(id: number, namespace: string): object {
  const get = (actorId: unknown) => {
    if (!(actorId instanceof DurableObjectId)) throw new TypeError("get() takes an id from idFromName(), newUniqueId() or idFromString().");
    const hex = actorId.toString();
    const lead = [hex, actorId.name ?? null];
    return rpcStub(
      (method, args) => cap(id, "call", [...lead, method, args]),
      (input, init) => fetchVia(id, input, init, "fetch", lead),
      { id: actorId, name: actorId.name },
    );
  };
  const ns = {
    idFromName: (name: string) => new DurableObjectId(store<string>("idFromName", namespace, String(name)), String(name)),
    newUniqueId: () => new DurableObjectId(randomHex()),
    idFromString(hex: string) {
      if (!HEX64.test(String(hex))) throw new TypeError("Invalid Durable Object ID: must be 64 hex digits.");
      return new DurableObjectId(String(hex));
    },
    get,
    getByName: (name: string) => get(ns.idFromName(name)),
    jurisdiction: () => ns,
  };
  return Object.freeze(ns);
}
