/**
 * Capabilities: the host objects a worker may reach, granted one by one through `env` (and
 * `globalOutbound`). A capability never enters the isolate: the worker gets a stub naming it by a
 * number that means something only in its own worker's table, and every call crosses back to the
 * host by copy. Kinds: "rpc" (methods of a host object, from rpc()), "fetcher" (anything with a
 * fetch(request) method: a gateway, an HTTP client), "service" (another loaded worker's entrypoint).
 */
import { DataCloneError } from "../errors.ts";

export type CapabilityKind = "rpc" | "fetcher" | "service" | "kv" | "d1" | "r2" | "workspace" | "browser" | "sandbox" | "stream" | "actors";

export interface Capability {
  kind: CapabilityKind;
  /** Calls `method` with copied arguments; resolves to a copyable value. */
  call(method: string, args: unknown[]): Promise<unknown>;
  /** Plain data the guest's stub needs up front (an actor namespace's name, for idFromName()). */
  meta?: Record<string, string>;
  /**
   * For a binding whose resources belong to a run (a browser context): told when a run of the worker
   * begins while none was in flight, and when the last run in flight has ended (its waitUntil work and
   * streamed body included). Concurrent runs of one warm instance share an isolate, and a guest call
   * does not say which of them made it, so they share these resources until all have ended.
   */
  runsBegan?(): void;
  runsEnded?(): Promise<void>;
}

/** What the worker's env holds in place of a capability (see runtime/guest/capabilities.ts). */
export interface CapabilityDescriptor {
  __mayflyCapability: number;
  kind: CapabilityKind;
  meta?: Record<string, string>;
}

/** Implemented by every binding a user can place in env (rpc(), egress() ...). */
export interface Bindable {
  [BINDING]: () => Capability;
}

export const BINDING = Symbol.for("mayfly.binding");

/** Per-worker table: capability ids are small numbers, valid only for the worker that holds them. */
export class CapabilityTable {
  private readonly caps: (Capability | undefined)[] = [];
  private readonly streams = new Set<ReadableStreamDefaultReader<Uint8Array>>();
  private readonly sinks = new Map<number, ReadableStream<Uint8Array>>();
  private runs = 0;

  add(cap: Capability): CapabilityDescriptor {
    this.caps.push(cap);
    return { __mayflyCapability: this.caps.length, kind: cap.kind, ...(cap.meta ? { meta: cap.meta } : {}) };
  }

  get(id: number): Capability | undefined {
    return Number.isInteger(id) && id >= 1 ? this.caps[id - 1] : undefined;
  }

  get size(): number {
    return this.caps.length;
  }

  /** A run of the worker begins; the function returned ends it (once). See Capability.runsBegan. */
  beginRun(): () => void {
    if (this.runs++ === 0) for (const cap of this.caps) cap?.runsBegan?.();
    let ended = false;
    return () => {
      // close() has ended every run already.
      if (ended || this.runs === 0) return;
      ended = true;
      if (--this.runs === 0) for (const cap of this.caps) void cap?.runsEnded?.().catch(() => {});
    };
  }

  /**
   * A host body the worker reads a chunk per call ("read": the next chunk, or null at the end;
   * "cancel"), so a large response never sits whole in the host or in the isolate. The entry goes
   * away when the body ends, fails or is cancelled; close() cancels what the worker left unread.
   */
  addStream(body: ReadableStream<Uint8Array>): number {
    const reader = body.getReader();
    this.streams.add(reader);
    const id = this.caps.length + 1;
    const done = () => {
      this.caps[id - 1] = undefined;
      this.streams.delete(reader);
    };
    this.caps.push({
      kind: "stream",
      async call(method) {
        if (method === "cancel") {
          done();
          await reader.cancel().catch(() => {});
          return null;
        }
        if (method !== "read") throw new TypeError(`A body stream has no method "${method}".`);
        try {
          const r = await reader.read();
          if (r.done) done();
          return r.done ? null : r.value;
        } catch (e) {
          done();
          throw e;
        }
      },
    });
    return id;
  }

  /**
   * The other direction: a body the worker writes a chunk per call ("write", then "close" or "abort"),
   * read by the host as `stream` (e.g. the body of a request it sends). A write resolves once the
   * reader has room for more, so the worker never runs ahead of the consumer.
   */
  addSink(): { id: number; stream: ReadableStream<Uint8Array> } {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let room: (() => void) | undefined;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => void (controller = c),
      pull: () => { room?.(); room = undefined; },
      cancel: () => { cancelled = true; room?.(); room = undefined; },
    }, { highWaterMark: 1 });
    const id = this.caps.length + 1;
    const gone = () => void (this.caps[id - 1] = undefined);
    this.caps.push({
      kind: "stream",
      async call(method, args) {
        if (cancelled) {
          gone();
          throw new TypeError("The body's reader went away.");
        }
        if (method === "write") {
          if (!(args[0] instanceof Uint8Array)) throw new TypeError("A body chunk must be a Uint8Array.");
          controller.enqueue(args[0]);
          if ((controller.desiredSize ?? 0) <= 0) await new Promise<void>((r) => (room = r));
          return null;
        }
        gone();
        room?.();
        if (method === "close") controller.close();
        else controller.error(Object.assign(new Error(String(args[0] ?? "The body was aborted.")), { name: "AbortError" }));
        return null;
      },
    });
    this.sinks.set(id, stream);
    return { id, stream };
  }

  /** The stream of a sink, once: a capability call names it in place of a body. */
  takeSink(id: number): ReadableStream<Uint8Array> | undefined {
    const stream = this.sinks.get(id);
    this.sinks.delete(id);
    return stream;
  }

  /** The worker is gone: bodies it did not finish reading are cancelled (their connections freed). */
  close(): void {
    // Resources held for runs in flight (a browser context) go with the worker.
    if (this.runs > 0) {
      this.runs = 0;
      for (const cap of this.caps) void cap?.runsEnded?.().catch(() => {});
    }
    for (const reader of this.streams) void reader.cancel().catch(() => {});
    this.streams.clear();
    for (const stream of this.sinks.values()) void stream.cancel().catch(() => {});
    this.sinks.clear();
  }
}

/** Answers above this size, or of unknown size, cross as a stream (see CapabilityTable.addStream). */
export const STREAM_BODIES_OVER = 1024 * 1024;

/** The capability a value stands for, if it is one: a binding, or a fetcher-shaped object. */
export function asCapability(value: unknown, path: string): Capability | undefined {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  const bindable = (value as Partial<Bindable>)[BINDING];
  if (typeof bindable === "function") return bindable.call(value);
  if (typeof (value as { fetch?: unknown }).fetch === "function") return fetcherCapability(value as Fetchable, path);
  return undefined;
}

export interface Fetchable {
  fetch(request: Request): Promise<Response> | Response;
}

/** A wire request/response, as the guest runtime sends and expects them. */
interface WireRequest { url: string; method: string; headers: [string, string][]; body: Uint8Array | ReadableStream<Uint8Array> | null }
interface WireResponse { status: number; statusText: string; headers: [string, string][]; body: Uint8Array | ReadableStream<Uint8Array> | null }

/** A fetcher: its one method takes a wire request, calls fetch() in the host and answers a wire response. */
export function fetcherCapability(target: Fetchable, path: string, kind: CapabilityKind = "fetcher", rpcTarget?: object): Capability {
  return {
    kind,
    async call(method, args) {
      if (method === "fetch") {
        const w = args[0] as WireRequest;
        const request = new Request(w.url, { method: w.method, headers: w.headers, body: w.body as BodyInit | null, duplex: "half" } as RequestInit);
        const response = await target.fetch(request);
        if (!(response instanceof Response)) throw new TypeError(`${path}.fetch() did not return a Response.`);
        const size = Number(response.headers.get("content-length") ?? NaN);
        // A small body of known size crosses whole (one round trip); anything else streams.
        const body = !response.body ? null : size <= STREAM_BODIES_OVER ? new Uint8Array(await response.arrayBuffer()) : response.body;
        return { status: response.status, statusText: response.statusText, headers: [...response.headers], body } satisfies WireResponse;
      }
      if (rpcTarget) return callMethod(rpcTarget, method, args, path);
      throw new TypeError(`${path} has only a fetch() method.`);
    },
  };
}

/** Calls a method of a host object as RPC: only functions reached below Object.prototype. */
export async function callMethod(target: object, method: string, args: unknown[], path: string): Promise<unknown> {
  const fn = method === "constructor" || method in Object.prototype ? undefined : (target as Record<string, unknown>)[method];
  if (typeof fn !== "function") throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
  return await fn.apply(target, args);
}

/** A capability cannot sit inside other env data: only top-level env entries are bindings. */
export function nestedCapabilityError(path: string): DataCloneError {
  return new DataCloneError(`Could not serialize ${path}: bindings must be top-level env entries.`);
}
