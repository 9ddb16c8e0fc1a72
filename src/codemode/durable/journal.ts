/**
 * The journal of durable Code Mode: one SQLite file (<dataDir>/codemode/journal.sqlite, WAL with
 * synchronous=FULL like the storage bindings) holding every run's code and every call it made, in
 * order, with input, outcome and timing. It is both what a resumed run is replayed from and the audit
 * record. Values are stored as JSON text; one over the per-value cap is refused, never truncated.
 */
import { DatabaseSync } from "node:sqlite";
import { z } from "zod";
import { inWriteTransaction, openStore } from "../../bindings/storage/sqlite-file.ts";
import { JournalValueTooLargeError, RunInterruptedError, RunNotFoundError, RunStateError } from "../errors.ts";

export const journalOptionsSchema = z.strictObject({
  /** Where the journal lives (<dataDir>/codemode/journal.sqlite). Without it the journal is in memory: pauses do not survive the process. */
  dataDir: z.string().min(1).optional(),
  /** Runs whose last activity is older than this are removed (default 30 days). */
  maxAgeMs: z.number().int().positive().optional(),
  /** At most this many runs are kept, the most recently active (default 1000). */
  maxRuns: z.number().int().positive().optional(),
  /** Largest value recorded, in bytes of JSON (default 1 MiB). */
  maxValueBytes: z.number().int().positive().optional(),
  /** Calls and steps recorded per run (default 10,000): code cannot fill the disk with entries. */
  maxEntriesPerRun: z.number().int().positive().optional(),
});
export type JournalOptions = z.input<typeof journalOptionsSchema>;

export type RunStatus = "running" | "paused" | "completed" | "failed";
export type EntryStatus = "running" | "ok" | "error" | "pending";

/** One call the code made: a tool call or a step, at its position (`step`) in the run. */
export interface JournalEntry {
  step: number;
  kind: "tool" | "step";
  /** `namespace.tool`, or the step's name. */
  name: string;
  input?: unknown;
  /** running: started, no outcome yet; pending: waiting for approval. */
  status: EntryStatus;
  result?: unknown;
  error?: { name: string; message: string };
  /** For a tool that requires approval: the decision and when it was made. */
  approval?: { decision: "approved" | "rejected"; reason?: string; decidedAt: number };
  /** When the code made the call (for an approved call: when it asked, before the wait). */
  startedAt: number;
  endedAt?: number;
  /** How long the host took: from the start, or from the decision for a call that waited for one. */
  durationMs?: number;
  /** Which attempt of the run made the call for real (1 = the first execute, then one per resume). */
  attempt: number;
  /** The guest's clock (Date.now()) once the call returned: what a replay shows the code. */
  clock?: number;
}

export interface RunSummary {
  runId: string;
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  attempts: number;
  pending?: { step: number; tool: string; input: unknown };
  error?: { name: string; message: string };
}

export interface RunRecord extends RunSummary {
  code: string;
  result?: unknown;
  /** The guest's clock when the run started. */
  clock: number;
  entries: JournalEntry[];
}

/** An entry as stored: JSON text, compared as text when replaying. */
export interface EntryRow {
  seq: number;
  kind: "tool" | "step";
  name: string;
  input: string | null;
  status: EntryStatus;
  output: string | null;
  error: string | null;
  decision: "approved" | "rejected" | null;
  reason: string | null;
  decided_at: number | null;
  started_at: number;
  ended_at: number | null;
  clock: number | null;
  attempt: number;
}

interface RunRow {
  id: string;
  code: string;
  status: RunStatus;
  created_at: number;
  updated_at: number;
  clock: number;
  attempts: number;
  result: string | null;
  error: string | null;
  pending_seq: number | null;
}

const DAY = 24 * 60 * 60 * 1000;

export class Journal {
  readonly maxValueBytes: number;
  readonly maxEntriesPerRun: number;
  private readonly db: DatabaseSync;
  private readonly maxAgeMs: number;
  private readonly maxRuns: number;

  /**
   * A run "running" with no activity for `staleAfterMs` was interrupted (its host stopped): no attempt
   * lasts that long, as the owner computes it from its limits (wall time, tool timeout).
   */
  private readonly staleAfterMs: number;

  constructor(options: JournalOptions, internal: { staleAfterMs: number }) {
    const o = journalOptionsSchema.parse(options);
    this.staleAfterMs = internal.staleAfterMs;
    this.maxAgeMs = o.maxAgeMs ?? 30 * DAY;
    this.maxRuns = o.maxRuns ?? 1000;
    this.maxValueBytes = o.maxValueBytes ?? 1024 * 1024;
    this.maxEntriesPerRun = o.maxEntriesPerRun ?? 10_000;
    this.db = o.dataDir ? openStore(o.dataDir, "codemode", "journal") : new DatabaseSync(":memory:");
    this.db.exec("PRAGMA foreign_keys = ON");
    this.db.exec(`CREATE TABLE IF NOT EXISTS runs (
      id TEXT PRIMARY KEY, code TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, clock INTEGER NOT NULL, attempts INTEGER NOT NULL,
      result TEXT, error TEXT, pending_seq INTEGER) WITHOUT ROWID`);
    this.db.exec("CREATE INDEX IF NOT EXISTS runs_by_activity ON runs (updated_at)");
    this.db.exec(`CREATE TABLE IF NOT EXISTS entries (
      run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
      kind TEXT NOT NULL, name TEXT NOT NULL, input TEXT, status TEXT NOT NULL, output TEXT, error TEXT,
      decision TEXT, reason TEXT, decided_at INTEGER, started_at INTEGER NOT NULL, ended_at INTEGER, clock INTEGER,
      attempt INTEGER NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID`);
    this.prune();
  }

  /**
   * JSON text of a value for the journal (null for undefined). Throws JournalValueTooLargeError over
   * the cap, and TypeError for what JSON cannot carry (a BigInt, a cycle).
   */
  encode(value: unknown, what: string): string | null {
    if (value === undefined) return null;
    const text = JSON.stringify(value);
    if (text === undefined) return null;
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxValueBytes) throw new JournalValueTooLargeError(`${what} is ${bytes} bytes of JSON, over the journal's cap of ${this.maxValueBytes} bytes; it was not recorded.`);
    return text;
  }

  /** Records a new run, then removes what retention says to (never the new run: it is running). */
  createRun(id: string, code: string, clock: number): void {
    const now = Date.now();
    this.db.prepare("INSERT INTO runs (id, code, status, created_at, updated_at, clock, attempts) VALUES (?, ?, 'running', ?, ?, ?, 1)").run(id, code, now, now, clock);
    this.prune(now);
  }

  /**
   * Takes a paused run for resuming: paused → running in one statement, so two resumes of the same
   * run (even from two processes) cannot both proceed. The pending entry gets the decision.
   */
  claimPaused(id: string, decision: "approved" | "rejected", reason?: string): RunRow & { attempt: number } {
    const now = Date.now();
    return inWriteTransaction(this.db, () => {
      const row = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
      if (!row) throw new RunNotFoundError(`No run ${id} in the journal (never made, or removed by retention).`);
      if (row.status !== "paused" || row.pending_seq === null) throw new RunStateError(`Run ${id} is ${row.status}; only a paused run can be approved or rejected.`);
      this.db.prepare("UPDATE runs SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?").run(now, id);
      this.db.prepare("UPDATE entries SET decision = ?, reason = ?, decided_at = ? WHERE run_id = ? AND seq = ?").run(decision, reason ?? null, now, id, row.pending_seq);
      return { ...row, status: "running" as const, attempt: row.attempts + 1 };
    });
  }

  entryRows(id: string): EntryRow[] {
    return this.db.prepare("SELECT * FROM entries WHERE run_id = ? ORDER BY seq").all(id) as unknown as EntryRow[];
  }

  /** A call starts: recorded before the host acts, so a crash mid-call still leaves its trace. */
  begin(id: string, seq: number, kind: "tool" | "step", name: string, input: string | null, attempt: number): void {
    const now = Date.now();
    this.db.prepare("INSERT INTO entries (run_id, seq, kind, name, input, status, started_at, attempt) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)").run(id, seq, kind, name, input, now, attempt);
    this.touch(id, now);
  }

  /** A call's outcome: `output` JSON text, or `error`; `pending` for a call waiting for approval. */
  finish(id: string, seq: number, outcome: { status: "ok"; output: string | null } | { status: "error"; error: { name: string; message: string } } | { status: "pending" }, clock: number | null, attempt: number): void {
    const now = Date.now();
    const output = outcome.status === "ok" ? outcome.output : null;
    const error = outcome.status === "error" ? JSON.stringify(outcome.error) : null;
    // The attempt that ran an approved call for real is the one that finished it.
    this.db.prepare("UPDATE entries SET status = ?, output = ?, error = ?, ended_at = ?, clock = ?, attempt = ? WHERE run_id = ? AND seq = ?")
      .run(outcome.status, output, error, outcome.status === "pending" ? null : now, clock, attempt, id, seq);
    this.touch(id, now);
  }

  /** The run's state after an attempt. */
  settle(id: string, state: { status: "completed"; result: string | null } | { status: "failed"; error: { name: string; message: string } } | { status: "paused"; pendingSeq: number }): void {
    this.db.prepare("UPDATE runs SET status = ?, result = ?, error = ?, pending_seq = ?, updated_at = ? WHERE id = ?").run(
      state.status,
      state.status === "completed" ? state.result : null,
      state.status === "failed" ? JSON.stringify(state.error) : null,
      state.status === "paused" ? state.pendingSeq : null,
      Date.now(),
      id,
    );
  }

  /** The whole record of a run, or undefined. */
  run(id: string): RunRecord | undefined {
    const row = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as RunRow | undefined;
    if (!row) return undefined;
    const entries = this.entryRows(id).map(publicEntry);
    return {
      ...this.summary(row, entries),
      code: row.code,
      clock: row.clock,
      ...(row.result !== null ? { result: JSON.parse(row.result) } : {}),
      entries,
    };
  }

  /** Runs, most recently active first. */
  runs(filter: { status?: RunStatus; limit?: number } = {}): RunSummary[] {
    const rows = (filter.status
      ? this.db.prepare("SELECT * FROM runs WHERE status = ? ORDER BY updated_at DESC LIMIT ?").all(filter.status, filter.limit ?? -1)
      : this.db.prepare("SELECT * FROM runs ORDER BY updated_at DESC LIMIT ?").all(filter.limit ?? -1)) as unknown as RunRow[];
    return rows.map((r) => this.summary(r, r.pending_seq === null ? [] : this.entryRows(r.id).map(publicEntry)));
  }

  /**
   * Retention: runs idle longer than maxAgeMs go, then all but the maxRuns most recently active. A
   * run in progress is never removed under it (its calls are still being written); one whose host
   * stopped is marked failed (RunInterruptedError) first, and then ages like the others. Its call in
   * flight stays "running" in the journal: whether it took effect is unknown.
   */
  prune(now = Date.now()): void {
    const interrupted = new RunInterruptedError("The run's host stopped while it was running; it cannot be resumed.");
    this.db.prepare("UPDATE runs SET status = 'failed', error = ? WHERE status = 'running' AND updated_at < ?")
      .run(JSON.stringify({ name: interrupted.name, message: interrupted.message }), now - this.staleAfterMs);
    this.db.prepare("DELETE FROM runs WHERE status != 'running' AND updated_at < ?").run(now - this.maxAgeMs);
    this.db.prepare(`DELETE FROM runs WHERE status != 'running' AND id NOT IN (
      SELECT id FROM runs ORDER BY updated_at DESC, created_at DESC LIMIT ?)`).run(this.maxRuns);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private touch(id: string, now: number): void {
    this.db.prepare("UPDATE runs SET updated_at = ? WHERE id = ?").run(now, id);
  }

  private summary(row: RunRow, entries: JournalEntry[]): RunSummary {
    const pending = row.pending_seq === null ? undefined : entries.find((e) => e.step === row.pending_seq);
    return {
      runId: row.id,
      status: row.status,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      attempts: row.attempts,
      ...(pending ? { pending: { step: pending.step, tool: pending.name, input: pending.input } } : {}),
      ...(row.error !== null ? { error: JSON.parse(row.error) } : {}),
    };
  }
}

function publicEntry(r: EntryRow): JournalEntry {
  return {
    step: r.seq,
    kind: r.kind,
    name: r.name,
    ...(r.input !== null ? { input: JSON.parse(r.input) } : {}),
    status: r.status,
    ...(r.status === "ok" && r.output !== null ? { result: JSON.parse(r.output) } : {}),
    ...(r.error !== null ? { error: JSON.parse(r.error) } : {}),
    ...(r.decision ? { approval: { decision: r.decision, ...(r.reason !== null ? { reason: r.reason } : {}), decidedAt: r.decided_at! } } : {}),
    startedAt: r.started_at,
    ...(r.ended_at !== null ? { endedAt: r.ended_at, durationMs: r.ended_at - Math.max(r.started_at, r.decided_at ?? 0) } : {}),
    attempt: r.attempt,
    ...(r.clock !== null ? { clock: r.clock } : {}),
  };
}
