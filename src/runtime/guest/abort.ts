/**
 * `AbortController` and `AbortSignal`, per the DOM Standard §3 ("Aborting ongoing activities"),
 * including dependent signals (`AbortSignal.any`). A signal's source and dependent signals are weak
 * sets in the spec; here they are plain sets, cleared as soon as a signal aborts (when it can no
 * longer matter), which keeps every signal that could still fire an "abort" event alive, as the
 * spec's garbage-collection rules require.
 */
import { DOMException } from "./dom-exception.ts";
import { EventTarget, defineEventHandler, fireEvent, registerSignalHooks, requireArgs, type Event } from "./events.ts";

interface SignalState {
  /** Undefined while not aborted (the spec's "abort reason"; `abort(undefined)` stores a DOMException). */
  reason: unknown;
  aborted: boolean;
  algorithms: Set<() => void>;
  dependent: boolean;
  sources: Set<AbortSignal>;
  dependents: Set<AbortSignal>;
}

let constructing = false;
let stateOf: (s: AbortSignal) => SignalState;
let isSignal: (v: unknown) => v is AbortSignal;

function abortError(): DOMException {
  return new DOMException("This operation was aborted", "AbortError");
}

/** Web IDL [EnforceRange] unsigned long long. */
function enforceRangeULL(v: unknown, what: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TypeError(`${what} is not a finite number.`);
  const t = Math.trunc(n);
  if (t < 0 || t > Number.MAX_SAFE_INTEGER) throw new TypeError(`${what} is outside the accepted range of 0 to ${Number.MAX_SAFE_INTEGER}.`);
  return t;
}

/** A new AbortSignal, bypassing the constructor's "Illegal constructor" check. */
function createSignal(): AbortSignal {
  constructing = true;
  try {
    return new AbortSignal();
  } finally {
    constructing = false;
  }
}

/** DOM "signal abort". */
function signalAbort(signal: AbortSignal, reason: unknown): void {
  const s = stateOf(signal);
  // Step 1: if signal is aborted, return.
  if (s.aborted) return;
  // Step 2: set signal's abort reason to reason if given, otherwise a new "AbortError" DOMException.
  s.aborted = true;
  s.reason = reason === undefined ? abortError() : reason;
  // Steps 3-4: dependent signals not yet aborted take the same reason now, before any event fires.
  const dependentsToAbort: AbortSignal[] = [];
  for (const dependent of s.dependents) {
    const d = stateOf(dependent);
    if (!d.aborted) {
      d.aborted = true;
      d.reason = s.reason;
      dependentsToAbort.push(dependent);
    }
  }
  // Step 5: run the abort steps for signal; step 6: then for each dependent signal to abort.
  runAbortSteps(signal);
  for (const dependent of dependentsToAbort) runAbortSteps(dependent);
}

/** DOM "run the abort steps": abort algorithms, then fire "abort". */
function runAbortSteps(signal: AbortSignal): void {
  const s = stateOf(signal);
  // Once aborted, a signal never aborts again: the links only kept it reachable for that.
  for (const source of s.sources) stateOf(source).dependents.delete(signal);
  s.sources.clear();
  s.dependents.clear();
  // Step 1: for each algorithm of signal's abort algorithms, run it; step 2: empty the list.
  const algorithms = [...s.algorithms];
  s.algorithms.clear();
  for (const algorithm of algorithms) algorithm();
  // Step 3: fire an event named abort at signal.
  fireEvent(signal, "abort");
}

/** DOM "create a dependent abort signal" from `signals`. */
function createDependentSignal(signals: AbortSignal[]): AbortSignal {
  // Step 1: let resultSignal be a new object.
  const result = createSignal();
  const r = stateOf(result);
  // Step 2: if any input is aborted, result takes its reason and is returned (already aborted).
  for (const signal of signals) {
    const s = stateOf(signal);
    if (s.aborted) {
      r.aborted = true;
      r.reason = s.reason;
      return result;
    }
  }
  // Step 3: set resultSignal's dependent to true.
  r.dependent = true;
  // Step 4: link to each input, or (for a dependent input) to that input's own sources.
  for (const signal of signals) {
    const s = stateOf(signal);
    if (!s.dependent) {
      r.sources.add(signal);
      s.dependents.add(result);
    } else {
      for (const source of s.sources) {
        // Step 4.2.1: assert source is neither aborted nor dependent.
        r.sources.add(source);
        stateOf(source).dependents.add(result);
      }
    }
  }
  return result;
}

export class AbortSignal extends EventTarget {
  #s: SignalState = { reason: undefined, aborted: false, algorithms: new Set(), dependent: false, sources: new Set(), dependents: new Set() };

  static {
    stateOf = (signal) => signal.#s;
    isSignal = (v): v is AbortSignal => typeof v === "object" && v !== null && #s in v;
  }

  /** Not constructible by script: signals come from AbortController and the static factories. */
  constructor() {
    if (!constructing) throw new TypeError("Illegal constructor");
    super();
  }

  /** DOM: abort(reason): a signal already aborted with `reason` (or an "AbortError" DOMException). */
  static abort(reason?: unknown): AbortSignal {
    const signal = createSignal();
    const s = signal.#s;
    s.aborted = true;
    s.reason = reason === undefined ? abortError() : reason;
    return signal;
  }

  /**
   * DOM: timeout(milliseconds): a signal aborted with a "TimeoutError" DOMException after `ms`.
   * Uses the global setTimeout as found at call time; without one there is no way to honour it.
   */
  static timeout(milliseconds: number): AbortSignal {
    requireArgs(arguments.length, 1, "'timeout' on 'AbortSignal'");
    const ms = enforceRangeULL(milliseconds, "Failed to execute 'timeout' on 'AbortSignal': Value");
    const setTimeoutFn = (globalThis as { setTimeout?: unknown }).setTimeout;
    if (typeof setTimeoutFn !== "function") throw new TypeError("AbortSignal.timeout() needs setTimeout, which is not available here.");
    const signal = createSignal();
    (setTimeoutFn as (cb: () => void, ms: number) => unknown)(() => {
      signalAbort(signal, new DOMException("The operation was aborted due to timeout", "TimeoutError"));
    }, ms);
    return signal;
  }

  /** DOM: any(signals): a dependent signal that aborts with the first of `signals` to abort. */
  static any(signals: Iterable<AbortSignal>): AbortSignal {
    requireArgs(arguments.length, 1, "'any' on 'AbortSignal'");
    // Web IDL sequence<AbortSignal>: an iterable object, each element an AbortSignal.
    if (typeof signals !== "object" || signals === null || typeof (signals as Iterable<unknown>)[Symbol.iterator] !== "function") {
      throw new TypeError("Failed to execute 'any' on 'AbortSignal': The provided value cannot be converted to a sequence.");
    }
    const list: AbortSignal[] = [];
    for (const s of signals as Iterable<unknown>) {
      if (!isSignal(s)) throw new TypeError("Failed to execute 'any' on 'AbortSignal': Failed to convert value to 'AbortSignal'.");
      list.push(s);
    }
    return createDependentSignal(list);
  }

  get aborted(): boolean {
    return this.#s.aborted;
  }

  get reason(): unknown {
    return this.#s.reason;
  }

  /** DOM: throwIfAborted(): throws this's abort reason if aborted. */
  throwIfAborted(): void {
    if (this.#s.aborted) throw this.#s.reason;
  }

  declare onabort: ((this: AbortSignal, ev: Event) => unknown) | null;
}

export class AbortController {
  #signal: AbortSignal;

  /** DOM: constructor steps: a new AbortSignal. */
  constructor() {
    this.#signal = createSignal();
  }

  get signal(): AbortSignal {
    return this.#signal;
  }

  /** DOM: abort(reason): signal abort on this's signal with reason if given. */
  abort(reason?: unknown): void {
    signalAbort(this.#signal, reason);
  }
}

defineEventHandler(AbortSignal.prototype, "abort");
Object.defineProperty(AbortSignal.prototype, Symbol.toStringTag, { value: "AbortSignal", configurable: true });
Object.defineProperty(AbortController.prototype, Symbol.toStringTag, { value: "AbortController", configurable: true });

registerSignalHooks({
  isSignal,
  addAlgorithm: (signal, algorithm) => {
    const s = stateOf(signal as AbortSignal);
    if (!s.aborted) s.algorithms.add(algorithm);
  },
  removeAlgorithm: (signal, algorithm) => {
    stateOf(signal as AbortSignal).algorithms.delete(algorithm);
  },
});
