/**
 * This host's leases in `mayfly_leases`: acquired when absent, expired, or left by an earlier
 * process of the same host id (each acquisition from another owner bumps the fencing token), renewed
 * together on a timer, released (expired now, the token kept) on eviction and drain. Expiry is judged
 * by PostgreSQL's clock; this host believes it holds a lease only until its own clock says the lease
 * time has passed since it asked, so a host that cannot renew stops serving before anyone else starts.
 */
import type { PostgresBackend } from "../bindings/storage/postgres.ts";

export type Acquired = { held: true; token: bigint } | { held: false; owner: string; address: string | undefined; remainingMs: number };

interface Held { token: bigint; until: number }

export interface LeasesOptions {
  backend: PostgresBackend;
  hostId: string;
  /** hostId#incarnation: what this process writes as the owner. */
  owner: string;
  leaseMs: number;
  /** A lease this host held was found lost (taken over, or not renewed in time). */
  onLost: (name: string) => void;
}

export class Leases {
  readonly #o: LeasesOptions;
  readonly #held = new Map<string, Held>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: LeasesOptions) {
    this.#o = options;
    this.#timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(options.leaseMs / 3)));
    this.#timer.unref();
  }

  /** The token when this host holds `name` with at least a quarter of the lease time left. */
  holds(name: string): bigint | undefined {
    const h = this.#held.get(name);
    return h && h.until - Date.now() > this.#o.leaseMs / 4 ? h.token : undefined;
  }

  /** Takes (or renews) the lease, or says who holds it and at which address. */
  async acquire(name: string): Promise<Acquired> {
    const { backend, owner, hostId, leaseMs } = this.#o;
    const asked = Date.now();
    const { rows } = await backend.query<{ token: string }>(
      `INSERT INTO mayfly_leases AS l (name, owner, token, expires_at) VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET
         token = CASE WHEN l.owner = $2 THEN l.token ELSE l.token + 1 END,
         owner = $2, expires_at = EXCLUDED.expires_at
       WHERE l.owner = $2 OR l.expires_at < now() OR split_part(l.owner, '#', 1) = $4
       RETURNING token`, [name, owner, leaseMs, hostId]);
    if (rows[0]) {
      const token = BigInt(rows[0].token);
      this.#held.set(name, { token, until: asked + leaseMs });
      return { held: true, token };
    }
    this.#held.delete(name);
    const other = await backend.query<{ owner: string; address: string | null; remaining: number }>(
      `SELECT l.owner, h.address, GREATEST(0, EXTRACT(EPOCH FROM (l.expires_at - now())) * 1000)::float8 AS remaining
       FROM mayfly_leases l LEFT JOIN mayfly_hosts h ON h.id = split_part(l.owner, '#', 1) WHERE l.name = $1`, [name]);
    const row = other.rows[0];
    // Released or expired between the two statements: the caller asks again.
    if (!row) return { held: false, owner: "", address: undefined, remainingMs: 0 };
    return { held: false, owner: row.owner, address: row.address ?? undefined, remainingMs: Number(row.remaining) };
  }

  /** Forgets a lease without telling PostgreSQL (its writes failed: it may not be this host's any more). */
  forget(name: string): void {
    this.#held.delete(name);
  }

  /** Expires the lease now, keeping its token, so any host may take it at once. */
  async release(name: string): Promise<void> {
    if (!this.#held.delete(name)) return;
    await this.#o.backend.query("UPDATE mayfly_leases SET expires_at = now() - interval '1 millisecond' WHERE name = $1 AND owner = $2", [name, this.#o.owner]).catch(() => {});
  }

  async releaseAll(): Promise<void> {
    clearInterval(this.#timer);
    const names = [...this.#held.keys()];
    this.#held.clear();
    if (names.length) await this.#o.backend.query("UPDATE mayfly_leases SET expires_at = now() - interval '1 millisecond' WHERE name = ANY($1) AND owner = $2", [names, this.#o.owner]).catch(() => {});
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Extends every held lease; one not renewed (taken over) or past its time (PostgreSQL unreachable) is lost. */
  async renew(): Promise<void> {
    const names = [...this.#held.keys()];
    if (names.length === 0) return;
    const asked = Date.now();
    try {
      const { rows } = await this.#o.backend.query<{ name: string }>(
        "UPDATE mayfly_leases SET expires_at = now() + $3 * interval '1 millisecond' WHERE name = ANY($1) AND owner = $2 RETURNING name",
        [names, this.#o.owner, this.#o.leaseMs]);
      const renewed = new Set(rows.map((r) => r.name));
      for (const name of names) {
        const h = this.#held.get(name);
        if (!h) continue;
        if (renewed.has(name)) h.until = asked + this.#o.leaseMs;
        else this.#lose(name);
      }
    } catch {
      for (const [name, h] of this.#held) if (h.until <= Date.now()) this.#lose(name);
    }
  }

  #lose(name: string): void {
    this.#held.delete(name);
    this.#o.onLost(name);
  }
}
