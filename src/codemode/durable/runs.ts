/**
 * Durable runs: execute() journals every call; a run that reaches a tool requiring approval pauses;
 * approve()/reject() run the same code again in a fresh isolate, answering the calls already made
 * from the journal, until it completes, fails, diverges or pauses at the next approval.
 */
import { randomUUID } from "node:crypto";
import { errorShape, indexTools, runCode, type ExecuteOptions, type ExecuteResult } from "../execute.ts";
import type { Tool } from "../tool.ts";
import { DURABLE_PRELUDE } from "./guest.ts";
import type { Journal } from "./journal.ts";
import { Replayer } from "./replayer.ts";

export type DurableOptions = Omit<ExecuteOptions, "globals" | "prelude">;

export class DurableRuns {
  private readonly journal: Journal;
  private readonly options: DurableOptions;
  private readonly tools: Map<string, Map<string, Tool>>;

  constructor(journal: Journal, options: DurableOptions) {
    this.journal = journal;
    this.options = options;
    this.tools = indexTools(options.tools);
  }

  async start(code: string): Promise<ExecuteResult> {
    const runId = randomUUID();
    // The guest's clock starts here and is recorded, so every replay starts at the same time.
    const clock = Date.now();
    this.journal.createRun(runId, code, clock);
    return this.attempt(runId, code, clock, 1);
  }

  async resume(runId: string, decision: "approved" | "rejected", reason?: string): Promise<ExecuteResult> {
    const run = this.journal.claimPaused(runId, decision, reason);
    return this.attempt(runId, run.code, run.clock, run.attempt);
  }

  private async attempt(runId: string, code: string, clock: number, attempt: number): Promise<ExecuteResult> {
    const toolTimeoutMs = this.options.toolTimeoutMs ?? 30_000;
    const replayer = new Replayer({ journal: this.journal, runId, attempt, tools: this.tools, toolTimeoutMs });
    let out: ExecuteResult;
    try {
      out = await runCode(code, this.options, {
        dispatcher: (end, metrics) => replayer.dispatcher(end, metrics),
        prelude: DURABLE_PRELUDE,
        globals: { __CLOCK: clock },
        // The replayer times tool calls itself (and records the timeout); the binding's own is a backstop.
        rpcTimeoutMs: toolTimeoutMs + 5_000,
      });
      replayer.release();
      // Calls still running on the host when the run was ended are recorded before anyone resumes it.
      await replayer.settled();
    } catch (e) {
      replayer.release();
      this.journal.settle(runId, { status: "failed", error: errorShape(e) });
      throw e;
    }
    const base = { runId, logs: out.logs, metrics: { ...out.metrics, replayed: replayer.replayed } };
    const end = replayer.ended ?? (out.error ? undefined : replayer.checkFinished());
    if (end?.kind === "paused") {
      this.journal.settle(runId, { status: "paused", pendingSeq: end.step });
      return { ...base, result: undefined, status: "paused", pending: { tool: end.tool, input: end.input } };
    }
    const error = end?.kind === "diverged" ? errorShape(end.error) : out.error;
    if (error) return this.failed(runId, base, error);
    let text: string | null;
    try {
      text = this.journal.encode(out.result, "The code's result");
    } catch (e) {
      return this.failed(runId, base, errorShape(e));
    }
    this.journal.settle(runId, { status: "completed", result: text });
    return { ...base, result: out.result, status: "completed" };
  }

  private failed(runId: string, base: Pick<ExecuteResult, "runId" | "logs" | "metrics">, error: { name: string; message: string }): ExecuteResult {
    this.journal.settle(runId, { status: "failed", error });
    return { ...base, result: undefined, error, status: "failed" };
  }
}
