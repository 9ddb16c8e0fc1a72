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

export interface ServiceContext {
  loader(): WorkerLoader;
  /** The served worker of that name now. */
  resolve(name: string): NamedWorker | undefined;
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
    const open = (): { stub: WorkerStub; fresh: boolean } => {
      const worker = this.context.resolve(this.target);
      if (!worker) throw new TypeError(`No worker named "${this.target}" is served.`);
      const loader = this.context.loader();
      return worker.warm ? { stub: loader.get(worker.id, () => worker.code), fresh: false } : { stub: loader.load(worker.code), fresh: true };
    };
    const entry = (stub: WorkerStub) => stub.getEntrypoint(this.entrypoint) as unknown as Entry;
    const fetchable = {
      fetch: async (request: Request): Promise<Response> => {
        const { stub, fresh } = open();
        try {
          const res = await entry(stub).fetch(request);
          return fresh ? disposeAfterBody(res, () => stub.dispose()) : res;
        } catch (e) {
          if (fresh) stub.dispose();
          throw e;
        }
      },
    };
    const rpcTarget = new Proxy({}, {
      get: (_t, method) => (typeof method !== "string" ? undefined : async (...args: unknown[]) => {
        const { stub, fresh } = open();
        try {
          return await entry(stub)[method]!(...args);
        } finally {
          if (fresh) stub.dispose();
        }
      }),
    });
    return fetcherCapability(fetchable, `service ${this.target}`, "service", rpcTarget);
  }
}
