/**
 * The plugin host's state in one SQLite file (<dataDir>/plugins/host.sqlite, opened like every store:
 * WAL, synchronous=FULL): installed plugins (manifest and code), updates waiting for approval, and the
 * audit log. Code is kept with V8's serializer, so `{ data }` and `{ wasm }` modules keep their bytes.
 */
import type { DatabaseSync } from "node:sqlite";
import { deserialize, serialize } from "node:v8";
import { inWriteTransaction, openStore } from "../bindings/storage/sqlite-file.ts";
import type { PluginCode, PluginManifest } from "../manifests/index.ts";
import type { ManifestDiff } from "../manifests/diff.ts";

export interface StoredPlugin {
  manifest: PluginManifest;
  code: PluginCode;
  enabled: boolean;
  installedAt: number;
  updatedAt: number;
}

export interface PendingUpdate {
  manifest: PluginManifest;
  code: PluginCode;
  diff: ManifestDiff;
  requestedAt: number;
}

export interface AuditEntry {
  plugin: string;
  capability: string;
  target: string;
  allowed: boolean;
  reason?: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface AuditQuery {
  plugin?: string;
  /** Entries at or after this time (a Date or ms since the epoch). */
  since?: Date | number;
  capability?: string;
  allowed?: boolean;
  /** At most this many, oldest first (default 10,000). */
  limit?: number;
}

type PluginRow = { manifest: string; code: Uint8Array; enabled: number; installed_at: number; updated_at: number };

export class PluginStore {
  private readonly db: DatabaseSync;

  constructor(dataDir: string) {
    this.db = openStore(dataDir, "plugins", "host");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS plugins (name TEXT PRIMARY KEY, manifest TEXT NOT NULL, code BLOB NOT NULL,
        enabled INTEGER NOT NULL, installed_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS pending (name TEXT PRIMARY KEY, manifest TEXT NOT NULL, code BLOB NOT NULL,
        diff TEXT NOT NULL, requested_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, plugin TEXT NOT NULL, capability TEXT NOT NULL,
        target TEXT NOT NULL, allowed INTEGER NOT NULL, reason TEXT, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS audit_plugin_at ON audit (plugin, at);
      CREATE INDEX IF NOT EXISTS audit_at ON audit (at);`);
  }

  get(name: string): StoredPlugin | undefined {
    const row = this.db.prepare("SELECT manifest, code, enabled, installed_at, updated_at FROM plugins WHERE name = ?").get(name) as PluginRow | undefined;
    return row && toPlugin(row);
  }

  list(): StoredPlugin[] {
    return (this.db.prepare("SELECT manifest, code, enabled, installed_at, updated_at FROM plugins ORDER BY name").all() as PluginRow[]).map(toPlugin);
  }

  /** Installs or replaces a plugin; a pending update of it is dropped (it is superseded). */
  put(p: StoredPlugin): void {
    this.transaction(() => {
      this.db.prepare(`INSERT INTO plugins (name, manifest, code, enabled, installed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, code = excluded.code, enabled = excluded.enabled, updated_at = excluded.updated_at`)
        .run(p.manifest.name, JSON.stringify(p.manifest), serialize(p.code), p.enabled ? 1 : 0, p.installedAt, p.updatedAt);
      this.dropPending(p.manifest.name);
    });
  }

  setEnabled(name: string, enabled: boolean): void {
    this.db.prepare("UPDATE plugins SET enabled = ?, updated_at = ? WHERE name = ?").run(enabled ? 1 : 0, Date.now(), name);
  }

  delete(name: string): void {
    this.transaction(() => {
      this.db.prepare("DELETE FROM plugins WHERE name = ?").run(name);
      this.dropPending(name);
    });
  }

  pending(name: string): PendingUpdate | undefined {
    const row = this.db.prepare("SELECT manifest, code, diff, requested_at FROM pending WHERE name = ?").get(name) as
      { manifest: string; code: Uint8Array; diff: string; requested_at: number } | undefined;
    return row && { manifest: JSON.parse(row.manifest), code: deserialize(row.code), diff: JSON.parse(row.diff), requestedAt: row.requested_at };
  }

  setPending(u: PendingUpdate): void {
    this.db.prepare(`INSERT INTO pending (name, manifest, code, diff, requested_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest, code = excluded.code, diff = excluded.diff, requested_at = excluded.requested_at`)
      .run(u.manifest.name, JSON.stringify(u.manifest), serialize(u.code), JSON.stringify(u.diff), u.requestedAt);
  }

  dropPending(name: string): void {
    this.db.prepare("DELETE FROM pending WHERE name = ?").run(name);
  }

  record(e: AuditEntry): void {
    this.db.prepare("INSERT INTO audit (plugin, capability, target, allowed, reason, at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(e.plugin, e.capability, e.target, e.allowed ? 1 : 0, e.reason ?? null, e.at);
  }

  audit(q: AuditQuery = {}): AuditEntry[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.plugin !== undefined) { where.push("plugin = ?"); params.push(q.plugin); }
    if (q.since !== undefined) { where.push("at >= ?"); params.push(q.since instanceof Date ? q.since.getTime() : q.since); }
    if (q.capability !== undefined) { where.push("capability = ?"); params.push(q.capability); }
    if (q.allowed !== undefined) { where.push("allowed = ?"); params.push(q.allowed ? 1 : 0); }
    const rows = this.db.prepare(`SELECT plugin, capability, target, allowed, reason, at FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ?`)
      .all(...params, q.limit ?? 10_000) as { plugin: string; capability: string; target: string; allowed: number; reason: string | null; at: number }[];
    return rows.map((r) => ({ plugin: r.plugin, capability: r.capability, target: r.target, allowed: r.allowed === 1, ...(r.reason !== null ? { reason: r.reason } : {}), at: r.at }));
  }

  close(): void {
    this.db.close();
  }

  private transaction(fn: () => void): void {
    inWriteTransaction(this.db, fn);
  }
}

function toPlugin(row: PluginRow): StoredPlugin {
  return { manifest: JSON.parse(row.manifest), code: deserialize(row.code), enabled: row.enabled === 1, installedAt: row.installed_at, updatedAt: row.updated_at };
}
