/**
 * Calls into the executor's host services (engine/executor/services). Synchronous calls return a copy;
 * asynchronous ones return a ticket and a promise that settle() resolves when the executor delivers
 * the result. Host failures arrive as name + message and are rethrown here as guest errors.
 */
import { setClock } from "./clock.ts";
import { host } from "./hooks.ts";

type Envelope = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string } };

const pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
let nextTicket = 1;

export function callHost<T>(service: string, op: string, ...args: unknown[]): T {
  return unwrap(host().call(service, op, args) as Envelope) as T;
}

/** Starts a host task. `ticket` names it for cancellation (e.g. clearTimeout). */
export function startHostTask<T>(service: string, op: string, ...args: unknown[]): { ticket: number; promise: Promise<T> } {
  const ticket = nextTicket++;
  const promise = new Promise<T>((resolve, reject) => {
    pending.set(ticket, { resolve: resolve as (v: unknown) => void, reject });
  });
  const accepted = host().start(service, op, args, ticket) as Envelope;
  if (!accepted.ok) {
    pending.delete(ticket);
    return { ticket, promise: Promise.reject(hostError(accepted.error)) };
  }
  return { ticket, promise };
}

/** Forgets a task whose result is no longer wanted (its promise then never settles). */
export function forgetHostTask(ticket: number): void {
  pending.delete(ticket);
}

/** Called by the executor (through the runtime handle) with a task's result. Time moves on: it is I/O. */
export function settle(ticket: number, envelope: Envelope, now: number): void {
  setClock(now);
  const p = pending.get(ticket);
  if (!p) return;
  pending.delete(ticket);
  if (envelope.ok) p.resolve(envelope.value);
  else p.reject(hostError(envelope.error));
}

function unwrap(envelope: Envelope): unknown {
  if (envelope.ok) return envelope.value;
  throw hostError(envelope.error);
}

const ERRORS: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError };

/** Rebuilds a host failure as the error a Web API would throw: a DOMException for DOM names. */
export function hostError(error: { name: string; message: string }): Error {
  if (Object.hasOwn(ERRORS, error.name)) return new ERRORS[error.name]!(error.message);
  const DOMExceptionCtor = (globalThis as { DOMException?: new (message: string, name: string) => Error }).DOMException;
  if (DOMExceptionCtor && /Error$/.test(error.name) && error.name !== "Error") return new DOMExceptionCtor(error.message, error.name);
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}
