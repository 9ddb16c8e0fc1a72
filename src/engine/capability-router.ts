/**
 * Routes a guest's capability calls (frames from any executor) to the host object they name. A call
 * names its worker instance and a capability id; only that instance's table is consulted, so a
 * worker can reach nothing but what its own env granted.
 */
import type { CapEnvelope } from "./protocol.ts";

export interface CapabilityLookup {
  get(id: number): { call(method: string, args: unknown[]): Promise<unknown> } | undefined;
  /** A body for the worker to read by calls (see CapabilityTable.addStream); its id in the table. */
  addStream?(body: ReadableStream<Uint8Array>): number;
  /** The worker is gone. */
  close?(): void;
}

const tables = new Map<number, WeakRef<CapabilityLookup>>();
// A worker dropped without dispose() must not keep its table registered forever.
const cleanup = new FinalizationRegistry<number>((instanceId) => {
  if (!tables.get(instanceId)?.deref()) tables.delete(instanceId);
});

export function registerCapabilities(instanceId: number, table: CapabilityLookup): void {
  tables.set(instanceId, new WeakRef(table));
  cleanup.register(table, instanceId);
}

export function unregisterCapabilities(instanceId: number): void {
  tables.get(instanceId)?.deref()?.close?.();
  tables.delete(instanceId);
}

/** Calls the capability; the answer is always an envelope, with only name and message on failure. */
export async function callCapability(instanceId: number, capId: number, method: string, args: unknown[]): Promise<CapEnvelope> {
  const table = tables.get(instanceId)?.deref();
  const cap = table?.get(capId);
  if (!table || !cap) return { ok: false, error: { name: "TypeError", message: "This binding is no longer available." } };
  try {
    return { ok: true, value: streamsAsIds(await cap.call(String(method), Array.isArray(args) ? args : []), table) };
  } catch (e) {
    const err = e as { name?: unknown; message?: unknown };
    return { ok: false, error: { name: typeof err?.name === "string" ? err.name : "Error", message: typeof err?.message === "string" ? err.message : String(e) } };
  }
}

/** A result whose `body` is a host stream cannot cross by copy: the worker gets an id to read it by. */
function streamsAsIds(value: unknown, table: CapabilityLookup): unknown {
  const body = (value as { body?: unknown } | null)?.body;
  if (!(body instanceof ReadableStream) || !table.addStream) return value;
  return { ...(value as object), body: { __mayflyStream: table.addStream(body) } };
}
