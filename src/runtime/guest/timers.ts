/**
 * setTimeout/setInterval/clearTimeout/clearInterval (HTML §8.6) and queueMicrotask (HTML §8.7), on the
 * executor's timer service. Each timer is a host task; the executor cancels every task when a run
 * ends, so no timer fires after it. A timer's callback that throws is reported to the console, as an
 * uncaught exception would be.
 */
import { callHost, forgetHostTask, startHostTask } from "./host-calls.ts";

interface Timer {
  ticket: number;
  repeat: boolean;
}

const active = new Map<number, Timer>();
let nextId = 1;

/** As in the executor's timer service (which enforces it too): pending timers per isolate. */
const MAX_PENDING_TIMERS = 10_000;

function schedule(id: number, callback: (...args: unknown[]) => void, ms: number, args: unknown[], repeat: boolean): void {
  const { ticket, promise } = startHostTask<void>("timers", "sleep", ms);
  active.set(id, { ticket, repeat });
  promise.then(() => {
    const timer = active.get(id);
    if (!timer || timer.ticket !== ticket) return; // cleared meanwhile
    if (repeat) schedule(id, callback, ms, args, true);
    else active.delete(id);
    try {
      callback(...args);
    } catch (e) {
      reportError(e);
    }
  }, () => active.delete(id));
}

function reportError(e: unknown): void {
  (globalThis as { console?: { error(...a: unknown[]): void } }).console?.error("Uncaught", e);
}

function checkCallback(callback: unknown): asserts callback is (...args: unknown[]) => void {
  // A string would be evaluated by browsers; code generation from strings is not available here.
  if (typeof callback !== "function") throw new TypeError("The callback provided as parameter 1 is not a function.");
}

function delay(ms: unknown): number {
  const n = Number(ms);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function checkQuota(): void {
  if (active.size >= MAX_PENDING_TIMERS) throw new RangeError(`Too many pending timers (at most ${MAX_PENDING_TIMERS}).`);
}

export function setTimeout(callback: unknown, ms?: unknown, ...args: unknown[]): number {
  checkCallback(callback);
  checkQuota();
  const id = nextId++;
  schedule(id, callback, delay(ms), args, false);
  return id;
}

export function setInterval(callback: unknown, ms?: unknown, ...args: unknown[]): number {
  checkCallback(callback);
  checkQuota();
  const id = nextId++;
  schedule(id, callback, delay(ms), args, true);
  return id;
}

export function clearTimeout(id?: unknown): void {
  const timer = active.get(Number(id));
  if (!timer) return;
  active.delete(Number(id));
  forgetHostTask(timer.ticket);
  callHost("timers", "cancel", timer.ticket);
}

export const clearInterval = clearTimeout;

export function queueMicrotask(callback: unknown): void {
  checkCallback(callback);
  Promise.resolve().then(() => {
    try {
      callback();
    } catch (e) {
      reportError(e);
    }
  });
}

/** Called when a run ends: the executor has cancelled the host side; forget ours too. */
export function clearAllTimers(): void {
  for (const timer of active.values()) forgetHostTask(timer.ticket);
  active.clear();
}

export function installTimers(g: typeof globalThis): void {
  for (const [name, value] of Object.entries({ setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask })) {
    Object.defineProperty(g, name, { value, writable: true, configurable: true });
  }
}
