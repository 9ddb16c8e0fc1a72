import { Worker } from "node:worker_threads";

/**
 * Runs guest-supplied patterns (glob, grep's regular expressions, diffs) on a worker thread with a
 * deadline. They come from guests and can cost exponential time ("{a,b}" × 20, `(a+)+$`); run on the
 * host's own thread, each call held every other tenant's requests for up to its timeout. Here a call
 * past its deadline terminates the thread (the only way to stop a regular expression mid-match) and a
 * new one starts for the next call. One thread per process; calls take turns, so a timeout only ever
 * ends the call that caused it.
 */
export class Matcher {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private turn: Promise<unknown> = Promise.resolve();

  /** Runs `work` alone on the thread; `ask` sends one request, and every request shares one deadline. */
  session<T>(timeoutMs: number, work: (ask: (req: object) => Promise<unknown>) => Promise<T>): Promise<T> {
    const run = this.turn.then(() => this.withDeadline(timeoutMs, work));
    this.turn = run.catch(() => {});
    return run;
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private async withDeadline<T>(timeoutMs: number, work: (ask: (req: object) => Promise<unknown>) => Promise<T>): Promise<T> {
    const worker = this.thread();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The thread may be inside a catastrophic match: only terminating it stops that.
        this.reset(new MatcherTimeout());
        reject(new MatcherTimeout());
      }, timeoutMs);
    });
    const ask = (req: object) => new Promise<unknown>((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
    try {
      return await Promise.race([work(ask), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    const worker = new Worker(new URL(`./matcher-worker${ext}`, import.meta.url));
    worker.on("message", (m: { id: number; ok: boolean; value?: unknown; message?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new MatcherError(m.message ?? "failed"));
    });
    worker.on("error", (e) => this.reset(e));
    worker.on("exit", () => {
      if (this.worker === worker) this.reset(new Error("the matcher thread exited"));
    });
    // An idle matcher thread must not keep the host process alive (after the listeners: adding a
    // "message" listener refs the worker's port again).
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private reset(reason: Error): void {
    const worker = this.worker;
    this.worker = undefined;
    for (const w of this.waiting.values()) w.reject(reason);
    this.waiting.clear();
    void worker?.terminate();
  }
}

/** A call ran past its deadline (and its thread was ended). */
export class MatcherTimeout extends Error {}
/** The thread refused the request (an invalid regular expression, say); the message says why. */
export class MatcherError extends Error {}

/** The process's matcher, shared by every workspace. */
export const matcher = new Matcher();
