import { ExecutorProcess, type ExecutorLaunch } from "./executor-process.ts";
import { ExecutorCrashedError, WorkerDisposedError } from "../errors.ts";

export interface SupervisorOptions {
  executors: number;
  launch: ExecutorLaunch;
  /** Recycle an executor after it has started this many worker instances. */
  recycleAfterInstances: number;
  /** Recycle an executor whose RSS passes this many bytes. */
  recycleRssBytes: number;
}

/**
 * Keeps N executor processes alive: replaces one that dies, and recycles one that has served enough
 * isolates or grown too large (isolated-vm leaks ~0.8 KB per isolate, and freed isolate memory is not
 * returned to the OS) by draining it — no new work, in-flight calls finish — before it is stopped.
 */
export class Supervisor {
  private readonly procs = new Set<ExecutorProcess>();
  private closed = false;
  private waiters: (() => void)[] = [];
  private turn = 0;
  private startupFailures = 0;
  private broken: string | undefined;
  restarts = 0;
  recycles = 0;
  /** Set when an executor died while starting with the snapshot; later ones evaluate the runtime. */
  snapshotDisabled = false;

  private readonly opts: SupervisorOptions;

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    for (let i = 0; i < opts.executors; i++) this.spawn();
  }

  /** Resolves when every executor has started (its pool warm). */
  async ready(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.ready.catch(() => {})));
  }

  /** The usable executor with the fewest calls in flight; waits for one if all are (re)starting. */
  async pick(): Promise<ExecutorProcess> {
    for (;;) {
      if (this.closed) throw new WorkerDisposedError("The WorkerLoader was closed.");
      if (this.broken && this.procs.size === 0) throw new ExecutorCrashedError(this.broken);
      // Fewest in flight, then the one done refilling its pool soonest (creating an isolate blocks an
      // executor for ~4 ms); remaining ties go round-robin.
      let best: ExecutorProcess | undefined;
      const order = [...this.procs];
      const now = performance.now();
      const wait = (p: ExecutorProcess) => Math.max(0, p.busyUntil - now);
      for (let i = 0; i < order.length; i++) {
        const p = order[(this.turn + i) % order.length]!;
        if (!p.usable) continue;
        if (!best || p.inFlight < best.inFlight || (p.inFlight === best.inFlight && wait(p) < wait(best))) best = p;
      }
      this.turn++;
      if (best) {
        await best.ready;
        return best;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Called after each call completes on `proc`: recycles or finishes draining it. */
  afterCall(proc: ExecutorProcess): void {
    if (!proc.draining && !proc.dead &&
        (proc.mustRecycle || proc.instancesStarted >= this.opts.recycleAfterInstances || proc.rssBytes > this.opts.recycleRssBytes)) {
      proc.draining = true;
      this.recycles++;
      this.spawn();
    }
    if (proc.draining && proc.inFlight === 0 && !proc.dead) {
      this.procs.delete(proc);
      proc.kill("SIGTERM");
    }
  }

  executors(): ExecutorProcess[] {
    return [...this.procs];
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.procs].map((p) => new Promise<void>((r) => (p.dead ? r() : p.child.once("exit", () => r()))));
    for (const p of this.procs) p.kill("SIGKILL");
    this.procs.clear();
    for (const w of this.waiters.splice(0)) w();
    await Promise.all(exits);
  }

  private spawn(): void {
    if (this.closed) return;
    const proc = new ExecutorProcess(this.opts.launch);
    proc.onSettled = (p) => this.afterCall(p);
    let started = false;
    proc.onExit = (p) => {
      if (!started && this.opts.launch.config.snapshot) {
        // V8 can abort while restoring a snapshot, which no in-process self-test can catch: an executor
        // that dies before it is ready makes every later one evaluate the runtime instead.
        this.opts.launch.config.snapshot = false;
        this.snapshotDisabled = true;
      }
      const wasServing = this.procs.delete(p);
      if (!wasServing || p.draining || this.closed) return;
      this.restarts++;
      if (started) {
        this.startupFailures = 0;
        this.spawn();
        return;
      }
      // Died before it was ready: retry with backoff, and give up (failing waiting calls) after a few.
      this.startupFailures++;
      if (this.startupFailures >= 5) {
        this.broken = `executor processes cannot start (${this.startupFailures} attempts died during startup)`;
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      setTimeout(() => this.spawn(), 50 * 2 ** this.startupFailures).unref();
    };
    this.procs.add(proc);
    void proc.ready.then(() => {
      started = true;
      for (const w of this.waiters.splice(0)) w();
    }, () => {});
    for (const w of this.waiters.splice(0)) w();
  }
}
