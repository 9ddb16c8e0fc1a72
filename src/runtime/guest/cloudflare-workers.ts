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
  const exports = Object.freeze({ WorkerEntrypoint, DurableObject, WorkflowEntrypoint, RpcTarget, env });
  Object.defineProperty(globalThis, Symbol.for(CLOUDFLARE_WORKERS_KEY), { value: exports });
}
