/** Code Mode's errors. Each reaches guest code by `name` and message, so a program can catch and branch on it. */
import { MayflyError } from "../errors.ts";

/** A tool was called with arguments that do not match its input schema; nothing was called. */
export class ToolInputError extends MayflyError {
  override name = "ToolInputError";
}

/** The code called a tool that does not exist in its namespace. */
export class ToolNotFoundError extends MayflyError {
  override name = "ToolNotFoundError";
}

/** An OpenAPI operation answered with a non-2xx status. `status` and the start of the body are kept. */
export class ToolHttpError extends MayflyError {
  override name = "ToolHttpError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A tool source (function definitions, OpenAPI document, MCP server) is malformed or unreachable. */
export class ToolSourceError extends MayflyError {
  override name = "ToolSourceError";
}

/** A remote tool (an MCP server's) reported a failure. */
export class ToolCallError extends MayflyError {
  override name = "ToolCallError";
}

/** The code given to execute() or search() does not parse (as TypeScript or JavaScript). */
export class CodeSyntaxError extends MayflyError {
  override name = "CodeSyntaxError";
}

/**
 * A call to a tool that requires approval was rejected (by `reject(runId, reason)`), or could not be
 * approved at all (plain `execute()` has no journal to pause in). Thrown inside the guest at that call.
 */
export class ToolRejectedError extends MayflyError {
  override name = "ToolRejectedError";
  readonly reason: string;
  constructor(message: string, reason: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A resumed run made a different call than its journal recorded (another tool, another input, a
 * different step, or it finished early): the journal's answers no longer fit the code, so the run is
 * ended rather than answered wrongly. `step` is the journal position, `expected` and `actual` the calls.
 */
export class ReplayDivergenceError extends MayflyError {
  override name = "ReplayDivergenceError";
  readonly step: number;
  readonly expected: string;
  readonly actual: string;
  constructor(runId: string, step: number, expected: string, actual: string) {
    super(`Replay of run ${runId} diverged at step ${step}: expected ${expected}, got ${actual}. Record non-deterministic values with codemode.step().`);
    this.step = step;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A value (tool input or result, step value, the code's result) is larger than the journal's per-value cap; it was not recorded. */
export class JournalValueTooLargeError extends MayflyError {
  override name = "JournalValueTooLargeError";
}

/** No run with this id is in the journal (never made, or removed by retention). */
export class RunNotFoundError extends MayflyError {
  override name = "RunNotFoundError";
}

/** The run is not in a state that allows this (e.g. approving a run that is not paused). */
export class RunStateError extends MayflyError {
  override name = "RunStateError";
}

/** Recorded for a run whose host stopped (a crash, a kill) while it was running: it cannot be resumed. */
export class RunInterruptedError extends MayflyError {
  override name = "RunInterruptedError";
}
