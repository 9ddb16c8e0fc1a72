/**
 * Cron Triggers for named workers: each cron expression of each worker fires its scheduled() handler
 * (croner does the calendar arithmetic). A run still going when its cron fires again is not overlapped.
 * reschedule() after a reload picks up added, changed and removed crons.
 */
import { Cron } from "croner";
import type { Logger } from "pino";
import type { WorkerLoader } from "../loader/worker-loader.ts";
import { runScheduled, type NamedWorker } from "./named-workers.ts";

export function startCrons(loader: WorkerLoader, workers: Map<string, NamedWorker>, log?: Logger): { reschedule(): void; stop(): void } {
  let jobs: Cron[] = [];
  const schedule = () => {
    for (const job of jobs) job.stop();
    jobs = [];
    for (const name of workers.keys()) {
      for (const cron of workers.get(name)!.crons) {
        jobs.push(new Cron(cron, { protect: true, unref: true }, async (self: Cron) => {
          // The worker as it is now (a reload may have replaced it since the job was made).
          const worker = workers.get(name);
          if (!worker) return;
          const result = await runScheduled(loader, worker, cron, self.currentRun()?.getTime() ?? Date.now());
          if (result.outcome === "ok") log?.info({ worker: name, cron }, "scheduled");
          else log?.warn({ worker: name, cron, error: result.error }, "scheduled handler failed");
        }));
      }
    }
  };
  schedule();
  return {
    reschedule: schedule,
    stop: () => {
      for (const job of jobs) job.stop();
      jobs = [];
    },
  };
}
