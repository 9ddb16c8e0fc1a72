/**
 * The host half of one attempt of a durable run: the target of the guest's TOOLS binding. Each call
 * the code makes is matched against the journal: a recorded call is answered with its recorded
 * outcome (the tool is not called again); the call waiting for approval runs (approved) or throws
 * ToolRejectedError (rejected); a new call is recorded and made, or, for a tool that requires
 * approval, recorded as pending and the run paused. A call that fits no recorded one while recorded
 * ones are left is a divergence: the run is ended.
 *
 * Matching takes the first unconsumed entry of the same kind, name and input, not strictly the next
 * position: calls made concurrently (Promise.all) may reach the host in another order on replay.
 */
import { createHash } from "node:crypto";
import { QuotaExceededError } from "../../errors.ts";
import { JournalValueTooLargeError, ReplayDivergenceError, ToolInputError, ToolRejectedError } from "../errors.ts";
import { errorShape, findTool, validateInput } from "../execute.ts";
import type { Tool } from "../tool.ts";
import type { EntryRow, Journal } from "./journal.ts";

type ErrorShape = { name: string; message: string };
/** What the guest gets for a call; `clock` is what its Date shows from then on. */
export type Envelope = { ok: true; value: unknown; clock: number } | { ok: false; error: ErrorShape; clock: number };

export type AttemptEnd =
  | { kind: "paused"; step: number; tool: string; input: unknown }
  | { kind: "diverged"; error: ReplayDivergenceError };

export interface ReplayerOptions {
  journal: Journal;
  runId: string;
  attempt: number;
  tools: Map<string, Map<string, Tool>>;
  toolTimeoutMs: number;
}

export class Replayer {
  /** Set when this attempt ended the run early (a pause or a divergence). */
  ended: AttemptEnd | undefined;
  /** Calls answered from the journal in this attempt. */
  replayed = 0;
  private readonly o: ReplayerOptions;
  private readonly recorded: EntryRow[];
  private readonly consumed = new Set<number>();
  private readonly openSteps = new Set<number>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly parked: (() => void)[] = [];
  private nextSeq: number;
  private endRun: () => void = () => {};

  constructor(options: ReplayerOptions) {
    this.o = options;
    this.recorded = options.journal.entryRows(options.runId);
    this.nextSeq = this.recorded.length ? this.recorded.at(-1)!.seq + 1 : 0;
  }

  /** The TOOLS binding's target; `end` ends the isolate. */
  dispatcher(end: () => void, metrics: { toolCalls: number }): object {
    this.endRun = end;
    return {
      invoke: (ns: unknown, name: unknown, input: unknown) => this.track(() => {
        metrics.toolCalls++;
        return this.invoke(String(ns), String(name), input);
      }),
      stepBegin: (name: unknown) => this.track(() => this.stepBegin(String(name))),
      stepEnd: (seq: unknown, json: unknown, error: unknown) => this.track(() => this.stepEnd(seq, json, error)),
    };
  }

  /** Resolves once every call the host started has its outcome recorded. */
  async settled(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /**
   * After the code finished: recorded calls it did not make mean the replay went another way.
   * Returns the divergence, if any (also kept in `ended`).
   */
  checkFinished(): AttemptEnd | undefined {
    if (this.ended) return this.ended;
    const left = this.firstUnconsumed();
    if (left) this.diverge(left, "the code finished");
    return this.ended;
  }

  private async invoke(ns: string, name: string, input: unknown): Promise<Envelope> {
    if (this.ended) return this.refused();
    const full = `${ns}.${name}`;
    const key = this.inputKey(input, full);
    const match = this.match("tool", full, key.text);
    if (match && (match.status === "ok" || match.status === "error")) return this.replay(match);
    if (match && match.status === "pending") {
      // The approved call has effects: it runs only once the replay has made every call before it.
      const left = this.recorded.find((r) => r !== match && !this.consumed.has(r.seq));
      return left ? this.diverge(left, describe("tool", full, key.text)) : this.decide(match, input);
    }
    if (!match) {
      const left = this.firstUnconsumed();
      if (left) return this.diverge(left, describe("tool", full, key.text));
    }
    if (!match && this.full()) return this.overQuota();
    // A call begun but never finished in an earlier attempt (its host went away) is made again under its position.
    if (match) this.consumed.add(match.seq);
    const seq = match ? match.seq : this.nextSeq++;
    if (!match) this.o.journal.begin(this.o.runId, seq, "tool", full, key.text, this.o.attempt);
    if (key.error) return this.record(seq, { ok: false, error: key.error });
    let tool: Tool;
    let valid: unknown;
    try {
      tool = findTool(this.o.tools, ns, name);
      valid = validateInput(tool, input);
    } catch (e) {
      return this.record(seq, { ok: false, error: errorShape(e) });
    }
    if (tool.requiresApproval) {
      this.o.journal.finish(this.o.runId, seq, { status: "pending" }, null, this.o.attempt);
      this.ended = { kind: "paused", step: seq, tool: full, input };
      this.endRun();
      return this.refused();
    }
    return this.call(seq, tool, valid);
  }

  /** The call that waited for approval, reached again: it runs now, or is refused with the reason. */
  private async decide(entry: EntryRow, input: unknown): Promise<Envelope> {
    this.consumed.add(entry.seq);
    const [ns, name] = splitName(entry.name);
    if (entry.decision === "rejected") {
      const reason = entry.reason ?? "no reason given";
      return this.record(entry.seq, { ok: false, error: errorShape(new ToolRejectedError(`${entry.name} was rejected: ${reason}`, reason)) });
    }
    if (entry.decision !== "approved") {
      // Not decided yet (a resume that did not go through approve/reject): pause here again.
      this.ended = { kind: "paused", step: entry.seq, tool: entry.name, input };
      this.endRun();
      return this.refused();
    }
    try {
      const tool = findTool(this.o.tools, ns, name);
      return this.call(entry.seq, tool, validateInput(tool, input));
    } catch (e) {
      return this.record(entry.seq, { ok: false, error: errorShape(e) });
    }
  }

  private async call(seq: number, tool: Tool, input: unknown): Promise<Envelope> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        tool.invoke(input),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(Object.assign(new Error(`${tool.namespace}.${tool.name} timed out after ${this.o.toolTimeoutMs} ms.`), { name: "TimeoutError" })), this.o.toolTimeoutMs);
        }),
      ]);
      return this.record(seq, { ok: true, value });
    } catch (e) {
      return this.record(seq, { ok: false, error: errorShape(e) });
    } finally {
      clearTimeout(timer);
    }
  }

  private async stepBegin(name: string): Promise<Envelope & { replayed?: true } | { replayed: false; seq: number }> {
    if (this.ended) return this.refused();
    const match = this.match("step", name, null);
    if (match && (match.status === "ok" || match.status === "error")) return { ...this.replay(match), replayed: true };
    if (!match) {
      const left = this.firstUnconsumed();
      if (left) return this.diverge(left, describe("step", name, null));
    }
    if (!match && this.full()) return this.overQuota();
    // A step begun in an earlier attempt but never finished is run again under its position.
    if (match) this.consumed.add(match.seq);
    const seq = match ? match.seq : this.nextSeq++;
    if (!match) this.o.journal.begin(this.o.runId, seq, "step", name, null, this.o.attempt);
    this.openSteps.add(seq);
    return { replayed: false, seq };
  }

  private async stepEnd(seq: unknown, json: unknown, error: unknown): Promise<Envelope> {
    if (this.ended) return this.refused();
    if (typeof seq !== "number" || !this.openSteps.delete(seq)) return { ok: false, error: { name: "TypeError", message: "No step is open at that position." }, clock: Date.now() };
    if (error !== undefined) {
      const e = error as Partial<ErrorShape>;
      return this.record(seq, { ok: false, error: { name: String(e?.name ?? "Error"), message: String(e?.message ?? "") } });
    }
    let value: unknown;
    try {
      if (json !== undefined && typeof json !== "string") throw new TypeError("not text");
      value = json === undefined ? undefined : JSON.parse(json);
    } catch {
      // Only code calling the binding itself, not codemode.step(), sends anything else.
      return this.record(seq, { ok: false, error: { name: "TypeError", message: "A step's value must arrive as JSON text." } });
    }
    return this.record(seq, { ok: true, value });
  }

  /**
   * Records an outcome and gives the guest what a replay would give it: the value as JSON carries
   * it, so the first run and its replays see the same thing. A value over the cap is refused here.
   */
  private record(seq: number, outcome: { ok: true; value: unknown } | { ok: false; error: ErrorShape }): Envelope {
    const clock = Date.now();
    if (outcome.ok) {
      let text: string | null;
      try {
        text = this.o.journal.encode(outcome.value, `The value at step ${seq}`);
      } catch (e) {
        return this.record(seq, { ok: false, error: errorShape(e) });
      }
      this.o.journal.finish(this.o.runId, seq, { status: "ok", output: text }, clock, this.o.attempt);
      return { ok: true, value: text === null ? undefined : JSON.parse(text), clock };
    }
    this.o.journal.finish(this.o.runId, seq, { status: "error", error: outcome.error }, clock, this.o.attempt);
    return { ok: false, error: outcome.error, clock };
  }

  private replay(entry: EntryRow): Envelope {
    this.consumed.add(entry.seq);
    this.replayed++;
    const clock = entry.clock ?? Date.now();
    if (entry.status === "error") return { ok: false, error: JSON.parse(entry.error!) as ErrorShape, clock };
    return { ok: true, value: entry.output === null ? undefined : JSON.parse(entry.output), clock };
  }

  private match(kind: "tool" | "step", name: string, input: string | null): EntryRow | undefined {
    return this.recorded.find((r) => !this.consumed.has(r.seq) && r.kind === kind && r.name === name && (kind === "step" || r.input === input));
  }

  private firstUnconsumed(): EntryRow | undefined {
    return this.recorded.find((r) => !this.consumed.has(r.seq));
  }

  private diverge(expected: EntryRow, actual: string): Promise<Envelope> {
    this.ended = { kind: "diverged", error: new ReplayDivergenceError(this.o.runId, expected.seq, describe(expected.kind, expected.name, expected.input), actual) };
    this.endRun();
    return this.refused();
  }

  private full(): boolean {
    return this.nextSeq >= this.o.journal.maxEntriesPerRun;
  }

  /** Not recorded (there is no room), so a replay reaching the same call gets the same answer. */
  private overQuota(): Envelope {
    return { ok: false, error: errorShape(new QuotaExceededError(`The run made more than ${this.o.journal.maxEntriesPerRun} calls and steps, the journal's limit per run; this one was not made.`)), clock: Date.now() };
  }

  /** Answer to a call after the run was ended: the isolate is going away, nothing runs. */
  private refused(): Promise<Envelope> {
    // Parked until the isolate is gone: code awaiting the call that paused it must not go on meanwhile.
    return new Promise((resolve) => this.parked.push(() => resolve({ ok: false, error: { name: "WorkerDisposedError", message: "The run was ended." }, clock: Date.now() })));
  }

  /** The isolate is gone: answers the parked calls (nobody is listening any more) so nothing dangles. */
  release(): void {
    for (const answer of this.parked.splice(0)) answer();
  }

  /**
   * The input as recorded and compared: its JSON, or, when it cannot be recorded (over the cap, not
   * JSON), a stand-in that still identifies it (so the replay of the same call matches) and the error.
   */
  private inputKey(input: unknown, full: string): { text: string | null; error?: ErrorShape } {
    try {
      return { text: this.o.journal.encode(input, `The input of ${full}`) };
    } catch (e) {
      if (e instanceof JournalValueTooLargeError) {
        const sha256 = createHash("sha256").update(JSON.stringify(input)).digest("hex");
        return { text: JSON.stringify({ $refused: "too large", sha256 }), error: errorShape(e) };
      }
      return { text: JSON.stringify({ $refused: "not JSON" }), error: errorShape(new ToolInputError(`The input of ${full} is not JSON: ${(e as Error).message}`)) };
    }
  }

  private track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => {});
    return p;
  }
}

function splitName(full: string): [string, string] {
  const dot = full.indexOf(".");
  return [full.slice(0, dot), full.slice(dot + 1)];
}

function describe(kind: "tool" | "step", name: string, input: string | null): string {
  const text = kind === "step" ? `codemode.step(${JSON.stringify(name)})` : `${name}(${input ?? ""})`;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
