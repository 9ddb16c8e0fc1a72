/**
 * The only channel from the guest runtime to its executor: synchronous callbacks handed to `start()`.
 * They are captured in this module's closure and never placed on the global object, so guest code
 * cannot call them, replace them or see that they exist.
 */
export interface HostHooks {
  /** Appends one console line to the run's log; returns false once the log budget is spent. */
  log(level: string, message: string): boolean;
  /**
   * Accounts for memory that V8's heap limit does not see (resizable buffers, Wasm memory); with
   * `transient`, only checks that a value about to be built could fit at all (memory-guards.ts).
   */
  reserve(bytes: number, what: string, transient?: boolean): boolean;
  /** A synchronous host service call (see host-calls.ts); arguments and result are copies. */
  call(service: string, op: string, args: unknown[]): unknown;
  /** Starts an asynchronous host service task; its result is delivered later to settle(). */
  start(service: string, op: string, args: unknown[], ticket: number): unknown;
}

let hooks: HostHooks | undefined;

export function setHooks(h: HostHooks): void {
  hooks = h;
}

export function host(): HostHooks {
  if (!hooks) throw new Error("mayfly runtime used before start()");
  return hooks;
}
