import type { Limits } from "../limits.ts";
import { RunEnded, type WorkerInstance } from "./worker-instance.ts";

interface Watched {
  instance: WorkerInstance;
  cpuStart: bigint;
  limits: Limits;
  wallTimer: NodeJS.Timeout;
  /** The last reading: what is reported once the isolate is disposed (a breach disposes it). */
  lastMs: number;
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
    const w: Watched = { instance, cpuStart, limits, wallTimer, lastMs: 0 };
    this.watched.add(w);
    this.timer ??= setInterval(() => this.tick(), this.intervalMs);
    const stop = () => {
      clearTimeout(wallTimer);
      this.watched.delete(w);
      if (this.watched.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      return read(w);
    };
    return Object.assign(stop, { peek: () => read(w) });
  }

  private tick(): void {
    for (const w of this.watched) {
      if (!w.instance.alive) continue;
      if (read(w) > w.limits.cpuMs) {
        w.instance.end(new RunEnded("cpuMs", `Worker exceeded CPU time limit of ${w.limits.cpuMs} ms.`));
      }
    }
  }
}

function read(w: Watched): number {
  try {
    w.lastMs = Number(w.instance.isolate.cpuTime - w.cpuStart) / 1e6;
  } catch {
    // Disposed: the last reading stands.
  }
  return w.lastMs;
}
