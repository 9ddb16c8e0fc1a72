/**
 * A durable actor's `ctx.storage` in the guest (Cloudflare's DurableObjectStorage): SQL and KV calls
 * are synchronous host calls into the executor's actor service
 * (engine/executor/services/actor-storage.ts), so they complete before they return; alarms go to
 * the actor's control channel in the host.
 */
import { callHost, startHostTask } from "./host-calls.ts";

function cap(id: number, method: string, args: unknown[]): Promise<unknown> {
  return startHostTask<unknown>("cap", "call", id, method, args).promise;
}

function store<T>(op: string, ...args: unknown[]): T {
  return callHost<T>("actor", op, ...args);
}

type Row = Record<string, unknown>;
interface SqlResult { columnNames: string[]; rows: unknown[][]; rowsRead: number; rowsWritten: number }

/** Bytes come back as ArrayBuffers, as on Cloudflare. */
function cell(v: unknown): unknown {
  return v instanceof Uint8Array ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v;
}

class SqlStorageCursor {
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
  #rows: unknown[][];
  #i = 0;
  constructor(r: SqlResult) {
    this.columnNames = r.columnNames;
    this.rowsRead = r.rowsRead;
    this.rowsWritten = r.rowsWritten;
    this.#rows = r.rows.map((row) => row.map(cell));
  }
  #object(row: unknown[]): Row {
    const o: Row = {};
    this.columnNames.forEach((c, i) => (o[c] = row[i]));
    return o;
  }
  next(): { done: boolean; value?: Row } {
    if (this.#i >= this.#rows.length) return { done: true };
    return { done: false, value: this.#object(this.#rows[this.#i++]!) };
  }
  toArray(): Row[] {
    const rest = this.#rows.slice(this.#i).map((r) => this.#object(r));
    this.#i = this.#rows.length;
    return rest;
  }
  one(): Row {
    const rest = this.toArray();
    if (rest.length === 0) throw new Error("Expected exactly one result from SQL query, but got no results.");
    if (rest.length > 1) throw new Error("Expected exactly one result from SQL query, but got multiple results.");
    return rest[0]!;
  }
  *raw(): IterableIterator<unknown[]> {
    while (this.#i < this.#rows.length) yield this.#rows[this.#i++]!;
  }
  [Symbol.iterator](): Iterator<Row> {
    return { next: () => this.next() as IteratorResult<Row> };
  }
}

type ListOptions = { start?: string; startAfter?: string; end?: string; prefix?: string; reverse?: boolean; limit?: number };

export function makeStorage(control: number) {
  const sql = Object.freeze({
    exec(query: string, ...bindings: unknown[]) {
      return new SqlStorageCursor(store<SqlResult>("sql", String(query), bindings));
    },
    get databaseSize(): number {
      return store<number>("databaseSize");
    },
  });
  const kv = {
    async get(keys: string | string[]) {
      if (Array.isArray(keys)) {
        const values = store<unknown[]>("get", keys);
        const out = new Map<string, unknown>();
        keys.forEach((k, i) => { if (values[i] !== undefined) out.set(k, values[i]); });
        return out;
      }
      return store<unknown[]>("get", [keys])[0];
    },
    async put(keyOrEntries: string | Record<string, unknown>, value?: unknown) {
      const entries = typeof keyOrEntries === "string" ? [[keyOrEntries, value]] : Object.entries(keyOrEntries ?? {});
      store("put", entries);
    },
    async delete(keys: string | string[]) {
      const n = store<number>("delete", Array.isArray(keys) ? keys : [keys]);
      return Array.isArray(keys) ? n : n > 0;
    },
    async list(options: ListOptions = {}) {
      return new Map(store<[string, unknown][]>("list", options));
    },
  };
  const storage = {
    sql,
    ...kv,
    async deleteAll() {
      store("deleteAll");
      await cap(control, "deleteAlarm", []);
    },
    /** All-or-nothing: a throw rolls back every write made inside `fn`. */
    transactionSync<T>(fn: () => T): T {
      store("begin");
      let out: T;
      try {
        out = fn();
      } catch (e) {
        store("rollback");
        throw e;
      }
      store("commit");
      return out;
    },
    /**
     * As transactionSync, for an async closure; `txn` has the KV methods and rollback(). The closure
     * should await only storage: other calls into the actor may run while it awaits anything else,
     * and their writes would join this transaction.
     */
    async transaction<T>(fn: (txn: unknown) => Promise<T> | T): Promise<T> {
      store("begin");
      let rolledBack = false;
      const txn = { ...kv, rollback() { if (!rolledBack) { rolledBack = true; store("rollback"); } } };
      try {
        const out = await fn(txn);
        if (!rolledBack) store("commit");
        return out;
      } catch (e) {
        if (!rolledBack) store("rollback");
        throw e;
      }
    },
    async getAlarm() {
      return (await cap(control, "getAlarm", [])) as number | null;
    },
    async setAlarm(time: number | Date) {
      const t = time instanceof Date ? time.getTime() : Number(time);
      if (!Number.isFinite(t)) throw new TypeError("setAlarm() takes a time in milliseconds since the epoch, or a Date.");
      await cap(control, "setAlarm", [t]);
    },
    async deleteAlarm() {
      await cap(control, "deleteAlarm", []);
    },
    /** Every write is durable when its call returns: nothing is ever waiting to be flushed. */
    async sync() {},
  };
  return Object.freeze(storage);
}
