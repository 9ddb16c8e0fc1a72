import { availableParallelism } from "node:os";
import { InstanceHandle } from "./instance-handle.ts";
import type { WorkerSpec } from "./protocol.ts";
import { Supervisor } from "./supervisor.ts";
import type { CapabilityLookup } from "./capability-router.ts";
import { ConfigError } from "../errors.ts";

export interface EngineOptions {
  /** Executor processes (default: one per CPU core). */
  executors?: number;
  /** Fresh isolates kept ready per executor (default 4). */
  poolSize?: number;
  /** Memory limit of the pre-made isolates (the default `limits.memoryMb`). */
  defaultMemoryMb?: number;
  /** Highest `limits.memoryMb` any worker may ask for; also caps each Wasm memory (default 512). */
  maxMemoryMb?: number;
  /** Recycle an executor after it has started this many workers (default 5000). */
  recycleAfterRuns?: number;
  /** Recycle an executor whose RSS passes this (default 1024 MB). */
  recycleRssMb?: number;
  /** Executor RSS at which the largest worker is ended as over memory (default 2048 MB). */
  executorRssLimitMb?: number;
  /** Restore each isolate's runtime from a self-tested V8 snapshot (default true; false evaluates it per isolate). */
  snapshot?: boolean;
  /** How often CPU time is checked (default 2 ms). */
  watchdogIntervalMs?: number;
  /**
   * Nice value (0-19) of the executor threads that run guest code, so the executor's own thread, which
   * enforces the limits, always gets a core before them (default 19; 0 turns it off). Linux only.
   */
  guestThreadNice?: number;
}

/** The engine: executor processes, their isolate pools and the limits they enforce. */
export class Engine {
  private readonly supervisor: Supervisor;
  readonly maxMemoryMb: number;

  constructor(opts: EngineOptions = {}) {
    this.maxMemoryMb = opts.maxMemoryMb ?? 512;
    const guestThreadNice = opts.guestThreadNice ?? 19;
    if (!Number.isInteger(guestThreadNice) || guestThreadNice < 0 || guestThreadNice > 19) {
      throw new ConfigError(`guestThreadNice must be an integer from 0 to 19, got ${guestThreadNice}.`);
    }
    const wasmPages = Math.ceil((this.maxMemoryMb * 1024 * 1024) / 65536);
    this.supervisor = new Supervisor({
      executors: opts.executors ?? availableParallelism(),
      recycleAfterInstances: opts.recycleAfterRuns ?? 5000,
      recycleRssBytes: (opts.recycleRssMb ?? 1024) * 1024 * 1024,
      launch: {
        v8Flags: [
          `--wasm-max-mem-pages=${wasmPages}`,
          // Concurrent OSR's optimised loop code never services V8's interrupts in an isolated-vm
          // isolate: a loop like `for (;;) a.push(new Array(1000))` then ignores TerminateExecution,
          // so neither the CPU timeout nor the memory limit can stop it and the heap grows until V8
          // aborts the executor. Compiling OSR code on the isolate's own thread keeps the checks.
          "--no-concurrent-osr",
          // Without concurrency, OSR into Maglev made a hot loop ~8x slower (4.2 s instead of 0.54 s
          // for 1e8 additions); OSR straight into TurboFan takes 0.14 s.
          "--no-maglev-osr",
        ],
        config: {
          poolSize: opts.poolSize ?? 4,
          defaultMemoryMb: opts.defaultMemoryMb ?? 128,
          watchdogIntervalMs: opts.watchdogIntervalMs ?? 2,
          rssLimitBytes: (opts.executorRssLimitMb ?? 2048) * 1024 * 1024,
          snapshot: opts.snapshot ?? true,
          guestThreadNice,
        },
      },
    });
  }

  ready(): Promise<void> {
    return this.supervisor.ready();
  }

  createInstance(spec: WorkerSpec, capabilities?: CapabilityLookup): InstanceHandle {
    return new InstanceHandle(this.supervisor, spec, capabilities);
  }

  /** Executor pids and counters, for tests, metrics and the benchmark. */
  stats(): { executors: { pid: number; inFlight: number; rssBytes: number; draining: boolean; runtime: string | undefined }[]; restarts: number; recycles: number } {
    return {
      executors: this.supervisor.executors().map((p) => ({ pid: p.child.pid ?? 0, inFlight: p.inFlight, rssBytes: p.rssBytes, draining: p.draining, runtime: p.runtime })),
      restarts: this.supervisor.restarts,
      recycles: this.supervisor.recycles,
    };
  }

  close(): Promise<void> {
    return this.supervisor.close();
  }
}

export type { WorkerSpec } from "./protocol.ts";
export type { InstanceHandle } from "./instance-handle.ts";
export { DEFAULT_LIMITS, type Limits } from "./limits.ts";
