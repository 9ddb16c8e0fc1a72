/**
 * Per-worker resource limits. Cloudflare's `limits` has cpuMs and subRequests; mayfly adds the rest
 * and, unlike workerd, enforces every one of them.
 */
export interface Limits {
  /** CPU time of one invocation (request or RPC call), microtasks included. */
  cpuMs: number;
  /** Isolate memory: JS heap, ArrayBuffers, resizable buffers and Wasm memory. */
  memoryMb: number;
  /** Wall-clock time of one invocation: a worker awaiting forever is ended. */
  wallMs: number;
  /** Outbound requests per invocation (counted by the egress gateway, issue 4). */
  subRequests: number;
  /** Size of one response body or RPC result, in bytes. */
  outputBytes: number;
  /** Console output of one invocation, in bytes; past it, further lines are dropped and the run ends. */
  logBytes: number;
}

/** Defaults: generous enough for real work, tight enough that a runaway tenant is cut off quickly. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  cpuMs: 1_000,
  memoryMb: 128,
  wallMs: 30_000,
  subRequests: 50,
  outputBytes: 32 * 1024 * 1024,
  logBytes: 1024 * 1024,
});

export function resolveLimits(base: Partial<Limits> | undefined, override: Partial<Limits> | undefined): Limits {
  return { ...DEFAULT_LIMITS, ...stripUndefined(base), ...stripUndefined(override) };
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
