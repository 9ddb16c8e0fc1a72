/**
 * Capabilities: the host objects a worker may reach, granted one by one through `env` (and
 * `globalOutbound`). A capability never enters the isolate: the worker gets a stub naming it by a
 * number that means something only in its own worker's table, and every call crosses back to the
 * host by copy. Kinds: "rpc" (methods of a host object, from rpc()), "fetcher" (anything with a
 * fetch(request) method: a gateway, an HTTP client), "service" (another loaded worker's entrypoint).
 */
import { DataCloneError } from "../errors.ts";

export type CapabilityKind = "rpc" | "fetcher" | "service" | "kv" | "d1" | "r2";

export interface Capability {
  kind: CapabilityKind;
  /** Calls `method` with copied arguments; resolves to a copyable value. */
  call(method: string, args: unknown[]): Promise<unknown>;
}

/** What the worker's env holds in place of a capability (see runtime/guest/capabilities.ts). */
export interface CapabilityDescriptor {
  __mayflyCapability: number;
  kind: CapabilityKind;
}

/** Implemented by every binding a user can place in env (rpc(), egress() ...). */
export interface Bindable {
  [BINDING]: () => Capability;
}

export const BINDING = Symbol.for("mayfly.binding");

/** Per-worker table: capability ids are small numbers, valid only for the worker that holds them. */
export class CapabilityTable {
  private readonly caps: Capability[] = [];

  add(cap: Capability): CapabilityDescriptor {
    this.caps.push(cap);
    return { __mayflyCapability: this.caps.length, kind: cap.kind };
  }

  get(id: number): Capability | undefined {
    return Number.isInteger(id) && id >= 1 ? this.caps[id - 1] : undefined;
  }

  get size(): number {
    return this.caps.length;
  }
}

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
interface WireRequest { url: string; method: string; headers: [string, string][]; body: Uint8Array | null }
interface WireResponse { status: number; statusText: string; headers: [string, string][]; body: Uint8Array | null }

/** A fetcher: its one method takes a wire request, calls fetch() in the host and answers a wire response. */
export function fetcherCapability(target: Fetchable, path: string, kind: CapabilityKind = "fetcher", rpcTarget?: object): Capability {
  return {
    kind,
    async call(method, args) {
      if (method === "fetch") {
        const w = args[0] as WireRequest;
        const request = new Request(w.url, { method: w.method, headers: w.headers, body: w.body as BodyInit | null });
        const response = await target.fetch(request);
        if (!(response instanceof Response)) throw new TypeError(`${path}.fetch() did not return a Response.`);
        const body = response.body ? new Uint8Array(await response.arrayBuffer()) : null;
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
