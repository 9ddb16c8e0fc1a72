/**
 * The type checker's thread. Checking is synchronous CPU work of unbounded length (TypeScript's types
 * are Turing-complete, and a package's types can take seconds), so it runs here: the host's event loop
 * keeps serving, and a check past its time or memory is ended by terminating this thread.
 */
import { parentPort } from "node:worker_threads";
import { checkWorker } from "./check.ts";
import type { NormalizedModule } from "../worker-code.ts";

export interface CheckJob {
  id: number;
  modules: NormalizedModule[];
  installDir?: string;
}

parentPort!.on("message", (job: CheckJob) => {
  checkWorker(job.modules, { installDir: job.installDir }).then(
    (diagnostics) => parentPort!.postMessage({ id: job.id, diagnostics }),
    (e: Error) => parentPort!.postMessage({ id: job.id, error: `${e.name}: ${e.message}` }),
  );
});
