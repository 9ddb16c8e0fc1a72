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

/** Ends a run when its HTTP client goes away; `onCancel` learns of it (metrics). */
export interface Cancel {
  signal: AbortSignal;
  onCancel?: () => void;
}

/**
 * One request to `worker` (its `entrypoint`, default the default export); a fresh isolate lives until the
 * body is done, or until `cancel.signal` aborts (the client disconnected), which ends it at once.
 */
export async function fetchRun(loader: WorkerLoader, worker: NamedWorker, input: RequestInfo | URL, init?: RequestInit, entrypoint?: string, cancel?: Cancel): Promise<Response> {
  const { stub, fresh } = open(loader, worker);
  // A warm instance serves other requests too: ending it for one client's disconnect would fail theirs,
  // so only a fresh isolate is cancelled (a warm run still ends at its wallMs).
  const detach = fresh && cancel ? onAbort(cancel.signal, () => { cancel.onCancel?.(); stub.dispose(); }) : () => {};
  const dispose = () => {
    detach();
    stub.dispose();
  };
  try {
    const res = await (stub.getEntrypoint(entrypoint) as unknown as Entry).fetch(input, init);
    if (fresh) return afterBody(res, dispose);
    detach();
    return res;
  } catch (e) {
    if (fresh) dispose();
    else detach();
    throw e;
  }
}

/** Calls `fn` once when `signal` aborts (now, if it already has); returns what stops listening. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
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

/** `onDone` runs once the response body has been read, has failed or was abandoned (at once without a body). */
export function afterBody(res: Response, onDone: () => void): Response {
  if (!res.body) {
    onDone();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          onDone();
        } else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        onDone();
      }
    },
    cancel(reason) {
      onDone();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
