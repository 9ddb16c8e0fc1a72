import { readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";

/**
 * Runs guest code below the executor's own thread in the kernel's eyes. isolated-vm runs isolates on
 * pool threads it starts from this process's main thread (they inherit its name, "MainThread"); the
 * main thread is the one that enforces CPU and wall limits (the watchdog's tick), answers the host and
 * makes isolates for the next requests. On a machine where runaways keep every core busy, a main
 * thread of equal priority waited tens of milliseconds for a core, so a runaway used up to 2× its
 * cpuMs before the tick could end it. With the guest threads at a higher nice value the main thread
 * preempts them as soon as it wakes. Raising a thread's nice value needs no privilege.
 *
 * Linux only (per-thread nice through /proc and setpriority(2) on a thread id); elsewhere a no-op.
 */
export class GuestThreadPriority {
  private readonly seen = new Set<number>();
  private readonly nice: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(nice: number) {
    this.nice = nice;
  }

  /** Lowers new guest threads now and then every `intervalMs` (isolated-vm starts more under load). */
  start(intervalMs: number): void {
    if (process.platform !== "linux" || this.nice <= 0) return;
    this.sweep();
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Lowers every thread started since the last sweep that runs isolates (named as the main thread). */
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
      if (threadName(tid) !== "MainThread") continue;
      try {
        setPriority(tid, this.nice);
      } catch {
        // The thread ended in between: nothing to lower.
      }
    }
    for (const tid of this.seen) if (!live.has(tid)) this.seen.delete(tid);
  }
}

function threadName(tid: number): string | undefined {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}
