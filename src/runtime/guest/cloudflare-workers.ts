/**
 * The classes of `import { ... } from "cloudflare:workers"`, so entrypoints written for Cloudflare
 * (`this.env`, `this.ctx`) run unchanged. The module itself is synthesized by the executor and reads
 * these from a registry symbol: they are plain public classes, nothing privileged.
 */
export class WorkerEntrypoint<Env = unknown> {
  readonly ctx: ExecutionContext;
  readonly env: Env;
  constructor(ctx: ExecutionContext, env: Env) {
    this.ctx = ctx;
    this.env = env;
  }
}

export class DurableObject<Env = unknown> {
  readonly ctx: unknown;
  readonly env: Env;
  constructor(ctx: unknown, env: Env) {
    this.ctx = ctx;
    this.env = env;
  }
}

type Stub = Record<string, (...args: unknown[]) => Promise<unknown>>;
interface Facets {
  get(name: string, getOptions: () => unknown): Stub;
  abort(name: string, reason?: unknown): void;
  delete(name: string): Promise<void>;
  list(): Promise<string[]>;
}

/**
 * Sub-agents (import { Agent } from "mayfly:agents"): an actor hosting actors of its own worker's
 * classes as facets, each with its own storage, reached by RPC. A thin layer on ctx.facets.
 */
export class Agent<Env = unknown> extends DurableObject<Env> {
  #facets(): Facets {
    return (this.ctx as { facets: Facets }).facets;
  }

  /** The child `name`, an instance of `cls` (a class exported by this worker; default: this agent's own class). */
  subAgent(clsOrName: string | (new (...a: never[]) => unknown), name?: string): Stub {
    const className = typeof clsOrName === "function" ? clsOrName.name : this.constructor.name;
    const childName = typeof clsOrName === "function" ? String(name) : String(clsOrName);
    if (typeof clsOrName === "function" && name === undefined) throw new TypeError("subAgent(Class, name) needs a name.");
    return this.#facets().get(childName, () => ({ className }));
  }

  /** The names of this agent's sub-agents, running or stored. */
  listSubAgents(): Promise<string[]> {
    return this.#facets().list();
  }

  /** Ends the sub-agent's isolate: its calls in flight fail with ActorAbortedError; its storage stays. */
  abortSubAgent(name: string, reason?: unknown): void {
    this.#facets().abort(name, reason);
  }

  /** Ends the sub-agent and deletes its storage. */
  deleteSubAgent(name: string): Promise<void> {
    return this.#facets().delete(name);
  }

  /** The agent hosting this one (RPC and fetch); only a sub-agent has one. */
  parentAgent(): Stub {
    const parent = (this.ctx as Record<symbol, (() => Stub) | undefined>)[Symbol.for("mayfly.parent")];
    if (!parent) throw new TypeError("parentAgent(): this agent is not a durable actor.");
    return parent();
  }
}

export class WorkflowEntrypoint<Env = unknown> extends WorkerEntrypoint<Env> {}

/** Marks a class whose instances may be returned over RPC by reference (not yet passed by stub). */
export class RpcTarget {}

export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  readonly props: unknown;
}

export const CLOUDFLARE_WORKERS_KEY = "mayfly.cloudflare:workers";

export function installCloudflareWorkers(env: unknown): void {
  const exports = Object.freeze({ WorkerEntrypoint, DurableObject, WorkflowEntrypoint, RpcTarget, Agent, env });
  Object.defineProperty(globalThis, Symbol.for(CLOUDFLARE_WORKERS_KEY), { value: exports });
}
