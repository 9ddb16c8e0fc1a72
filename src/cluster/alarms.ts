/**
 * Actor alarms in cluster mode: one row per actor in `mayfly_alarms`, so an alarm outlives the host
 * that set it. Every host polls for due alarms of the namespaces it serves and claims them (FOR
 * UPDATE SKIP LOCKED, then a claim that expires), so each fires on one host at a time; firing goes
 * through the namespace, which runs the actor here or forwards to its owner. The retry rules are the
 * single-host AlarmStore's (Cloudflare's): up to six retries, backing off from 1 s.
 */
import type { PostgresBackend } from "../bindings/storage/postgres.ts";
import type { ActorAlarms, FireAlarm } from "../actors/alarms.ts";

export const ALARMS_DDL = `CREATE TABLE IF NOT EXISTS mayfly_alarms (
  namespace TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT,
  time BIGINT NOT NULL,
  retries INT NOT NULL DEFAULT 0,
  due BIGINT NOT NULL,
  claimed_until BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (namespace, id)
)`;

const MAX_RETRIES = 6;
const FIRST_RETRY_MS = 1_000;
/** A claimed alarm whose host died is claimed again after this long. */
const CLAIM_MS = 60_000;
const NOW = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

export class ClusterAlarms {
  readonly #backend: PostgresBackend;
  readonly #fire = new Map<string, FireAlarm>();
  /**
   * Alarms whose alarm() has returned and whose row is being deleted, by namespace and id: until the
   * DELETE commits, getAlarm() must not report them (on one host the delete is synchronous, so no call
   * into the actor can see a fired alarm as pending).
   */
  readonly #fired = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #polling = false;

  constructor(backend: PostgresBackend, pollMs = 500) {
    this.#backend = backend;
    this.#timer = setInterval(() => void this.poll(), pollMs);
    this.#timer.unref();
  }

  /** The alarms of one namespace (what AlarmStore is on a single host). */
  forNamespace(namespace: string, fire: FireAlarm): ActorAlarms {
    this.#fire.set(namespace, fire);
    const db = this.#backend;
    return {
      get: async (id) => {
        const { rows } = await db.query<{ time: string }>("SELECT time FROM mayfly_alarms WHERE namespace = $1 AND id = $2", [namespace, id]);
        const time = rows[0] ? Number(rows[0].time) : null;
        return time !== null && this.#fired.get(alarmKey(namespace, id)) === time ? null : time;
      },
      set: async (id, name, time) => {
        if (!Number.isFinite(time)) throw new TypeError("An alarm's time must be a number of milliseconds since the epoch.");
        const t = Math.trunc(time);
        await db.query(
          `INSERT INTO mayfly_alarms (namespace, id, name, time, retries, due, claimed_until) VALUES ($1, $2, $3, $4, 0, $4, 0)
           ON CONFLICT (namespace, id) DO UPDATE SET name = $3, time = $4, retries = 0, due = $4, claimed_until = 0`, [namespace, id, name ?? null, t]);
      },
      delete: async (id) => {
        await db.query("DELETE FROM mayfly_alarms WHERE namespace = $1 AND id = $2", [namespace, id]);
      },
      close: () => void this.#fire.delete(namespace),
    };
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Claims the due alarms of this host's namespaces and fires them. */
  async poll(): Promise<void> {
    if (this.#polling || this.#fire.size === 0) return;
    this.#polling = true;
    try {
      const { rows } = await this.#backend.query<{ namespace: string; id: string; name: string | null; time: string; retries: number }>(
        `UPDATE mayfly_alarms a SET claimed_until = ${NOW} + ${CLAIM_MS}
         FROM (SELECT namespace, id FROM mayfly_alarms WHERE namespace = ANY($1) AND due <= ${NOW} AND claimed_until < ${NOW}
               ORDER BY due LIMIT 32 FOR UPDATE SKIP LOCKED) d
         WHERE a.namespace = d.namespace AND a.id = d.id
         RETURNING a.namespace, a.id, a.name, a.time, a.retries`, [[...this.#fire.keys()]]);
      for (const a of rows) void this.#run(a.namespace, a.id, a.name ?? undefined, Number(a.time), a.retries);
    } catch {
      // PostgreSQL unreachable: the alarms wait in their rows for the next poll.
    } finally {
      this.#polling = false;
    }
  }

  async #run(namespace: string, id: string, name: string | undefined, time: number, retries: number): Promise<void> {
    const fire = this.#fire.get(namespace);
    if (!fire) return;
    const db = this.#backend;
    const key = alarmKey(namespace, id);
    try {
      await fire(id, name, { retryCount: retries, isRetry: retries > 0 });
      // Done: gone, unless alarm() itself set a new one (another time, whose claim was reset).
      this.#fired.set(key, time);
      await db.query("DELETE FROM mayfly_alarms WHERE namespace = $1 AND id = $2 AND time = $3", [namespace, id, time]);
    } catch {
      if (retries + 1 > MAX_RETRIES) await db.query("DELETE FROM mayfly_alarms WHERE namespace = $1 AND id = $2 AND time = $3", [namespace, id, time]).catch(() => {});
      else await db.query(`UPDATE mayfly_alarms SET retries = $4, due = ${NOW} + $5, claimed_until = 0 WHERE namespace = $1 AND id = $2 AND time = $3`,
        [namespace, id, time, retries + 1, FIRST_RETRY_MS * 2 ** retries]).catch(() => {});
    } finally {
      if (this.#fired.get(key) === time) this.#fired.delete(key);
    }
  }
}

function alarmKey(namespace: string, id: string): string {
  return `${namespace}\0${id}`;
}
