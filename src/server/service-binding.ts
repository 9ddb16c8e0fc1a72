/**
 * Service bindings between named workers (`"services": { "AUTH": "auth" }` in the config): the binding
 * is another named worker's entrypoint, fetch and RPC, looked up when called (so a --watch reload is
 * seen) and run as that worker runs at /w/<name>: a fresh isolate per call, or its warm instance.
 */
import { BINDING, fetcherCapability, type Bindable, type Capability } from "../bindings/capability.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { WorkerStub } from "../loader/worker-stub.ts";
import { disposeAfterBody } from "./dispose-after-body.ts";
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

type Entry = { fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> } & Record<string, (...args: unknown[]) => Promise<unknown>>;

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
    const open = (): { stub: WorkerStub; fresh: boolean } => {
      const worker = this.context.resolve(target);
      if (!worker) throw new TypeError(`No worker named "${target}" is served.`);
      const loader = this.context.loader();
      return worker.warm ? { stub: loader.get(worker.id, () => worker.code), fresh: false } : { stub: loader.load(worker.code), fresh: true };
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
    const entry = (stub: WorkerStub) => stub.getEntrypoint(this.entrypoint) as unknown as Entry;
    const fetchable = {
      fetch: (request: Request): Promise<Response> => counted(async () => {
        const { stub, fresh } = open();
        try {
          const res = await entry(stub).fetch(request);
          return fresh ? disposeAfterBody(res, () => stub.dispose()) : res;
        } catch (e) {
          if (fresh) stub.dispose();
          throw e;
        }
      }),
    };
    const rpcTarget = new Proxy({}, {
      get: (_t, method) => (typeof method !== "string" ? undefined : (...args: unknown[]) => counted(async () => {
        const { stub, fresh } = open();
        try {
          return await entry(stub)[method]!(...args);
        } finally {
          if (fresh) stub.dispose();
        }
      })),
    });
    return fetcherCapability(fetchable, `service ${this.target}`, "service", rpcTarget);
  }
}
