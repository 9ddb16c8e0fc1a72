import type { Invocation } from "../runtime/index.ts";
import type { InstanceHandle } from "../engine/index.ts";
import type { DoneFrame } from "../engine/executor-process.ts";
import { BINDING, fetcherCapability, type Fetchable } from "../bindings/capability.ts";
import { deliverTails, tailEvent, type Tail } from "../bindings/tails/index.ts";
import type { Limits } from "../engine/limits.ts";
import type { NpmReport } from "../bundler/npm/index.ts";
import { WorkerDisposedError, remoteError } from "../errors.ts";
import { failureToError, outcomeOfThrown } from "./failures.ts";
import type { RunReport } from "./run-report.ts";
import { fromWireResponse, toWireRequest } from "./wire.ts";

/** What `getEntrypoint()` returns: `fetch()`, plus every other property as an RPC method. */
export type Fetcher<T extends object = Untyped> = {
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
} & (string extends keyof T ? Untyped : RpcMethods<T>);

/** An entrypoint whose methods the caller did not describe: any name, any arguments. */
export interface Untyped {
  [method: string]: any;
}

/** The methods of an entrypoint as seen by its caller: every call returns a promise. */
export type RpcMethods<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

export interface EntrypointOptions {
  /** Arrives in the guest as `ctx.props`. */
  props?: unknown;
}

/** Where a stub's instance comes from: resolved once its code is known (get() may fetch it lazily). */
export interface StubBacking {
  handle: InstanceHandle;
  limits: Limits;
  tails: readonly Tail[];
  /** What was bundled from npm for this worker, when its code had a packageJson. */
  npm?: NpmReport;
}

export interface StubHooks {
  workerId: string | undefined;
  onRun?: (report: RunReport) => void;
  onDispose?: () => void;
}

/**
 * A loaded worker (Cloudflare's WorkerStub). Its isolate starts with the first call and serves later
 * calls until disposed, idle too long, or ended by a limit (the next call then starts a fresh one).
 */
export class WorkerStub {
  #backing: Promise<StubBacking>;
  #hooks: StubHooks;
  #disposed = false;

  constructor(backing: Promise<StubBacking>, hooks: StubHooks) {
    this.#backing = backing;
    this.#backing.catch(() => {}); // reported to callers on use
    this.#hooks = hooks;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  getEntrypoint<T extends object = Untyped>(name?: string | null, options: EntrypointOptions = {}): Fetcher<T> {
    const entrypoint = name ?? null;
    const props = options.props;
    const target = {
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const { wire: request, body } = await toWireRequest(input, init);
        const value = await this.#invoke({ kind: "fetch", entrypoint, props, request }, body);
        return fromWireResponse(value as Parameters<typeof fromWireResponse>[0]);
      },
    };
    const proxy: Fetcher<T> = new Proxy(target, {
      get: (t, prop) => {
        if (prop === "fetch") return t.fetch;
        // Placed in another worker's env, an entrypoint is a service binding: fetch and RPC both cross.
        if (prop === BINDING) return () => fetcherCapability(proxy as unknown as Fetchable, "service binding", "service", proxy);
        // Not thenable: `await ep` must give the fetcher itself, as on Cloudflare.
        if (typeof prop !== "string" || prop === "then") return undefined;
        return (...args: unknown[]) => this.#invoke({ kind: "rpc", entrypoint, props, method: prop, args });
      },
    }) as unknown as Fetcher<T>;
    return proxy;
  }

  /**
   * What was bundled from npm (packages, versions, bytes, the lockfile to pin with), once the worker's
   * dependencies are ready; `undefined` for a worker without `packageJson`. Rejects with the load's
   * typed error (PackageIntegrityError, TypeCheckError, ...) as a call would.
   */
  async npmReport(): Promise<NpmReport | undefined> {
    return (await this.#backing).npm;
  }

  /** Frees the isolate now; later calls fail with WorkerDisposedError. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#backing.then((b) => b.handle.close(), () => {});
    this.#hooks.onDispose?.();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal Frees the isolate but keeps the stub usable (idle TTL). */
  _releaseIsolate(): void {
    this.#backing.then((b) => b.handle.release(), () => {});
  }

  async #invoke(inv: Invocation, requestBody?: ReadableStream<Uint8Array>): Promise<unknown> {
    if (this.#disposed) throw new WorkerDisposedError("This worker stub was disposed.");
    const { handle, limits, tails } = await this.#backing;
    const report: RunReport = {
      workerId: this.#hooks.workerId, entrypoint: inv.entrypoint, kind: inv.kind,
      method: inv.kind === "rpc" ? inv.method : undefined, outcome: "ok", logs: [], cpuMs: 0, wallMs: 0, memoryBytes: 0, subRequests: 0,
    };
    const started = performance.now();
    const startedAt = Date.now();
    const emit = () => {
      this.#hooks.onRun?.(report);
      if (tails.length) deliverTails(tails, tailEvent(report, startedAt));
    };
    let finish = emit;
    try {
      const result = await handle.call(inv, {
        requestBody,
        failureToError: (failure) => failureToError(failure, limits).error,
      });
      report.logs = result.logs;
      report.cpuMs = result.stats.cpuMs;
      report.wallMs = result.stats.wallMs;
      report.subRequests = result.stats.subRequests;
      report.memoryBytes = result.stats.heapBytes;
      if (result.done) finish = this.#reportWhenDone(report, result.done, limits, emit);
      if (result.failure) {
        const { error, outcome } = failureToError(result.failure, limits);
        report.outcome = outcome;
        throw error;
      }
      const outcome = result.outcome!;
      if (!outcome.ok) {
        report.outcome = "exception";
        throw remoteError(outcome.error);
      }
      return outcome.value;
    } catch (e) {
      if (report.outcome === "ok") report.outcome = outcomeOfThrown(e);
      if (!report.wallMs) report.wallMs = performance.now() - started;
      report.error = { name: (e as Error).name, message: (e as Error).message };
      throw e;
    } finally {
      finish();
    }
  }

  /** For a run that replied early: the report is completed, and delivered, once the run has ended. */
  #reportWhenDone(report: RunReport, done: Promise<DoneFrame>, limits: Limits, emit: () => void): () => void {
    return () => {
      done.then(
        (d) => {
          report.logs = [...report.logs, ...d.logs];
          report.cpuMs = d.stats.cpuMs;
          report.wallMs = d.stats.wallMs;
          report.subRequests = d.stats.subRequests;
          report.memoryBytes = d.stats.heapBytes;
          if (d.failure && report.outcome === "ok") {
            const { error, outcome } = failureToError(d.failure, limits);
            report.outcome = outcome;
            report.error = { name: error.name, message: error.message };
          }
        },
        (e: Error) => {
          if (report.outcome === "ok") report.outcome = outcomeOfThrown(e);
          report.error ??= { name: e.name, message: e.message };
        },
      ).finally(emit);
    };
  }
}
