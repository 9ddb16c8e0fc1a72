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
   * Nice steps (0-20) by which each executor's main thread, which enforces the limits and prepares
   * isolates, is raised above the threads that run guest code, so runaways never keep it from a core
   * (default 10). Needs CAP_SYS_NICE (e.g. root) on Linux; elsewhere, or without it, nothing changes.
   */
  mainThreadBoost?: number;
  /**
   * Isolate images with a worker's npm packages already evaluated (see executor/package-images.ts):
   * built, in a child process under `deadlineMs` (default 15 s), for a bundle once it has run to
   * completion `afterRuns` times in an executor (default 2); `poolSize` isolates of each kept ready
   * (default 2), at most `maxImages` images per executor (default 4). `false` turns them off.
   */
  packageImages?: false | { afterRuns?: number; deadlineMs?: number; poolSize?: number; maxImages?: number };
}

/** The engine: executor processes, their isolate pools and the limits they enforce. */
export class Engine {
  private readonly supervisor: Supervisor;
  readonly maxMemoryMb: number;

  constructor(opts: EngineOptions = {}) {
    this.maxMemoryMb = opts.maxMemoryMb ?? 512;
    const mainThreadBoost = opts.mainThreadBoost ?? 10;
    if (!Number.isInteger(mainThreadBoost) || mainThreadBoost < 0 || mainThreadBoost > 20) {
      throw new ConfigError(`mainThreadBoost must be an integer from 0 to 20, got ${mainThreadBoost}.`);
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
          mainThreadBoost,
          packageImages: opts.packageImages === false ? false : {
            afterRuns: opts.packageImages?.afterRuns ?? 2,
            deadlineMs: opts.packageImages?.deadlineMs ?? 15_000,
            poolSize: opts.packageImages?.poolSize ?? 2,
            maxImages: opts.packageImages?.maxImages ?? 4,
          },
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
  stats(): { executors: { pid: number; inFlight: number; rssBytes: number; draining: boolean; runtime: string | undefined; mainThreadRaised: boolean; packageImages: number }[]; restarts: number; recycles: number } {
    return {
      executors: this.supervisor.executors().map((p) => ({ pid: p.child.pid ?? 0, inFlight: p.inFlight, rssBytes: p.rssBytes, draining: p.draining, runtime: p.runtime, mainThreadRaised: p.mainThreadRaised, packageImages: p.packageImages })),
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
