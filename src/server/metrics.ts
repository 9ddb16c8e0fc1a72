/**
 * Prometheus metrics (prom-client): runs by outcome, run latency, live workers and runs in flight, runs
 * canceled by a disconnect and requests refused by a bound, and
 * the engine's executors and restarts, read when scraped.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import type { RunReport } from "../loader/run-report.ts";
import type { TailEvent } from "../bindings/tails/index.ts";

export class Metrics {
  readonly registry = new Registry();
  private readonly runs = new Counter({ name: "mayfly_runs_total", help: "Worker invocations by outcome.", labelNames: ["outcome"], registers: [this.registry] });
  private readonly wall = new Histogram({
    name: "mayfly_run_wall_seconds", help: "Executor-side wall time of invocations.", registers: [this.registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  private readonly cpu = new Histogram({
    name: "mayfly_run_cpu_seconds", help: "Guest CPU time of invocations.", registers: [this.registry],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
  });

  private readonly workerRuns = new Counter({ name: "mayfly_worker_runs_total", help: "Runs of each named worker (config file), by outcome.", labelNames: ["worker", "outcome"], registers: [this.registry] });
  private readonly workerWall = new Histogram({
    name: "mayfly_worker_run_wall_seconds", help: "Executor-side wall time of each named worker's runs.", labelNames: ["worker"], registers: [this.registry],
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 30],
  });

  private readonly canceled = new Counter({ name: "mayfly_runs_canceled_total", help: "Runs ended because their HTTP client disconnected, by route (run: /v1/run, worker: /w/<name>).", labelNames: ["route"], registers: [this.registry] });
  private readonly refused = new Counter({ name: "mayfly_requests_refused_total", help: "API requests refused by the server's bounds, by the bound (maxCpuMs, maxInFlight, ...).", labelNames: ["bound"], registers: [this.registry] });

  constructor(loader: () => WorkerLoader | undefined) {
    new Gauge({
      name: "mayfly_executors", help: "Executor processes serving.", registers: [this.registry],
      collect() { this.set(loader()?.engine.stats().executors.length ?? 0); },
    });
    new Gauge({
      name: "mayfly_live_workers", help: "Workers not yet disposed, each holding at most one isolate (cached: kept warm by id).", labelNames: ["kind"], registers: [this.registry],
      collect() {
        const live = loader()?.liveWorkers ?? { total: 0, cached: 0 };
        this.set({ kind: "cached" }, live.cached);
        this.set({ kind: "oneOff" }, live.total - live.cached);
      },
    });
    new Gauge({
      name: "mayfly_runs_in_flight", help: "Invocations running now.", registers: [this.registry],
      collect() { this.set(loader()?.engine.stats().executors.reduce((s, e) => s + e.inFlight, 0) ?? 0); },
    });
    new Gauge({
      name: "mayfly_executor_restarts", help: "Executor processes replaced after dying.", registers: [this.registry],
      collect() { this.set(loader()?.engine.stats().restarts ?? 0); },
    });
    new Gauge({
      name: "mayfly_executor_rss_bytes", help: "Resident memory of all executors.", registers: [this.registry],
      collect() { this.set(loader()?.engine.stats().executors.reduce((s, e) => s + e.rssBytes, 0) ?? 0); },
    });
  }

  /** A named worker's run (its tail event); the label set is bounded by the config file's workers. */
  recordWorker(worker: string, event: TailEvent): void {
    this.workerRuns.inc({ worker, outcome: event.outcome });
    this.workerWall.observe({ worker }, event.wallTime / 1000);
  }

  /** A run whose client went away: its isolate was ended (the loader reports it as "disposed" too). */
  recordCanceled(route: "run" | "worker"): void {
    this.canceled.inc({ route });
  }

  /** A request refused by a bound; the label set is bounded by the bounds' names. */
  recordRefused(bound: string): void {
    this.refused.inc({ bound });
  }

  record(report: RunReport): void {
    this.runs.inc({ outcome: report.outcome });
    this.wall.observe(report.wallMs / 1000);
    this.cpu.observe(report.cpuMs / 1000);
  }
}
