/**
 * Cross-host change events for workspaces on PostgreSQL: a committing transaction NOTIFYs the
 * workspace's name on one channel (delivered only if it commits), and each backend keeps at most one
 * connection LISTENing, shared by all its watchers and held only while someone watches. A watcher is
 * told "something changed", not what: it reads that back with changesSince(), so a notification lost
 * to a dropped connection costs only latency (each reconnection tells every watcher to catch up).
 */
import type pg from "pg";
import type { PostgresBackend } from "../storage/postgres.ts";

export const CHANNEL = "mayfly_workspace";
const RETRY_MS = 1_000;

class Listener {
  private readonly backend: PostgresBackend;
  private readonly subscribers = new Map<string, Set<() => void>>();
  private client: { client: pg.PoolClient; release(error?: Error | boolean): void } | undefined;
  private connecting = false;

  constructor(backend: PostgresBackend) {
    this.backend = backend;
  }

  subscribe(name: string, onChange: () => void): () => void {
    let set = this.subscribers.get(name);
    if (!set) this.subscribers.set(name, (set = new Set()));
    set.add(onChange);
    void this.connect();
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.subscribers.delete(name);
      if (this.subscribers.size === 0) this.disconnect();
    };
  }

  private async connect(): Promise<void> {
    if (this.client || this.connecting) return;
    this.connecting = true;
    try {
      const client = await this.backend.pool.connect();
      const onNotification = (m: pg.Notification) => this.tell(m.payload ?? "");
      // Once only: an error during UNLISTEN would otherwise release the client a second time.
      let released = false;
      const release = (error?: Error | boolean) => {
        if (released) return;
        released = true;
        // Back in the pool the client is the pool's: these handlers must not outlive this use of it.
        client.off("notification", onNotification);
        client.off("error", onError);
        client.release(error);
      };
      const onError = (error: Error) => {
        if (this.client?.client === client) this.client = undefined;
        release(error);
        this.retry();
      };
      client.on("notification", onNotification);
      client.on("error", onError);
      try {
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (error) {
        release(error as Error);
        throw error;
      }
      this.client = { client, release };
      // Whatever committed before LISTEN took effect is read back now.
      for (const name of this.subscribers.keys()) this.tell(name);
      if (this.subscribers.size === 0) this.disconnect();
    } catch {
      this.retry();
    } finally {
      this.connecting = false;
    }
  }

  private retry(): void {
    if (this.subscribers.size > 0) setTimeout(() => void this.connect(), RETRY_MS).unref();
  }

  private tell(name: string): void {
    for (const onChange of this.subscribers.get(name) ?? []) onChange();
  }

  private disconnect(): void {
    const held = this.client;
    this.client = undefined;
    if (held) held.client.query(`UNLISTEN ${CHANNEL}`).then(() => held.release(), (e: Error) => held.release(e));
  }
}

const listeners = new WeakMap<PostgresBackend, Listener>();

/** Calls `onChange` whenever a transaction that changed workspace `name` commits, on any host. */
export function onWorkspaceChange(backend: PostgresBackend, name: string, onChange: () => void): () => void {
  let listener = listeners.get(backend);
  if (!listener) listeners.set(backend, (listener = new Listener(backend)));
  return listener.subscribe(name, onChange);
}
