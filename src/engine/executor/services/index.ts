/**
 * Host services: narrow, copy-only helpers the guest runtime may call in the executor (timers, URL
 * parsing, crypto, structured clone). Values cross by copy; what a service keeps for an isolate (a
 * timer, a CryptoKey) lives in that isolate's ServiceState and is named by numbers that mean nothing
 * elsewhere, so no host object ever becomes reachable from the guest.
 *
 * Every result is an Envelope: services never throw or reject across the boundary (isolated-vm #314).
 */
import { timers } from "./timers.ts";
import { structuredCloneService } from "./structured-clone.ts";
import { random } from "./random.ts";
import { url } from "./url.ts";
import { body } from "./body.ts";
import { runtimeModules } from "./runtime-modules.ts";
import { capabilities } from "./capabilities.ts";
import { subtleService } from "./subtle.ts";
import { encodingService } from "./encoding.ts";
import { actorStorage } from "./actor-storage.ts";

export type Envelope = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string } };

/** What a service may keep for one isolate; dropped with the isolate. */
export interface ServiceState {
  /** Per-service storage, keyed by service name. */
  store: Map<string, unknown>;
  /** Cancels the async task of a ticket (a timer); set by the task itself. */
  cancels: Map<number, () => void>;
}

export type SyncOp = (state: ServiceState, ...args: any[]) => unknown;
export type AsyncOp = (state: ServiceState, ticket: number, ...args: any[]) => Promise<unknown>;

export interface Service {
  sync?: Record<string, SyncOp>;
  async?: Record<string, AsyncOp>;
}

/** The registry. A service is added here and nowhere else. */
export const SERVICES: Record<string, Service> = {
  timers,
  structuredClone: structuredCloneService,
  random,
  url,
  body,
  runtime: runtimeModules,
  cap: capabilities,
  subtle: subtleService,
  encoding: encodingService,
  actor: actorStorage,
};

/** The services of one isolate: dispatches guest calls, tracks async tasks, cancels them on demand. */
export class IsolateServices {
  private readonly state: ServiceState = { store: new Map(), cancels: new Map() };
  private closed = false;
  /** Delivers an async task's envelope into the isolate; set once the runtime handle exists. */
  deliver: (ticket: number, envelope: Envelope) => void = () => {};
  private readonly registry: Record<string, Service>;

  constructor(registry: Record<string, Service> = SERVICES) {
    this.registry = registry;
  }

  /** Identifies this isolate to executor-wide resources (body streams) without exposing anything. */
  get token(): object {
    return this.state;
  }

  call(service: string, op: string, args: unknown[]): Envelope {
    const fn = Object.hasOwn(this.registry, service) ? this.registry[service]!.sync?.[op] : undefined;
    if (!fn || !Object.hasOwn(this.registry[service]!.sync!, op)) return unknownOp(service, op);
    try {
      return { ok: true, value: fn(this.state, ...(Array.isArray(args) ? args : [])) };
    } catch (e) {
      return failure(e);
    }
  }

  /** Starts an async task; its envelope arrives later through `deliver`. */
  start(service: string, op: string, args: unknown[], ticket: number): Envelope {
    const fn = Object.hasOwn(this.registry, service) ? this.registry[service]!.async?.[op] : undefined;
    if (!fn || !Object.hasOwn(this.registry[service]!.async!, op)) return unknownOp(service, op);
    if (this.closed) return { ok: false, error: { name: "InvalidStateError", message: "The worker's run has ended." } };
    let promise: Promise<unknown>;
    try {
      promise = fn(this.state, ticket, ...(Array.isArray(args) ? args : []));
    } catch (e) {
      return failure(e);
    }
    promise.then(
      (value) => this.settle(ticket, { ok: true, value }),
      (e) => this.settle(ticket, failure(e)),
    );
    return { ok: true, value: undefined };
  }

  /** Cancels every pending task (timers): nothing scheduled by a run fires after it ends. */
  cancelAll(): void {
    for (const cancel of this.state.cancels.values()) cancel();
    this.state.cancels.clear();
  }

  close(): void {
    this.closed = true;
    this.cancelAll();
    // What a service opened for this isolate (an actor's SQLite file) closes with it.
    for (const v of this.state.store.values()) {
      if (typeof v === "object" && v !== null && Symbol.dispose in v) (v as Disposable)[Symbol.dispose]();
    }
    this.state.store.clear();
  }

  private settle(ticket: number, envelope: Envelope): void {
    this.state.cancels.delete(ticket);
    if (!this.closed) this.deliver(ticket, envelope);
  }
}

function unknownOp(service: string, op: string): Envelope {
  return { ok: false, error: { name: "TypeError", message: `Unknown host service operation ${service}.${op}` } };
}

/** Only name and message cross: no host stack, no host paths. */
export function failure(e: unknown): Envelope {
  const err = e as { name?: unknown; message?: unknown };
  return { ok: false, error: { name: typeof err?.name === "string" ? err.name : "Error", message: typeof err?.message === "string" ? err.message : String(e) } };
}
