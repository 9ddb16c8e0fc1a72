// D1 on PostgreSQL (issue 15): how should a SQLite database (SQLite dialect kept) live in PostgreSQL?
// Measures, on a throwaway local PostgreSQL (test/postgres.ts), p50/p99 latency of
//   - a point read with nothing new to catch up,
//   - a single-row insert into a small database,
//   - a single-row insert into a database of 10k rows (~1.3 MB),
// for (a) replicated changesets (src/bindings/storage/replicated-sqlite.ts, what D1 uses),
//     (b) the naive alternative: upload the whole database image on every write (optimistic version),
//     (c) for reference, one local SQLite file (D1 without a backend; WAL, synchronous=FULL).
// Run: node bench/d1-postgres.ts   (not part of `npm run bench`)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { postgresBackend, type PostgresBackend } from "../src/bindings/storage/postgres.ts";
import { ReplicatedSqlite } from "../src/bindings/storage/replicated-sqlite.ts";
import { inWriteTransaction, openStore } from "../src/bindings/storage/sqlite-file.ts";
import { findPostgres, TestPostgres } from "../test/postgres.ts";
import { summarize } from "./stats.ts";

/** What each approach offers the D1 binding: a read and a write transaction over a DatabaseSync. */
interface Store {
  read<T>(fn: (db: DatabaseSync) => T): Promise<T>;
  write<T>(fn: (db: DatabaseSync) => T): Promise<T>;
  close(): void;
}

/** (b) One row per database holding its whole image; every write uploads the image (version-checked). */
class ImagePerWrite implements Store {
  private readonly db: DatabaseSync;
  private version = 0;
  private readonly backend: PostgresBackend;
  private readonly id: string;
  constructor(backend: PostgresBackend, id: string, path: string) {
    this.backend = backend;
    this.id = id;
    this.db = new DatabaseSync(path);
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
  }
  static async setup(backend: PostgresBackend): Promise<void> {
    await backend.migrate("bench-images", "CREATE TABLE IF NOT EXISTS bench_images (db TEXT PRIMARY KEY, version BIGINT NOT NULL, bytes BYTEA NOT NULL)");
  }
  async read<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    // Catch-up check: one round trip (the image itself is fetched only when newer; never, here).
    const { rows } = await this.backend.query("SELECT version FROM bench_images WHERE db = $1", [this.id]);
    if (rows[0] && Number(rows[0].version) !== this.version) throw new Error("bench: unexpected foreign write");
    return fn(this.db);
  }
  async write<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn(this.db);
      const bytes = this.db.serialize();
      const r = await this.backend.query(
        `INSERT INTO bench_images AS i (db, version, bytes) VALUES ($1, $2::bigint + 1, $3)
         ON CONFLICT (db) DO UPDATE SET version = EXCLUDED.version, bytes = EXCLUDED.bytes WHERE i.version = $2::bigint`,
        [this.id, this.version, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
      if (r.rowCount !== 1) throw new Error("bench: conflict");
      this.db.exec("COMMIT");
      this.version++;
      return result;
    } finally {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
    }
  }
  close(): void {
    this.db.close();
  }
}

/** (c) One local SQLite file, as D1 without a backend. */
class LocalFile implements Store {
  private readonly db: DatabaseSync;
  constructor(dir: string, name: string) {
    this.db = openStore(dir, "sql", name);
  }
  async read<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return fn(this.db);
  }
  async write<T>(fn: (db: DatabaseSync) => T): Promise<T> {
    return inWriteTransaction(this.db, () => fn(this.db));
  }
  close(): void {
    this.db.close();
  }
}

const PAYLOAD = "x".repeat(100);

async function fill(store: Store, rows: number): Promise<void> {
  await store.write((db) => db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
  await store.write((db) => {
    const ins = db.prepare("INSERT INTO t (v) VALUES (?)");
    for (let i = 0; i < rows; i++) ins.run(PAYLOAD);
  });
}

async function time(n: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(10, n); i++) await op(i); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    out.push(performance.now() - t0);
  }
  return out;
}

interface Row { store: string; op: string; p50: number; p99: number; n: number }

async function measure(label: string, make: (name: string) => Store, n: { read: number; insert: number; insertBig: number }): Promise<Row[]> {
  const rows: Row[] = [];
  const small = make("small");
  await fill(small, 100);
  const read = await time(n.read, (i) => small.read((db) => db.prepare("SELECT v FROM t WHERE id = ?").get(1 + (i % 100))));
  const insert = await time(n.insert, () => small.write((db) => db.prepare("INSERT INTO t (v) VALUES (?)").run(PAYLOAD)));
  small.close();
  const big = make("big");
  await fill(big, 10_000);
  const insertBig = await time(n.insertBig, () => big.write((db) => db.prepare("INSERT INTO t (v) VALUES (?)").run(PAYLOAD)));
  big.close();
  for (const [op, xs] of [["point read", read], ["insert (100 rows)", insert], ["insert (10k rows)", insertBig]] as const) {
    const s = summarize(xs);
    rows.push({ store: label, op, p50: s.p50, p99: s.p99, n: s.n });
  }
  return rows;
}

async function main(): Promise<void> {
  const found = findPostgres();
  if (typeof found === "string") {
    console.log(`d1-postgres: skipped (${found})`);
    return;
  }
  const pg = await TestPostgres.start();
  const dir = mkdtempSync(join(tmpdir(), "mayfly-bench-d1-"));
  const backend = postgresBackend({ url: await pg.createDatabase("bench") });
  try {
    await ImagePerWrite.setup(backend);
    const n = { read: 500, insert: 300, insertBig: 100 };
    const rows = [
      ...(await measure("(a) replicated changesets", (name) => {
        const r = new ReplicatedSqlite(backend, { id: `bench/${name}`, dir: join(dir, "a"), compactEvery: 1_000 });
        return { read: (fn) => r.read(fn), write: (fn) => r.write(fn), close: () => r.close() };
      }, n)),
      ...(await measure("(b) image per write", (name) => new ImagePerWrite(backend, `bench/${name}`, join(dir, `b-${name}.sqlite`)), { ...n, insertBig: 40 })),
      ...(await measure("(c) local SQLite file", (name) => new LocalFile(join(dir, "c"), name), n)),
    ];
    const fmt = (x: number) => x.toFixed(2).padStart(8);
    console.log(`${"store".padEnd(28)}${"operation".padEnd(20)}${"p50 ms".padStart(8)}${"p99 ms".padStart(8)}${"n".padStart(6)}`);
    for (const r of rows) console.log(`${r.store.padEnd(28)}${r.op.padEnd(20)}${fmt(r.p50)}${fmt(r.p99)}${String(r.n).padStart(6)}`);
  } finally {
    await backend.close();
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
