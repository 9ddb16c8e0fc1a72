import type { Limits } from "../limits.ts";
import { RunEnded, type WorkerInstance } from "./worker-instance.ts";

interface Watched {
  instance: WorkerInstance;
  cpuStart: bigint;
  limits: Limits;
  wallTimer: NodeJS.Timeout;
}

/**
 * Enforces CPU and wall time from outside the isolate. isolated-vm's own `timeout` counts wall time
 * and misses microtask loops, so CPU is read from `isolate.cpuTime`, which advances while the guest
 * runs on its thread, whatever it is doing; a breach disposes the isolate.
 */
export class Watchdog {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  private readonly intervalMs: number;

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  /** Starts watching; the returned function stops it and gives the CPU ms used (`peek` reads it live). */
  watch(instance: WorkerInstance, limits: Limits): (() => number) & { peek(): number } {
    const cpuStart = instance.isolate.cpuTime;
    const wallTimer = setTimeout(() => instance.end(new RunEnded("wallMs", `Worker exceeded wall-clock time limit of ${limits.wallMs} ms.`)), limits.wallMs);
    const w: Watched = { instance, cpuStart, limits, wallTimer };
    this.watched.add(w);
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
    const stop = () => {
      clearTimeout(wallTimer);
      this.watched.delete(w);
      if (this.watched.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      return cpuMs(instance, cpuStart);
    };
    return Object.assign(stop, { peek: () => cpuMs(instance, cpuStart) });
  }

  private tick(): void {
    for (const w of this.watched) {
      if (!w.instance.alive) continue;
      if (cpuMs(w.instance, w.cpuStart) > w.limits.cpuMs) {
        w.instance.end(new RunEnded("cpuMs", `Worker exceeded CPU time limit of ${w.limits.cpuMs} ms.`));
      }
    }
  }
}

function cpuMs(instance: WorkerInstance, since: bigint): number {
  try {
    return Number(instance.isolate.cpuTime - since) / 1e6;
  } catch {
    return 0; // disposed: the last reading is gone with it
  }
}
