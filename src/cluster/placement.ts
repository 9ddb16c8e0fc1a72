/**
 * Actors with exactly one owner across hosts (ActorPlacement for cluster mode). An actor runs on the
 * host holding its lease `actor:<namespace>:<id>`; a host that takes the lease rebuilds the actor's
 * SQLite file from the shared log, and every write the owner commits is appended to that log under
 * the lease's fencing token before the call that made it returns (the output gate). Other hosts
 * forward calls to the owner; when the owner is gone (connection refused) they retry until its lease
 * expires and one of them takes it over.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import type { ActorLogEntry, ActorPlacement, ActorTarget, Placed, PlacedNamespace } from "../actors/placement.ts";
import { ActorUnreachableError, NotOwnerError } from "../errors.ts";
import { appendEntries, materialize } from "../bindings/storage/replicated-sqlite.ts";
import { Leases } from "./leases.ts";
import { fetchOp, notDelivered, runOp, sendOp, type ForwardOp } from "./forward.ts";
import { ClusterAlarms } from "./alarms.ts";
import type { ActorAlarms, FireAlarm } from "../actors/alarms.ts";

export interface PlacementOptions {
  backend: PostgresBackend;
  hostId: string;
  owner: string;
  /** This host's own address: a lease naming it is this host's (a restart under the same id). */
  address: string;
  secret: string;
  leaseMs: number;
  log?: Logger;
}

/** The actor's file here and how far it is in the log, under the token it was rebuilt with. */
interface Local {
  path: string;
  version: number;
  token: bigint;
  /** Entries waiting for the append in flight to finish: they go together in the next one (group commit). */
  queue: { entries: ActorLogEntry[]; done: (e?: Error) => void }[];
  appending: boolean;
  /** Set once an append failed: every later one fails too (the file here is ahead of the log). */
  failed?: Error;
  /** Changesets appended since the last image (by this owner): past COMPACT_AFTER the guest sends the whole file. */
  sinceImage: number;
}

/** A rebuild replays at most about this many changesets: then the owner writes the whole file, and the log before it is deleted. */
const COMPACT_AFTER = 256;

type Claim = { local: true; path: string } | { local: false; address: string };

const leaseName = (namespace: string, hex: string) => `actor:${namespace}:${hex}`;

export class ClusterPlacement implements ActorPlacement {
  readonly leases: Leases;
  readonly #alarms: ClusterAlarms;
  readonly #o: PlacementOptions;
  readonly #namespaces = new Map<string, PlacedNamespace>();
  readonly #dirs = new Map<string, string>();
  readonly #local = new Map<string, Local>();
  readonly #owners = new Map<string, { address: string; until: number }>();
  readonly #claims = new Map<string, Promise<Claim>>();

  constructor(options: PlacementOptions) {
    this.#o = options;
    this.#alarms = new ClusterAlarms(options.backend);
    this.leases = new Leases({ backend: options.backend, hostId: options.hostId, owner: options.owner, leaseMs: options.leaseMs, onLost: (name) => this.#lost(name) });
  }

  attach(namespace: string, handler: PlacedNamespace): void {
    this.#namespaces.set(namespace, handler);
  }

  detach(namespace: string): void {
    this.#namespaces.delete(namespace);
  }

  alarms(namespace: string, fire: FireAlarm): ActorAlarms {
    return this.#alarms.forNamespace(namespace, fire);
  }

  namespace(name: string): PlacedNamespace | undefined {
    return this.#namespaces.get(name);
  }

  holds(namespace: string, hex: string): string | undefined {
    const name = leaseName(namespace, hex);
    const token = this.leases.holds(name);
    const local = this.#local.get(name);
    return token !== undefined && local?.token === token ? local.path : undefined;
  }

  async place(namespace: string, hex: string, dir: string, forwarded: boolean, actorName?: string): Promise<Placed> {
    this.#dirs.set(namespace, dir);
    const where = await this.#claim(namespace, hex);
    if (where.local) return { local: true, storagePath: where.path };
    if (forwarded) throw new NotOwnerError(`This host does not own actor ${hex}.`);
    return { local: false, remote: this.#remote(namespace, hex, actorName, where.address) };
  }

  async replicate(namespace: string, hex: string, entries: ActorLogEntry[]): Promise<{ compact?: boolean } | void> {
    const name = leaseName(namespace, hex);
    const local = this.#local.get(name);
    if (!local) throw new NotOwnerError(`This host does not own actor ${hex}.`);
    if (local.failed) throw local.failed;
    await new Promise<void>((resolve, reject) => {
      local.queue.push({ entries, done: (e) => (e ? reject(e) : resolve()) });
      if (!local.appending) void this.#flush(name, local);
    });
    local.sinceImage = entries.some((e) => e.kind === "image") ? 0 : local.sinceImage + entries.length;
    if (local.sinceImage >= COMPACT_AFTER) return { compact: true };
  }

  /** Appends what is queued, in arrival order, one transaction per batch, until the queue is empty. */
  async #flush(name: string, local: Local): Promise<void> {
    local.appending = true;
    while (local.queue.length) {
      const batch = local.queue.splice(0);
      try {
        const entries = batch.flatMap((b) => b.entries).map((e) => ({ kind: e.kind, bytes: e.data }));
        const base = local.version;
        local.version = await appendEntries(this.#o.backend, name, base, entries, { lease: name, token: local.token });
        for (const b of batch) b.done();
        // An image supersedes every entry before it (compaction, as compactLog does); best-effort, off the gate.
        const image = entries.findLastIndex((e) => e.kind === "image");
        if (image >= 0) void this.#o.backend.query("DELETE FROM mayfly_sqlite_log WHERE db = $1 AND version < $2", [name, base + image + 1]).catch(() => {});
      } catch (e) {
        // The file here is ahead of the log, or another host owns the actor now: rebuild before serving again.
        local.failed = e as Error;
        if (this.#local.get(name) === local) this.#local.delete(name);
        this.leases.forget(name);
        this.#o.log?.warn({ actor: name, err: (e as Error).message }, "actor writes not made durable; the actor is rebuilt before it serves again");
        for (const b of [...batch, ...local.queue.splice(0)]) b.done(e as Error);
      }
    }
    local.appending = false;
  }

  release(namespace: string, hex: string): void {
    void this.leases.release(leaseName(namespace, hex));
  }

  /** Drain: every lease this host holds is released (its actors' instances already ended). */
  async releaseAll(): Promise<void> {
    await this.leases.releaseAll();
  }

  stop(): void {
    this.#alarms.stop();
    this.leases.stop();
  }

  /** Takes the actor (rebuilding its file if the lease changed hands) or finds its owner; one claim per actor at a time. */
  #claim(namespace: string, hex: string): Promise<Claim> {
    const name = leaseName(namespace, hex);
    let claim = this.#claims.get(name);
    if (!claim) {
      claim = this.#doClaim(namespace, hex, name).finally(() => this.#claims.delete(name));
      this.#claims.set(name, claim);
    }
    return claim;
  }

  async #doClaim(namespace: string, hex: string, name: string): Promise<Claim> {
    const cached = this.#owners.get(name);
    if (cached && cached.until > Date.now()) return { local: false, address: cached.address };
    const deadline = Date.now() + this.#o.leaseMs * 2;
    for (;;) {
      const got = await this.leases.acquire(name);
      if (got.held) {
        this.#owners.delete(name);
        const local = this.#local.get(name);
        if (local && local.token === got.token) return { local: true, path: local.path };
        return { local: true, path: await this.#rebuild(namespace, hex, name, got.token) };
      }
      if (got.address && got.address !== this.#o.address) {
        this.#owners.set(name, { address: got.address, until: Date.now() + Math.min(got.remainingMs, this.#o.leaseMs) });
        return { local: false, address: got.address };
      }
      // No owner row (released meanwhile) or an owner with no known address: ask again shortly.
      if (Date.now() > deadline) throw new ActorUnreachableError(`Actor ${hex}: its owner ${got.owner} has no address and its lease did not expire.`);
      await sleep(Math.min(250, Math.max(20, got.remainingMs)));
    }
  }

  /** A fresh file for the actor from the shared log (a new name: an old instance may still hold the previous one open). */
  async #rebuild(namespace: string, hex: string, name: string, token: bigint): Promise<string> {
    this.#namespaces.get(namespace)?.lost(hex);
    this.#local.delete(name);
    const dir = this.#dirs.get(namespace)!;
    for (const f of safeList(dir)) if (f.startsWith(`${hex}`) && /\.sqlite(-wal|-shm|-journal)?$/.test(f)) rmSync(join(dir, f), { force: true });
    const path = join(dir, `${hex}-${randomBytes(4).toString("hex")}.sqlite`);
    const version = await materialize(this.#o.backend, name, path);
    this.#local.set(name, { path, version, token, queue: [], appending: false, sinceImage: 0 });
    this.#o.log?.info({ actor: name, token: String(token), version }, "actor placed here");
    return path;
  }

  #lost(name: string): void {
    this.#local.delete(name);
    const [, namespace, hex] = name.split(":");
    if (namespace !== undefined && hex !== undefined) this.#namespaces.get(namespace)?.lost(hex);
  }

  #remote(namespace: string, hex: string, actorName: string | undefined, address: string): ActorTarget {
    return {
      call: (method, args) => this.#forward(namespace, hex, actorName, address, { kind: "call", method, args }) as Promise<unknown>,
      fetch: async (request) => this.#forward(namespace, hex, actorName, address, await fetchOp(request)) as Promise<Response>,
    };
  }

  /**
   * Sends `op` to the owner; when it certainly did not run there (refused: the owner is gone or no
   * longer owns it), asks again where the actor is, which takes the lease over once it expires.
   */
  async #forward(namespace: string, hex: string, actorName: string | undefined, address: string, op: ForwardOp): Promise<unknown> {
    const name = leaseName(namespace, hex);
    const deadline = Date.now() + this.#o.leaseMs * 2 + 5_000;
    let to = address;
    for (let attempt = 0; ; attempt++) {
      try {
        return await sendOp(to, this.#o.secret, namespace, hex, actorName, op);
      } catch (e) {
        if (!notDelivered(e)) throw e;
        if (Date.now() > deadline) throw new ActorUnreachableError(`Actor ${hex}: its owner at ${to} did not answer and its lease was not taken over in time.`, { cause: e });
      }
      this.#owners.delete(name);
      await sleep(Math.min(50 * 2 ** attempt, 500));
      const where = await this.#claim(namespace, hex);
      if (where.local) {
        const handler = this.#namespaces.get(namespace);
        if (!handler) throw new NotOwnerError("The actor namespace was closed.");
        return runOp(await handler.localTarget(hex, actorName), op);
      }
      to = where.address;
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
