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
  /** A body the worker writes by calls, and its stream (see CapabilityTable.addSink). */
  addSink?(): { id: number; stream: ReadableStream<Uint8Array> };
  takeSink?(id: number): ReadableStream<Uint8Array> | undefined;
  /** A run begins; the function returned ends it (see CapabilityTable.beginRun). */
  beginRun?(): () => void;
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
    // The runtime's own request for a body it will write: answered by the table, not the binding.
    if (method === SINK && table.addSink) return { ok: true, value: table.addSink().id };
    const input = sinksAsStreams(Array.isArray(args) ? args : [], table);
    return { ok: true, value: streamsAsIds(await cap.call(String(method), input), table) };
  } catch (e) {
    const err = e as { name?: unknown; message?: unknown };
    return { ok: false, error: { name: typeof err?.name === "string" ? err.name : "Error", message: typeof err?.message === "string" ? err.message : String(e) } };
  }
}

/** The method name under which the guest runtime asks for a body sink (see CapabilityTable.addSink). */
export const SINK = "mayfly:sink";

/** An argument that names a sink, or whose `body` does, gets the sink's stream in its place. */
function sinksAsStreams(args: unknown[], table: CapabilityLookup): unknown[] {
  const take = (ref: { __mayflySink?: unknown } | null | undefined): ReadableStream<Uint8Array> | undefined => {
    if (typeof ref?.__mayflySink !== "number" || !table.takeSink) return undefined;
    const stream = table.takeSink(ref.__mayflySink);
    if (!stream) throw new TypeError("This body was already sent.");
    return stream;
  };
  return args.map((arg) => {
    const direct = take(arg as { __mayflySink?: unknown } | null);
    if (direct) return direct;
    const body = take((arg as { body?: { __mayflySink?: unknown } } | null)?.body);
    return body ? { ...(arg as object), body } : arg;
  });
}

/** A result whose `body` is a host stream cannot cross by copy: the worker gets an id to read it by. */
function streamsAsIds(value: unknown, table: CapabilityLookup): unknown {
  const body = (value as { body?: unknown } | null)?.body;
  if (!(body instanceof ReadableStream) || !table.addStream) return value;
  return { ...(value as object), body: { __mayflyStream: table.addStream(body) } };
}
