/**
 * Alarms of one actor namespace: one row per actor in the namespace's own SQLite file (WAL,
 * synchronous=FULL), so an alarm set before a crash or restart fires once a namespace over the same
 * data directory is open again. One timer, for the earliest alarm, runs them.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../errors.ts";

/** Cloudflare retries a failing alarm() with exponential backoff, up to six times. */
const MAX_RETRIES = 6;
const FIRST_RETRY_MS = 1_000;
/** setTimeout's longest delay; a later alarm is re-armed when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export type FireAlarm = (id: string, name: string | undefined, info: { retryCount: number; isRetry: boolean }) => Promise<void>;

/** A namespace's alarms: this file (one host), or shared rows in PostgreSQL (cluster mode, src/cluster/alarms.ts). */
export interface ActorAlarms {
  get(id: string): number | null | Promise<number | null>;
  set(id: string, name: string | undefined, time: number): void | Promise<void>;
  delete(id: string): void | Promise<void>;
  close(): void;
}

export class AlarmStore implements ActorAlarms {
  private readonly db: DatabaseSync;
  private readonly fire: FireAlarm;
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<string>();
  private closed = false;

  constructor(dataDir: string, kind: string, fire: FireAlarm) {
    this.db = claim(dataDir, kind);
    this.db.exec("CREATE TABLE IF NOT EXISTS alarms (id TEXT PRIMARY KEY, name TEXT, time INTEGER NOT NULL, retries INTEGER NOT NULL DEFAULT 0, due INTEGER NOT NULL) WITHOUT ROWID");
    this.fire = fire;
    this.arm();
  }

  get(id: string): number | null {
    const row = this.db.prepare("SELECT time FROM alarms WHERE id = ?").get(id) as { time: number } | undefined;
    return row?.time ?? null;
  }

  set(id: string, name: string | undefined, time: number): void {
    if (!Number.isFinite(time)) throw new TypeError("An alarm's time must be a number of milliseconds since the epoch.");
    const t = Math.trunc(time);
    this.db.prepare("INSERT INTO alarms (id, name, time, retries, due) VALUES (?, ?, ?, 0, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, time = excluded.time, retries = 0, due = excluded.due")
      .run(id, name ?? null, t, t);
    this.arm();
  }

  delete(id: string): void {
    this.db.prepare("DELETE FROM alarms WHERE id = ?").run(id);
    this.arm();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.db.close();
  }

  /** Sets the timer for the earliest alarm not already running. */
  private arm(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    // Alarms running now are skipped (in memory only: after a crash, a running alarm fires again).
    const rows = this.db.prepare("SELECT id, due FROM alarms ORDER BY due LIMIT ?").all(this.running.size + 1) as { id: string; due: number }[];
    const next = rows.find((r) => !this.running.has(r.id));
    if (!next) return;
    this.timer = setTimeout(() => this.runDue(), Math.min(Math.max(0, next.due - Date.now()), MAX_DELAY_MS));
    this.timer.unref();
  }

  private runDue(): void {
    if (this.closed) return;
    const due = this.db.prepare("SELECT id, name, time, retries FROM alarms WHERE due <= ?").all(Date.now()) as { id: string; name: string | null; time: number; retries: number }[];
    for (const a of due) {
      if (this.running.has(a.id)) continue;
      this.running.add(a.id);
      void this.fire(a.id, a.name ?? undefined, { retryCount: a.retries, isRetry: a.retries > 0 }).then(
        // Done: gone, unless alarm() itself set a new one (another time).
        () => { if (!this.closed) this.db.prepare("DELETE FROM alarms WHERE id = ? AND time = ?").run(a.id, a.time); },
        () => {
          if (this.closed) return;
          if (a.retries + 1 > MAX_RETRIES) this.db.prepare("DELETE FROM alarms WHERE id = ? AND time = ?").run(a.id, a.time);
          else this.db.prepare("UPDATE alarms SET retries = ?, due = ? WHERE id = ? AND time = ?").run(a.retries + 1, Date.now() + FIRST_RETRY_MS * 2 ** a.retries, a.id, a.time);
        },
      ).finally(() => {
        this.running.delete(a.id);
        this.arm();
      });
    }
    this.arm();
  }
}

/**
 * Opens the namespace's alarms file and holds its lock for as long as the namespace is open (SQLite's
 * exclusive locking mode; the OS drops the lock if the process dies, even by kill -9): a second
 * process opening the same namespace fails at once instead of running second live instances of its
 * actors.
 */
function claim(dataDir: string, kind: string): DatabaseSync {
  const dir = resolve(dataDir, kind);
  mkdirSync(dir, { recursive: true });
  const db = new DatabaseSync(join(dir, "_alarms.sqlite"), { timeout: 0 });
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("CREATE TABLE IF NOT EXISTS owner (one INTEGER PRIMARY KEY CHECK (one = 1), pid INTEGER NOT NULL)");
    db.prepare("INSERT INTO owner (one, pid) VALUES (1, ?) ON CONFLICT(one) DO UPDATE SET pid = excluded.pid").run(process.pid);
  } catch (e) {
    db.close();
    if (/locked|busy/i.test((e as Error).message)) throw new ConfigError(`The actor namespace in ${dir} is open in another process: each actor may have one live instance.`);
    throw e;
  }
  return db;
}
