/**
 * CodeMode: a set of tools offered to a model as two operations, `search` and `execute`, with the
 * descriptions a model reads. Small APIs get their declarations inline in `execute`'s description;
 * large ones list their namespaces and send the model to `search` first.
 */
import { RunNotFoundError, ToolSourceError } from "./errors.ts";
import { DEFAULT_EXECUTE_LIMITS, execute, type ExecuteOptions, type ExecuteResult } from "./execute.ts";
import { Journal, type JournalOptions, type RunRecord, type RunStatus, type RunSummary } from "./durable/journal.ts";
import { DurableRuns } from "./durable/runs.ts";
import { ToolIndex, type SearchResult } from "./search.ts";
import type { Tool } from "./tool.ts";
import { generateTypes, groupByNamespace } from "./typegen.ts";

/** loader, tools, limits (over DEFAULT_EXECUTE_LIMITS), globalOutbound, toolTimeoutMs: as for execute(). */
export interface CodeModeOptions extends Omit<ExecuteOptions, "globals" | "prelude"> {
  /** Up to this many tools, execute's description carries every declaration (default 30). */
  inlineTypesUpTo?: number;
  /**
   * Durable Code Mode: every run and call is journaled (SQLite in `dataDir`), tools with
   * `requiresApproval` pause the run, and approve()/reject() resume it by replaying the journal.
   */
  journal?: JournalOptions;
}

export interface ToolDescriptions {
  search: string;
  execute: string;
}

export class CodeMode {
  readonly tools: readonly Tool[];
  readonly index: ToolIndex;
  private readonly options: CodeModeOptions;
  private typesCache?: Promise<string>;
  private readonly store?: Journal;
  private readonly durable?: DurableRuns;

  constructor(options: CodeModeOptions) {
    const seen = new Set<string>();
    for (const t of options.tools) {
      const key = `${t.namespace}.${t.name}`;
      if (seen.has(key)) throw new ToolSourceError(`Two tools are named ${key}.`);
      seen.add(key);
    }
    const gated = options.tools.filter((t) => t.requiresApproval).map((t) => `${t.namespace}.${t.name}`);
    if (options.journal === undefined && gated.length) {
      throw new ToolSourceError(`${gated.join(", ")} require${gated.length === 1 ? "s" : ""} approval, which needs a journal to pause runs in: pass journal: { dataDir } to CodeMode.`);
    }
    if (options.journal !== undefined && options.tools.some((t) => t.namespace === "codemode")) {
      throw new ToolSourceError("A durable CodeMode keeps the namespace `codemode` for codemode.step(); give the tools another namespace.");
    }
    this.options = options;
    this.tools = options.tools;
    this.index = new ToolIndex(options.tools);
    if (options.journal !== undefined) {
      const { loader, limits, globalOutbound, toolTimeoutMs } = options;
      // An attempt lasts at most its wall time, then waits at most one tool timeout for calls in flight.
      const attemptMs = (limits?.wallMs ?? DEFAULT_EXECUTE_LIMITS.wallMs!) + (toolTimeoutMs ?? 30_000);
      this.store = new Journal(options.journal, { staleAfterMs: 2 * attemptMs });
      this.durable = new DurableRuns(this.store, { loader, tools: this.tools, limits, globalOutbound, toolTimeoutMs });
    }
  }

  /**
   * Runs model-written code with the tools; guest faults come back in `error`, never thrown. With a
   * journal the result also has `runId` and `status`, and "paused" when a call waits for approval.
   */
  execute(code: string): Promise<ExecuteResult> {
    if (this.durable) return this.durable.start(code);
    const { loader, limits, globalOutbound, toolTimeoutMs } = this.options;
    return execute(code, { loader, tools: this.tools, limits, globalOutbound, toolTimeoutMs });
  }

  /**
   * Approves the call a paused run waits at and resumes the run: its code runs again in a fresh
   * isolate, earlier calls answered from the journal, the approved call made for real. Throws
   * RunNotFoundError or RunStateError (not paused, or already being resumed).
   */
  approve(runId: string): Promise<ExecuteResult> {
    return this.needDurable().resume(runId, "approved");
  }

  /** As approve(), but the waiting call throws ToolRejectedError (with `reason`) inside the code, which may catch it. */
  reject(runId: string, reason: string): Promise<ExecuteResult> {
    return this.needDurable().resume(runId, "rejected", reason);
  }

  /** A run's journal: its code, status, result or error, and every call with input, outcome and timing. */
  journal(runId: string): RunRecord | undefined {
    this.needDurable();
    return this.store!.run(runId);
  }

  /** Runs in the journal, most recently active first (e.g. `{ status: "paused" }`: what waits for approval). */
  runs(filter: { status?: RunStatus; limit?: number } = {}): RunSummary[] {
    this.needDurable();
    return this.store!.runs(filter);
  }

  /** Closes the journal (a no-op without one). */
  close(): void {
    this.store?.close();
  }

  private needDurable(): DurableRuns {
    if (!this.durable) throw new RunNotFoundError("This CodeMode has no journal: runs are not kept (pass journal: { dataDir } for durable Code Mode).");
    return this.durable;
  }

  /** Ranked keyword search; the declarations of the best matches. */
  search(query: string, limit?: number): Promise<SearchResult> {
    return this.index.search(query, limit);
  }

  /** Code over `spec` in an offline isolate (see ToolIndex.searchWithCode). */
  searchWithCode(code: string): Promise<ExecuteResult & { types: string }> {
    const { loader, limits } = this.options;
    // The catalog of a large API is big: give the search isolate room for it.
    return this.index.searchWithCode(code, { loader, limits: { memoryMb: 256, ...limits } });
  }

  /** Every declaration (for small APIs, or to show a person). */
  types(): Promise<string> {
    this.typesCache ??= generateTypes(this.tools);
    return this.typesCache;
  }

  get inlinesTypes(): boolean {
    return this.tools.length <= (this.options.inlineTypesUpTo ?? 30);
  }

  /** What a model reads about the two operations. */
  async describe(): Promise<ToolDescriptions> {
    const namespaces = [...groupByNamespace(this.tools)].map(([ns, list]) => `${ns} (${list.length} operations)`).join(", ");
    const execute = [
      "Run JavaScript or TypeScript in a fresh sandbox whose only capabilities are the API's operations; no network, no filesystem.",
      "Write an async arrow function, or statements ending in `return` or in an expression whose value is the result. Call operations as `await namespace.operation(input)`; a failed call throws (catch it to recover). console.log output is returned in `logs`. Return only what you need: the result is JSON.",
      ...(this.durable ? [durableNote(this.tools)] : []),
      this.inlinesTypes ? `The API:\n${await this.types()}` : `Namespaces: ${namespaces}. Use search first to find operations and their TypeScript declarations.`,
    ].join("\n");
    const search = [
      `Find API operations and get their TypeScript declarations. Namespaces: ${namespaces}.`,
      "Give `query` (keywords, ranked), or `code`: an async arrow function over `spec.operations` (each { tool, description, keywords, inputSchema, outputSchema }, $refs resolved) that returns matching operations; their declarations come back too.",
    ].join("\n");
    return { search, execute };
  }
}

/** What a model needs to know about durable runs: which calls pause, and that the code is replayed. */
function durableNote(tools: readonly Tool[]): string {
  const gated = tools.filter((t) => t.requiresApproval).map((t) => `${t.namespace}.${t.name}`);
  return [
    gated.length ? `These operations need a person's approval: ${gated.join(", ")}. A call to one pauses the run (status "paused"); once approved the code runs again from the start, earlier calls answered from a journal, so it must make the same calls in the same order (a rejected call throws ToolRejectedError).` : "",
    "Wrap anything non-deterministic (Math.random(), crypto.randomUUID()) in `await codemode.step(name, () => value)`: its value is recorded and replayed. Date.now() is recorded for you.",
  ].filter(Boolean).join(" ");
}
