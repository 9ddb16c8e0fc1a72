/**
 * Leases with fencing tokens, in PostgreSQL: the one record that says which host owns a thing (an
 * actor) right now. Every time ownership changes hands the token grows, and a write made on the
 * owner's behalf carries the token it was granted: the write's own transaction checks it against the
 * lease (`checkFence`), so an old owner that was paused (GC, a stopped VM) past its lease and wakes up
 * later cannot write over the new owner's state (Kleppmann's fencing tokens).
 */
import type { Queryable } from "./postgres.ts";
import { MayflyError } from "../../errors.ts";

export const LEASES_DDL = `CREATE TABLE IF NOT EXISTS mayfly_leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  token BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
)`;

/** A write made under a lease: the lease's name and the token the writer was granted. */
export interface Fence { lease: string; token: bigint }

/** A write carried a fencing token older than the lease's current one: its writer no longer owns the lease. */
export class FencedError extends MayflyError {
  override name = "FencedError";
}

/**
 * Inside the writing transaction: locks the lease row against a concurrent takeover (FOR SHARE) and
 * refuses the write unless the writer's token is still the lease's. The lease's expiry is not
 * checked here: a lease that expired but was not taken over by anyone still fences nobody out.
 */
export async function checkFence(client: Queryable, fence: Fence): Promise<void> {
  const { rows } = await client.query("SELECT token FROM mayfly_leases WHERE name = $1 FOR SHARE", [fence.lease]);
  const current = rows[0] ? BigInt(rows[0].token) : undefined;
  if (current !== fence.token) {
    throw new FencedError(`Write refused: lease "${fence.lease}" is held with token ${current ?? "none"}, the writer had ${fence.token}.`);
  }
}
