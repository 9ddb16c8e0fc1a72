/**
 * Where a D1 database's SQLite lives: one local file (the default), or a replica of a log in
 * PostgreSQL shared by many hosts (`backend`). The D1 surface (index.ts) runs the same statements,
 * authorizer and quotas on either; a store only decides how a transaction becomes durable.
 */
import type { DatabaseSync } from "node:sqlite";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PostgresBackend } from "../storage/postgres.ts";
import { ReplicatedSqlite } from "../storage/replicated-sqlite.ts";
import { fileNameFor, inWriteTransaction, openStore } from "../storage/sqlite-file.ts";
import type { Authorizer } from "../storage/sqlite-replica.ts";

export interface SqlStore {
  /** Runs `fn` as one write transaction, durable when the promise resolves; a throw rolls it back. */
  write<T>(fn: (db: DatabaseSync) => T): Promise<T>;
  /** Runs `fn` where any write fails (read-only databases). */
  read<T>(fn: (db: DatabaseSync) => T): Promise<T>;
  /** A position in the database's history that grows with every write (D1 sessions' bookmark). */
  bookmark(): Promise<string>;
  close(): void;
}

export interface StoreOptions {
  name: string;
  dataDir: string;
  readOnly: boolean;
  authorizer: Authorizer;
}

/** One SQLite file, <dataDir>/sql/<name>.sqlite: durable on COMMIT (WAL, synchronous=FULL). */
export class LocalSqlStore implements SqlStore {
  private readonly db: DatabaseSync;
  private readonly openedAt = Date.now();

  constructor(options: StoreOptions) {
    if (options.readOnly && !existsSync(join(resolve(options.dataDir, "sql"), `${fileNameFor(options.name)}.sqlite`))) {
      openStore(options.dataDir, "sql", options.name).close(); // a read-only database starts empty
    }
    this.db = openStore(options.dataDir, "sql", options.name, { readOnly: options.readOnly });
    this.db.setAuthorizer(options.authorizer);
  }

  async write<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return inWriteTransaction(this.db, () => fn(this.db));
  }

  async read<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return fn(this.db);
  }

  /** One file has no replicas: the bookmark orders the writes seen through this binding. */
  async bookmark(): Promise<string> {
    const { n } = this.db.prepare("SELECT total_changes() AS n").get() as { n: number };
    return `${this.openedAt.toString(16).padStart(12, "0")}-${n.toString(16).padStart(12, "0")}`;
  }

  close(): void {
    this.db.close();
  }
}

export interface ReplicatedStoreOptions extends StoreOptions {
  backend: PostgresBackend;
  /** This host's replica files (default <dataDir>/sql-replicas). */
  replicaDir?: string;
  compactEvery?: number;
}

/** A replica of the database's log in PostgreSQL (see storage/replicated-sqlite.ts). */
export class ReplicatedSqlStore implements SqlStore {
  private readonly replica: ReplicatedSqlite;

  constructor(options: ReplicatedStoreOptions) {
    this.replica = new ReplicatedSqlite(options.backend, {
      id: `d1/${options.name}`,
      dir: options.replicaDir ?? join(resolve(options.dataDir), "sql-replicas"),
      compactEvery: options.compactEvery,
      authorizer: options.authorizer,
    });
  }

  write<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return this.replica.write(fn);
  }

  read<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return this.replica.read(fn);
  }

  /** The log's version: the same on every host, so a bookmark carries across hosts. */
  async bookmark(): Promise<string> {
    await this.replica.open();
    return `${"0".repeat(12)}-${this.replica.version.toString(16).padStart(12, "0")}`;
  }

  close(): void {
    this.replica.close();
  }
}
