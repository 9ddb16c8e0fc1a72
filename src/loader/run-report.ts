import type { LogLine } from "../engine/protocol.ts";

export type RunOutcome =
  | "ok"
  | "exception"
  | "startupError"
  | "exceededCpu"
  | "exceededWall"
  | "exceededMemory"
  | "exceededOutput"
  | "executorCrashed"
  | "disposed"
  | "internalError";

/** What one invocation did and cost; handed to `onRun` after every call (the seed of tails). */
export interface RunReport {
  /** The id given to `loader.get()`, or undefined for `load()`. */
  workerId: string | undefined;
  entrypoint: string | null;
  kind: "fetch" | "rpc";
  method?: string;
  outcome: RunOutcome;
  logs: LogLine[];
  cpuMs: number;
  wallMs: number;
  /** The isolate's heap (used + external) when the run ended: what the run left allocated. */
  memoryBytes: number;
  /** Fetches made through bindings and globalOutbound during the run. */
  subRequests: number;
  /** Error name and message when outcome is not "ok". */
  error?: { name: string; message: string };
}
