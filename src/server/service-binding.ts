/**
 * Service bindings between named workers (`"services": { "AUTH": "auth" }` in the config): the binding
 * is another named worker's entrypoint, fetch and RPC, looked up when called (so a --watch reload is
 * seen) and run as that worker runs at /w/<name>: a fresh isolate per call, or its warm instance.
 */
import { BINDING, fetcherCapability, type Bindable, type Capability } from "../bindings/capability.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import { callRun, fetchRun } from "./worker-runs.ts";
import type { NamedWorker } from "./named-workers.ts";

/**
 * Calls in flight to one named worker through its service bindings. A worker that calls itself (or a
 * cycle of them) would otherwise stack fresh isolates until memory ran out; a chain holds all its calls
 * in flight, so it meets this cap and unwinds with a clear error.
 */
export const MAX_SERVICE_CALLS_IN_FLIGHT = 128;

export interface ServiceContext {
  loader(): WorkerLoader;
  /** The served worker of that name now. */
  resolve(name: string): NamedWorker | undefined;
  /** Calls in flight per target worker (kept here, shared by every binding of one server). */
  inFlight?: Map<string, number>;
}


export class NamedServiceBinding implements Bindable {
  private readonly context: ServiceContext;
  private readonly target: string;
  private readonly entrypoint: string | undefined;

  constructor(context: ServiceContext, target: string, entrypoint?: string) {
    this.context = context;
    this.target = target;
    this.entrypoint = entrypoint;
  }

  [BINDING](): Capability {
    const target = this.target;
    const inFlight = (this.context.inFlight ??= new Map<string, number>());
    const served = (): NamedWorker => {
      const worker = this.context.resolve(target);
      if (!worker) throw new TypeError(`No worker named "${target}" is served.`);
      return worker;
    };
    /** Counts the call against the target's in-flight cap for as long as `work` runs. */
    const counted = async <T>(work: () => Promise<T>): Promise<T> => {
      const n = inFlight.get(target) ?? 0;
      if (n >= MAX_SERVICE_CALLS_IN_FLIGHT) {
        throw Object.assign(new Error(`Too many calls in flight to the worker "${target}" (${MAX_SERVICE_CALLS_IN_FLIGHT}); do its service bindings call it back?`), { name: "RangeError" });
      }
      inFlight.set(target, n + 1);
      try {
        return await work();
      } finally {
        inFlight.set(target, (inFlight.get(target) ?? 1) - 1);
      }
    };
    const fetchable = {
      fetch: (request: Request) => counted(() => fetchRun(this.context.loader(), served(), request, undefined, this.entrypoint)),
    };
    const rpcTarget = new Proxy({}, {
      get: (_t, method) => (typeof method !== "string" ? undefined
        : (...args: unknown[]) => counted(() => callRun(this.context.loader(), served(), this.entrypoint, method, args))),
    });
    return fetcherCapability(fetchable, `service ${this.target}`, "service", rpcTarget);
  }
}
