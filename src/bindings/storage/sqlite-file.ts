/**
 * Where storage bindings keep their data, and how their SQLite files are opened: one file per
 * binding, named from the binding's name by a fixed, escaping-proof rule, so no name can reach
 * another binding's file or leave the data directory. Writes are durable when acknowledged: WAL with
 * synchronous=FULL, so a committed write survives a kill -9.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { constants, DatabaseSync } from "node:sqlite";

/** A binding name as a file name: [a-z0-9_-] kept, everything else hex-escaped ("." included). */
export function fileNameFor(name: string): string {
  if (name.length === 0 || name.length > 128) throw new TypeError("A storage binding name must be 1 to 128 characters.");
  return [...Buffer.from(name, "utf8")].map((b) => (/[a-z0-9_-]/i.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `.${b.toString(16).padStart(2, "0")}`)).join("");
}

/**
 * Runs `fn` in one write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so two
 * writers never deadlock upgrading a read) and answers its result; a throw rolls everything back. A
 * transaction SQLite has already rolled back itself (a full disk, a quota) is not rolled back twice.
 */
export function inWriteTransaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

export function openStore(dataDir: string, kind: string, name: string, options: { readOnly?: boolean } = {}): DatabaseSync {
  const dir = resolve(dataDir, kind);
  mkdirSync(dir, { recursive: true });
  const db = new DatabaseSync(join(dir, `${fileNameFor(name)}.sqlite`), { readOnly: options.readOnly ?? false, timeout: 5_000 });
  if (!options.readOnly) {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
  }
  return db;
}

/** Pragmas guest SQL may run: introspection only. */
const READ_PRAGMAS = new Set(["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list", "foreign_keys"]);

/**
 * What guest SQL may never do in any database of ours (D1, an actor's storage): reach another file
 * (ATTACH/DETACH, so also VACUUM INTO) or change a pragma. An authorizer answers SQLITE_DENY when this
 * says so, and applies its own rules otherwise.
 */
export function refusedToGuests(action: number, arg1: string | null): boolean {
  if (action === constants.SQLITE_ATTACH || action === constants.SQLITE_DETACH) return true;
  return action === constants.SQLITE_PRAGMA && !READ_PRAGMAS.has(String(arg1).toLowerCase());
}
