/**
 * What an update changes in a plugin's authority, for consent: each permission added, removed, widened
 * or narrowed. `widens` is what a host acts on: an update that adds or widens anything waits for
 * approval. Judged conservatively: an origin counts as new unless an old one covers it, and a limit set
 * or unset (the host's default is not known here) counts as widening.
 */
import { methodsCover, originCovers } from "./origins.ts";
import { hookSubscriptions, networkOf, workspaceOf, type PluginManifest } from "./schema.ts";

export type ChangeKind = "added" | "removed" | "widened" | "narrowed";

export interface ManifestChange {
  kind: ChangeKind;
  /** network, workspace, kv, sql, blob, tools, secrets, limits.cpuMs, hooks, routes. */
  permission: string;
  /** The origin, store, tool, secret, hook or route concerned (the permission itself for workspace and limits). */
  target: string;
  from?: string;
  to?: string;
}

export interface ManifestDiff {
  name: string;
  from: string;
  to: string;
  changes: ManifestChange[];
  /** Whether anything was added or widened: an update that needs approval. */
  widens: boolean;
}

const ACCESS = { none: 0, read: 1, "read-write": 2 } as const;
const LIMITS = ["cpuMs", "memoryMb", "wallMs", "subRequests"] as const;

export function diffManifests(before: PluginManifest, after: PluginManifest): ManifestDiff {
  const changes: ManifestChange[] = [];
  const add = (kind: ChangeKind, permission: string, target: string, from?: string, to?: string) =>
    changes.push({ kind, permission, target, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });

  const oldNet = networkOf(before);
  const newNet = networkOf(after);
  const methods = (m?: string[]) => m?.join(", ") ?? "every method";
  for (const n of newNet) {
    const same = oldNet.find((o) => o.origin === n.origin);
    if (same) {
      if (!methodsCover(same.methods, n.methods)) add("widened", "network", n.origin, methods(same.methods), methods(n.methods));
      else if (!methodsCover(n.methods, same.methods)) add("narrowed", "network", n.origin, methods(same.methods), methods(n.methods));
    } else if (!oldNet.some((o) => originCovers(o.origin, n.origin) && methodsCover(o.methods, n.methods))) {
      add("added", "network", n.origin, undefined, methods(n.methods));
    }
  }
  for (const o of oldNet) {
    if (!newNet.some((n) => n.origin === o.origin) && !newNet.some((n) => originCovers(n.origin, o.origin))) add("removed", "network", o.origin, methods(o.methods));
  }

  const wsBefore = workspaceOf(before);
  const wsAfter = workspaceOf(after);
  if (wsBefore !== wsAfter) add(ACCESS[wsAfter] > ACCESS[wsBefore] ? "widened" : "narrowed", "workspace", "workspace", wsBefore, wsAfter);

  const sets: [string, (m: PluginManifest) => string[]][] = [
    ["kv", (m) => m.permissions?.kv ?? []],
    ["sql", (m) => m.permissions?.sql ?? []],
    ["blob", (m) => m.permissions?.blob ?? []],
    ["tools", (m) => m.permissions?.tools ?? []],
    // A secret is identified by what it is and where it goes: the same name sent to a new origin is a new grant.
    ["secrets", (m) => (m.permissions?.secrets ?? []).map((s) => `${s.name} → ${s.origin} (${s.header.toLowerCase()})`)],
    ["hooks", (m) => hookSubscriptions(m).map(([name]) => name)],
    ["routes", (m) => m.routes ?? []],
  ];
  for (const [permission, of] of sets) {
    const a = new Set(of(before));
    const b = new Set(of(after));
    for (const x of b) if (!a.has(x)) add("added", permission, x);
    for (const x of a) if (!b.has(x)) add("removed", permission, x);
  }

  for (const limit of LIMITS) {
    const a = before.limits?.[limit];
    const b = after.limits?.[limit];
    if (a === b) continue;
    const show = (v: number | undefined) => (v === undefined ? "host default" : String(v));
    const kind = a !== undefined && b !== undefined && b < a ? "narrowed" : "widened";
    add(kind, `limits.${limit}`, `limits.${limit}`, show(a), show(b));
  }
  return { name: after.name, from: before.version, to: after.version, changes, widens: changes.some((c) => c.kind === "added" || c.kind === "widened") };
}

const MARK: Record<ChangeKind, string> = { added: "+", removed: "-", widened: "↑", narrowed: "↓" };

/** The diff as lines a person reads before approving an update. */
export function formatManifestDiff(diff: ManifestDiff): string {
  const head = `${diff.name} ${diff.from} → ${diff.to}: ${diff.changes.length === 0 ? "no permission changes" : diff.widens ? "asks for more (needs approval)" : "asks for less or the same"}`;
  const lines = diff.changes.map((c) => {
    const what = c.permission === c.target ? c.permission : `${c.permission} ${c.target}`;
    const span = c.from !== undefined && c.to !== undefined ? `: ${c.from} → ${c.to}` : c.to !== undefined ? ` (${c.to})` : c.from !== undefined ? ` (${c.from})` : "";
    return `${MARK[c.kind]} ${c.kind.padEnd(8)} ${what}${span}`;
  });
  return [head, ...lines].join("\n") + "\n";
}
