/**
 * Where an actor runs when there are many hosts (cluster mode, src/cluster/): the namespace asks its
 * placement before starting an instance, and either runs the actor here (this host holds its lease,
 * its storage file brought up to date) or sends the call to the host that does. Without a placement
 * every actor runs in this host, as on a single machine.
 */

import type { ActorAlarms, FireAlarm } from "./alarms.ts";

/** What a call or fetch reaches: the actor's live instance here, or its owner host. */
export interface ActorTarget {
  call(method: string, args: unknown[]): Promise<unknown>;
  fetch(request: Request): Promise<Response>;
}

/** One committed write of an actor's SQLite database: a changeset, or (after a schema change) the whole file. */
export interface ActorLogEntry {
  kind: "image" | "changeset";
  data: Uint8Array;
}

export type Placed =
  | { local: true; storagePath: string }
  | { local: false; remote: ActorTarget };

/** What a placement needs from a namespace. */
export interface PlacedNamespace {
  /** A call forwarded by another host: the local instance, if this host owns the actor (else NotOwnerError). */
  localTarget(hex: string, name: string | undefined): Promise<ActorTarget>;
  /** This host no longer owns the actor: its instance here ends. */
  lost(hex: string): void;
}

export interface ActorPlacement {
  attach(namespace: string, handler: PlacedNamespace): void;
  detach(namespace: string): void;
  /** The actor's current file when this host holds its lease now (the fast path); else undefined. */
  holds(namespace: string, hex: string): string | undefined;
  /**
   * Claims the actor for this host (and brings its file under `dir` up to date from the shared log)
   * or finds its owner; `forwarded` (a call another host sent here) never forwards again.
   */
  place(namespace: string, hex: string, dir: string, forwarded: boolean, name?: string): Promise<Placed>;
  /**
   * The output gate: appends the actor's committed writes under its fencing token; resolves once
   * durable, with `compact: true` when the next entry should be the whole file (the log has grown long).
   */
  replicate(namespace: string, hex: string, entries: ActorLogEntry[]): Promise<{ compact?: boolean } | void>;
  /** The actor's instance here ended (evicted, closed): its lease is released for any host to take. */
  release(namespace: string, hex: string): void;
  /** The namespace's alarms, shared by every host (instead of a file of this host's). */
  alarms?(namespace: string, fire: FireAlarm): ActorAlarms;
}
