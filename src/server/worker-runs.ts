/**
 * One run of a named worker, opened and closed as it is served: a fresh isolate per run (disposed once
 * its response body is done), or its warm instance kept by the loader.
 */
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { WorkerStub } from "../loader/worker-stub.ts";
import type { NamedWorker } from "./named-workers.ts";

type Entry = { fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> } & Record<string, (...args: unknown[]) => Promise<unknown>>;

/** A stub for one run: a fresh isolate (`fresh`: disposed when the run is over), or the warm instance. */
function open(loader: WorkerLoader, worker: NamedWorker): { stub: WorkerStub; fresh: boolean } {
  return worker.warm ? { stub: loader.get(worker.id, () => worker.code), fresh: false } : { stub: loader.load(worker.code), fresh: true };
}

/** One request to `worker` (its `entrypoint`, default the default export); a fresh isolate lives until the body is done. */
export async function fetchRun(loader: WorkerLoader, worker: NamedWorker, input: RequestInfo | URL, init?: RequestInit, entrypoint?: string): Promise<Response> {
  const { stub, fresh } = open(loader, worker);
  try {
    const res = await (stub.getEntrypoint(entrypoint) as unknown as Entry).fetch(input, init);
    return fresh ? disposeAfterBody(res, () => stub.dispose()) : res;
  } catch (e) {
    if (fresh) stub.dispose();
    throw e;
  }
}

/** One RPC (or event handler, such as scheduled) call to `worker`'s `entrypoint`. */
export async function callRun(loader: WorkerLoader, worker: NamedWorker, entrypoint: string | undefined, method: string, args: unknown[]): Promise<unknown> {
  const { stub, fresh } = open(loader, worker);
  try {
    return await (stub.getEntrypoint(entrypoint) as unknown as Entry)[method]!(...args);
  } finally {
    if (fresh) stub.dispose();
  }
}

/** The fresh isolate lives until its response body has been read or abandoned. */
function disposeAfterBody(res: Response, dispose: () => void): Response {
  if (!res.body) {
    dispose();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          dispose();
        } else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        dispose();
      }
    },
    cancel(reason) {
      dispose();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
