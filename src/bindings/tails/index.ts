/**
 * Tails: after each run, a worker's tails receive what it did — as Cloudflare's tail workers receive
 * TraceItems: outcome, logs, uncaught exceptions, CPU and wall time, subrequests. A tail is a host
 * callback, any object with a tail(events) method, or another worker's entrypoint (its tail handler
 * runs in its own isolate). A failing tail never affects the run or the other tails.
 */
import type { RunReport } from "../../loader/run-report.ts";

export interface TailEvent {
  scriptName: string | null;
  entrypoint: string | null;
  outcome: RunReport["outcome"];
  eventTimestamp: number;
  event: { kind: "fetch" } | { kind: "rpc"; method: string };
  logs: { level: string; message: string[]; timestamp: number }[];
  exceptions: { name: string; message: string; timestamp: number }[];
  cpuTime: number;
  wallTime: number;
  subrequests: number;
  /** mayfly's addition: the isolate's heap (used + external) in bytes when the run ended. */
  memoryBytes: number;
}

export type Tail = ((event: TailEvent) => unknown) | { tail(events: TailEvent[]): unknown };

export function isTail(v: unknown): v is Tail {
  return typeof v === "function" || (typeof v === "object" && v !== null && typeof (v as { tail?: unknown }).tail === "function");
}

export function tailEvent(report: RunReport, startedAt: number): TailEvent {
  const exceptions = report.error && report.outcome !== "ok" ? [{ name: report.error.name, message: report.error.message, timestamp: Date.now() }] : [];
  return {
    scriptName: report.workerId ?? null,
    entrypoint: report.entrypoint,
    outcome: report.outcome,
    eventTimestamp: startedAt,
    event: report.kind === "rpc" ? { kind: "rpc", method: report.method ?? "" } : { kind: "fetch" },
    logs: report.logs.map((l) => ({ level: l.level, message: [l.message], timestamp: l.time })),
    exceptions,
    cpuTime: report.cpuMs,
    wallTime: report.wallMs,
    subrequests: report.subRequests,
    memoryBytes: report.memoryBytes,
  };
}

/** Delivers one event to every tail; their results and failures are ignored, as on Workers. */
export function deliverTails(tails: readonly Tail[], event: TailEvent): void {
  for (const tail of tails) {
    try {
      const r = typeof tail === "function" ? tail(event) : tail.tail([event]);
      if (r && typeof (r as Promise<unknown>).then === "function") (r as Promise<unknown>).then(undefined, () => {});
    } catch {
      // A tail's own failure stays with the tail.
    }
  }
}
