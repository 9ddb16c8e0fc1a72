import type { ExecutionContext } from "./cloudflare-workers.ts";
import { Response, bodyBytes, incomingRequest, responseHead, takeBodySource, type HeaderList } from "./fetch-api.ts";
import { incomingBody, sendBody } from "./body-bridge.ts";
import { setClock } from "./clock.ts";
import { clearAllTimers } from "./timers.ts";
import { actorDelivered, actorOutputGate, actorTarget, hostsActor } from "./actor.ts";

/**
 * A request as it crosses the boundary: plain data only. With `streamed`, the body is not in `body`
 * but arrives a chunk at a time through the body host service, under the invocation's `stream` key.
 */
export interface WireRequest { url: string; method: string; headers: HeaderList; body: Uint8Array | null; streamed?: boolean }
/** A response as it crosses the boundary; with `streamed`, its body follows through the body service. */
export interface WireResponse { status: number; statusText: string; headers: HeaderList; body: Uint8Array | null; streamed?: boolean }

export type Invocation =
  | { kind: "fetch"; entrypoint: string | null; props: unknown; request: WireRequest; stream?: number }
  | { kind: "rpc"; entrypoint: string | null; props: unknown; method: string; args: unknown[] };

export interface WireError { name: string; message: string; stack?: string }

/** Never a rejection: a rejected promise crossing into the host is what crashes isolated-vm (#314). */
/**
 * A call's result. `pending`: ctx.waitUntil work (or a streaming body) outlives the reply, so the run
 * goes on until drain(). `ended`: no other call was in flight and nothing was pending, so the run's
 * timers were already cleared here (what the executor's endRun would do); saving the executor two
 * calls into the isolate per run (~20 µs).
 */
export type Outcome = ({ ok: true; value: unknown } | { ok: false; error: WireError }) & { pending?: boolean; ended?: boolean };

let mainNamespace: Record<string, unknown> = {};
let workerEnv: unknown = {};

export function setEnv(env: unknown): void {
  workerEnv = env;
}

export function setMain(ns: Record<string, unknown>): void {
  // A binding still in its temporal dead zone after evaluation means a top-level await is pending on
  // a timer or I/O: the module never finished. Workers forbids those at startup too; say so clearly
  // instead of failing every call with "Cannot access 'default' before initialization".
  try {
    for (const key of Object.keys(ns)) void ns[key];
  } catch (e) {
    if (e instanceof ReferenceError) {
      throw new Error("top-level await did not finish during startup. Module scope may only await promises that settle without timers or I/O (as on Cloudflare Workers); do that work in a handler.");
    }
    throw e;
  }
  mainNamespace = ns;
}

/**
 * Recent outcomes by call token. isolated-vm rejects the executor's call when guest code leaves a
 * promise rejection unhandled, even though the dispatch itself completed; the executor then fetches
 * the outcome here (awaitOutcome). Bounded: only the most recent calls are kept.
 */
const outcomes = new Map<number, Promise<Outcome>>();
const KEPT_OUTCOMES = 256;

/** Calls dispatched and not yet answered (an actor's calls may overlap). */
let inFlight = 0;

export function dispatch(inv: Invocation, now: number, token: number): Promise<Outcome> {
  inFlight++;
  // settle() runs inside run(): a guest may have replaced Promise.prototype.then by the time it answers.
  const outcome = run(inv, now);
  outcomes.set(token, outcome);
  if (outcomes.size > KEPT_OUTCOMES) outcomes.delete(outcomes.keys().next().value!);
  return outcome;
}

/** The outcome of call `token`, or a runtime error outcome if it is no longer known. */
export function awaitOutcome(token: number): Promise<Outcome> {
  const outcome = outcomes.get(token);
  outcomes.delete(token);
  return outcome ?? Promise.resolve({ __proto__: null, ok: false, error: { name: "Error", message: "The call's outcome was lost." } } as Outcome);
}

function settle(outcome: Outcome): Outcome {
  outcome.pending = waiting.size > 0;
  if (--inFlight === 0 && !outcome.pending) {
    clearAllTimers();
    outcome.ended = true;
  }
  return outcome;
}

async function run(inv: Invocation, now: number): Promise<Outcome> {
  setClock(now);
  let outcome: Outcome;
  try {
    // Replies have a null prototype: a guest that defines Object.prototype.then must not be able to
    // intercept them when the async functions below resolve with them.
    const value = inv.kind === "fetch" ? (await dispatchFetch(inv)).wire : await dispatchRpc(inv);
    outcome = { __proto__: null, ok: true, value } as Outcome;
  } catch (e) {
    outcome = { __proto__: null, ok: false, error: toWireError(e) } as Outcome;
  }
  return settle(outcome);
}

/**
 * Reads a thrown value into plain strings. Every read is guarded: a guest may throw a Proxy or an
 * object whose getters throw, and this must still produce an outcome, never a rejection.
 */
export function toWireError(e: unknown): WireError {
  const isError = attempt(() => e instanceof Error, false);
  if (!isError) return { __proto__: null, name: "Error", message: typeof e === "string" ? e : safeString(e) } as WireError;
  const err = e as Error;
  const stack = attempt(() => err.stack, undefined);
  return {
    __proto__: null,
    name: safeString(attempt(() => err.name, "Error")),
    message: safeString(attempt(() => err.message, "")),
    stack: typeof stack === "string" ? stack : undefined,
  } as WireError;
}

function attempt<T>(read: () => T, fallback: T): T {
  try { return read(); } catch { return fallback; }
}

function safeString(v: unknown): string {
  if (typeof v === "string") return v;
  try { return String(v); } catch { return "[unprintable value]"; }
}

/** Promises handed to ctx.waitUntil: the run stays alive until they settle (within the wall limit). */
const waiting = new Set<Promise<unknown>>();

/** ctx.waitUntil: the run stays alive until `promise` settles; a rejection is logged. */
export function waitUntil(promise: Promise<unknown>): void {
  const p = Promise.resolve(promise).then(() => {}, (e) => {
    (globalThis as { console?: { error(...a: unknown[]): void } }).console?.error("Uncaught (in waitUntil)", e);
  });
  waiting.add(p);
  p.then(() => waiting.delete(p));
}

function makeCtx(props: unknown): ExecutionContext {
  return {
    waitUntil,
    passThroughOnException() {},
    props,
  };
}

/** Keeps the run alive until `work` settles (a response body still streaming out). */
export function keepAlive(work: Promise<unknown>): void {
  const p = work.then(() => {}, () => {});
  waiting.add(p);
  p.then(() => waiting.delete(p));
}

/** Resolves once every waitUntil promise has settled, including ones added while waiting. */
export async function drain(): Promise<void> {
  while (waiting.size) await Promise.all([...waiting]);
}

/** Whether the run has work left after its response (the executor then waits for drain()). */
export function hasPendingWork(): boolean {
  return waiting.size > 0;
}

function isClass(v: unknown): v is new (...args: unknown[]) => Record<string, unknown> {
  return typeof v === "function" && /^class[\s{]/.test(Function.prototype.toString.call(v));
}

/**
 * Resolves an entrypoint to the object whose methods handle calls: a class instance or the export
 * itself; in a durable actor's isolate, its class names the one instance that serves every call.
 */
type Resolved = { target: Record<string, unknown>; ctx: ExecutionContext; isObject: boolean };

/**
 * A durable actor's calls wait for its input gate (blockConcurrencyWhile); other workers' calls do
 * not wait at all. Null prototype: a guest's Object.prototype.then must not hijack the await.
 */
async function resolveActor(name: string | null, props: unknown): Promise<Resolved> {
  const target = await actorTarget(name, mainNamespace[name ?? "default"], workerEnv);
  return { __proto__: null, target, ctx: makeCtx(props), isObject: false } as unknown as Resolved;
}

function resolveEntrypoint(name: string | null, props: unknown): Resolved {
  const key = name ?? "default";
  const exported = mainNamespace[key];
  const ctx = makeCtx(props);
  if (exported === undefined || exported === null) {
    if (name === null) throw new TypeError("Worker has no default export; it must export a handler object or a WorkerEntrypoint class.");
    throw new TypeError(`Worker has no entrypoint named "${name}".`);
  }
  if (isClass(exported)) return { target: new exported(ctx, workerEnv), ctx, isObject: false };
  if (typeof exported === "object") return { target: exported as Record<string, unknown>, ctx, isObject: true };
  throw new TypeError(`Entrypoint "${key}" is not an object or a class.`);
}

async function dispatchFetch(inv: Extract<Invocation, { kind: "fetch" }>): Promise<{ wire: WireResponse }> {
  const actor = hostsActor(inv.entrypoint);
  let pending: unknown;
  try {
    const { target, ctx, isObject } = actor ? await resolveActor(inv.entrypoint, inv.props) : resolveEntrypoint(inv.entrypoint, inv.props);
    const handler = target.fetch;
    if (typeof handler !== "function") throw new TypeError("Handler does not export a fetch() function.");
    const r = inv.request;
    // A large or unsized request body arrives as a stream, pulled from the host as the guest reads it.
    const body = r.streamed && inv.stream !== undefined ? incomingBody(inv.stream) : r.body;
    // As on Workers, the incoming request's headers are immutable.
    const request = incomingRequest(r.url, r.method, r.headers, body);
    pending = isObject ? handler.call(target, request, workerEnv, ctx) : handler.call(target, request);
  } finally {
    // The actor's next waiting call may be delivered once this one has run to its first await.
    if (actor) actorDelivered();
  }
  let result: unknown;
  try {
    result = await pending;
  } finally {
    // Writes made before a throw are made durable too: a later call may read them.
    if (actor) await actorOutputGate();
  }
  if (!(result instanceof Response)) throw new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'.");
  // Read from the Response's internal state, so a guest cannot fake what crosses.
  const head = responseHead(result);
  if (head.isError) throw new TypeError("Return value from serve handler must not be an error response (like Response.error()).");
  const source = takeBodySource(result);
  const wire = { __proto__: null, status: head.status, statusText: head.statusText, headers: head.headers, body: null } as WireResponse;
  if (source instanceof Uint8Array) {
    // Buffered bytes cross in the reply itself.
    wire.body = source.byteOffset === 0 && source.byteLength === source.buffer.byteLength ? source : source.slice();
  } else if (source !== null && inv.stream !== undefined) {
    // A stream flows out a chunk at a time; the run stays alive until it has been sent.
    wire.streamed = true;
    keepAlive(sendBody(source, inv.stream));
  } else if (source !== null) {
    wire.body = await bodyBytes(result);
  }
  return { __proto__: null, wire } as unknown as { wire: WireResponse };
}

const FORBIDDEN_METHODS = new Set(["constructor"]);

/**
 * Workers event handlers: on a plain-object export they are called as (event, env, ctx), like fetch;
 * on a WorkerEntrypoint class as methods (this.env, this.ctx).
 */
const EVENT_HANDLERS = new Set(["tail", "trace", "scheduled", "queue", "email"]);

/** A scheduled event is Workers' ScheduledController: its data plus noRetry() (a no-op here: nothing retries). */
function eventArgs(method: string, args: unknown[]): unknown[] {
  const event = args[0];
  if (method !== "scheduled" || typeof event !== "object" || event === null) return args;
  return [{ ...event, noRetry() {} }, ...args.slice(1)];
}

async function dispatchRpc(inv: Extract<Invocation, { kind: "rpc" }>): Promise<unknown> {
  const actor = hostsActor(inv.entrypoint);
  let pending: unknown;
  try {
    const { target, ctx, isObject } = actor ? await resolveActor(inv.entrypoint, inv.props) : resolveEntrypoint(inv.entrypoint, inv.props);
    const method = inv.method;
    // Only methods reached through the prototype chain below Object.prototype are callable,
    // so `toString`, `__defineGetter__` and friends are never exposed as RPC.
    const fn = FORBIDDEN_METHODS.has(method) || method in Object.prototype ? undefined : target[method];
    if (typeof fn !== "function") throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
    const args = isObject && EVENT_HANDLERS.has(method) ? [...eventArgs(method, inv.args), workerEnv, ctx] : inv.args;
    pending = fn.apply(target, args);
  } finally {
    if (actor) actorDelivered();
  }
  try {
    return await pending;
  } finally {
    if (actor) await actorOutputGate();
  }
}
