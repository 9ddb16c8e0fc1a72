import { readdirSync, readFileSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/**
 * Puts the executor's main thread ahead of the threads that run guest code, where the OS allows it.
 * The main thread enforces every limit (the watchdog's tick), answers the host and prepares isolates;
 * at equal priority it waited for a core behind runaway loops, so runaways ran past their tick and a
 * benign tenant's requests waited behind them. Guest threads must not go below normal priority
 * instead: isolated-vm counts a running stretch of guest code by the wall clock, so a guest thread
 * starved by other processes would be charged CPU it never had.
 *
 * Raising a thread's priority (a negative nice) needs CAP_SYS_NICE; without it this does nothing.
 * Threads the main thread starts inherit its priority, so every other thread of the process is kept
 * at the nice value the process started with (isolated-vm starts pool threads as it needs them).
 * Linux only (per-thread nice through /proc and setpriority(2) on a thread id).
 */
export class MainThreadPriority {
  private readonly seen = new Set<number>();
  private readonly base = getPriority();
  /** Whether the OS allowed the raise. */
  raised = false;

  /** Raises the main thread by `boost` nice steps (0 does nothing), then keeps new threads at the base. */
  start(boost: number, intervalMs: number): void {
    if (process.platform !== "linux" || boost <= 0) return;
    try {
      setPriority(Math.max(-20, this.base - boost));
      this.raised = true;
    } catch {
      return; // no CAP_SYS_NICE: everything stays at one priority
    }
    this.sweep();
    setInterval(() => this.sweep(), intervalMs).unref();
  }

  /** Puts every thread started since the last sweep back to the process's own priority. */
  sweep(): void {
    let tids: string[];
    try {
      tids = readdirSync("/proc/self/task");
    } catch {
      return;
    }
    const live = new Set<number>();
    for (const name of tids) {
      const tid = Number(name);
      live.add(tid);
      if (tid === process.pid || this.seen.has(tid)) continue;
      this.seen.add(tid);
      if (niceOf(tid) === this.base) continue;
      try {
        setPriority(tid, this.base);
      } catch {
        // The thread ended in between.
      }
    }
    for (const tid of this.seen) if (!live.has(tid)) this.seen.delete(tid);
  }
}

function niceOf(tid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  } catch {
    return undefined;
  }
}
