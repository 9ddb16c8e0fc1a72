/**
 * Host membership: one row per host id in `mayfly_hosts` with the address other hosts reach it at,
 * refreshed on a heartbeat. Forwarding finds an actor's owner's address here (joined to its lease).
 */
import type { PostgresBackend } from "../bindings/storage/postgres.ts";

export interface HostRecord { id: string; address: string; heartbeatAgeMs: number; draining: boolean }

export class Membership {
  readonly #backend: PostgresBackend;
  readonly #id: string;
  readonly #owner: string;
  readonly #address: string;
  readonly #timer: NodeJS.Timeout;

  constructor(backend: PostgresBackend, id: string, owner: string, address: string, intervalMs: number) {
    this.#backend = backend;
    this.#id = id;
    this.#owner = owner;
    this.#address = address;
    this.#timer = setInterval(() => void this.beat().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  /** Writes this host's row (its address may have changed since a previous process). */
  async beat(draining = false): Promise<void> {
    await this.#backend.query(
      `INSERT INTO mayfly_hosts (id, owner, address, heartbeat_at, draining) VALUES ($1, $2, $3, now(), $4)
       ON CONFLICT (id) DO UPDATE SET owner = $2, address = $3, heartbeat_at = now(), draining = $4`,
      [this.#id, this.#owner, this.#address, draining]);
  }

  async hosts(): Promise<HostRecord[]> {
    const { rows } = await this.#backend.query<{ id: string; address: string; age: number; draining: boolean }>(
      "SELECT id, address, (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::float8 AS age, draining FROM mayfly_hosts ORDER BY id");
    return rows.map((r) => ({ id: r.id, address: r.address, heartbeatAgeMs: Number(r.age), draining: r.draining }));
  }

  async stop(draining: boolean): Promise<void> {
    clearInterval(this.#timer);
    if (draining) await this.beat(true).catch(() => {});
  }
}
