/**
 * The PostgreSQL backend: one connection pool shared by every binding that stores its data in
 * PostgreSQL instead of the embedded SQLite files (`kv({ name, backend })`, `sql(...)`,
 * `workspace(...)`, the cluster's registry and leases). Each part creates its own tables through
 * `migrate()`, once per backend, so a binding used on its own needs no setup step.
 *
 * Durability: PostgreSQL's default `synchronous_commit = on` means a COMMIT has been flushed to the
 * server's WAL when it returns, so a write a binding acknowledges survives the loss of any mayfly
 * host (and a crash of the server itself).
 */
import pg from "pg";
import { BackendUnavailableError, MayflyError } from "../../errors.ts";

export interface PostgresBackendOptions {
  /** A libpq-style URL: postgres://user:password@host:port/database */
  url: string;
  /** Connections in the pool (default 10). */
  maxConnections?: number;
  /** How long a query waits for a free connection before failing (default 10 s). */
  connectionTimeoutMs?: number;
}

export type Queryable = Pick<pg.PoolClient, "query">;

export class PostgresBackend {
  readonly kind = "postgres" as const;
  readonly pool: pg.Pool;
  readonly #migrations = new Map<string, Promise<void>>();

  constructor(options: PostgresBackendOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    });
    // An idle client losing its connection (server restart) must not crash the host.
    this.pool.on("error", () => {});
  }

  /**
   * One statement on any pooled connection. A `{ name, text }` query is prepared once per connection
   * and planned once, not per call (worth ~0.25 ms on a hot read path).
   */
  async query<R extends pg.QueryResultRow = any>(query: string | { name: string; text: string }, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return typeof query === "string" ? await this.pool.query<R>(query, params) : await this.pool.query<R>({ ...query, values: params });
    } catch (error) {
      throw unavailable(error);
    }
  }

  /**
   * Runs `fn` in one transaction on one connection; a throw rolls it back. `isolation` defaults to
   * READ COMMITTED; pass "serializable" where a read decides a write and no row lock covers it.
   */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, isolation: "read committed" | "repeatable read" | "serializable" = "read committed"): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw unavailable(error);
    }
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}`);
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error instanceof MayflyError || !isConnectionError(error) ? error : unavailable(error);
    } finally {
      client.release();
    }
  }

  /**
   * Runs a part's DDL once per backend (idempotent statements: CREATE TABLE IF NOT EXISTS ...). Two
   * hosts migrating at once are serialised by an advisory lock, so neither sees half a schema.
   */
  migrate(name: string, ddl: string): Promise<void> {
    let done = this.#migrations.get(name);
    if (!done) {
      done = this.transaction(async (c) => {
        await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`mayfly.migrate.${name}`]);
        await c.query(ddl);
      });
      done.catch(() => this.#migrations.delete(name));
      this.#migrations.set(name, done);
    }
    return done;
  }

  /** Whether the server answers now (readiness). */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    const timer = new Promise<false>((resolve) => setTimeout(resolve, timeoutMs, false).unref());
    const probe = this.pool.query("SELECT 1").then(() => true, () => false);
    return Promise.race([probe, timer]);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export function postgresBackend(options: PostgresBackendOptions): PostgresBackend {
  return new PostgresBackend(options);
}

/** Connection-level failures (refused, reset, timed out, server shutting down) as opposed to SQL errors. */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (typeof e?.code === "string" && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|57P01|57P02|57P03|08\d\d\d)$/.test(e.code)) return true;
  return /timeout exceeded when trying to connect|Connection terminated/i.test(e?.message ?? "");
}

function unavailable(error: unknown): unknown {
  if (!isConnectionError(error)) return error;
  return new BackendUnavailableError(`PostgreSQL is unavailable: ${(error as Error).message}`, { cause: error });
}
