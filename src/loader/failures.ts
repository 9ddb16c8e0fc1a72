import {
  CpuTimeLimitError, DataCloneError, ExecutorCrashedError, MayflyError, MemoryLimitError, OutputLimitError,
  WallTimeLimitError, WorkerDisposedError, remoteError,
} from "../errors.ts";
import type { Limits } from "../engine/limits.ts";
import type { ResultFrame } from "../engine/executor-process.ts";
import type { RunOutcome } from "./run-report.ts";

/** Turns an executor's failure report into the typed error the caller receives, and its outcome label. */
export function failureToError(failure: NonNullable<ResultFrame["failure"]>, limits: Limits): { error: Error; outcome: RunOutcome } {
  switch (failure.kind) {
    case "startup":
      return { error: remoteError(failure.error), outcome: "startupError" };
    case "stream":
      // The guest's own response body stream failed: its error, as the guest raised it.
      return { error: remoteError(failure.error), outcome: "exception" };
    case "cpuMs":
      return { error: new CpuTimeLimitError(limits.cpuMs), outcome: "exceededCpu" };
    case "wallMs":
      return { error: new WallTimeLimitError(limits.wallMs), outcome: "exceededWall" };
    case "memoryMb":
      return { error: new MemoryLimitError(limits.memoryMb, failure.detail), outcome: "exceededMemory" };
    case "output":
      return { error: new OutputLimitError("output", limits.outputBytes), outcome: "exceededOutput" };
    case "logs":
      return { error: new OutputLimitError("log output", limits.logBytes), outcome: "exceededOutput" };
    case "clone":
      return { error: new DataCloneError(failure.error.message), outcome: "exception" };
    case "disposed":
      return { error: new WorkerDisposedError(failure.error.message), outcome: "disposed" };
    case "internal":
      return { error: new MayflyError(failure.error.message), outcome: "internalError" };
  }
}

export function outcomeOfThrown(e: unknown): RunOutcome {
  if (e instanceof ExecutorCrashedError) return "executorCrashed";
  if (e instanceof WorkerDisposedError) return "disposed";
  return "internalError";
}
