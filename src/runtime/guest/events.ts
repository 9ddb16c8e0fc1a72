/**
 * `Event`, `CustomEvent` and `EventTarget`, per the DOM Standard §2. A Worker has no node tree, so
 * every target here is one "without a parent": an event's path holds only its target, and dispatch
 * (§2.9) invokes the target's capturing listeners, then its other listeners, both at AT_TARGET.
 * Also the "event handler" IDL attributes (HTML §8.1.8.1) that `AbortSignal.onabort` is built on.
 */
import { DOMException } from "./dom-exception.ts";

// ---------------------------------------------------------------------------------------------------
// Web IDL conversions

/** Web IDL DOMString: ToString (a Symbol throws TypeError, as ToString requires). */
export function toDOMString(v: unknown): string {
  return `${v as string}`;
}

/** Throws the TypeError Web IDL requires when an operation gets fewer than its required arguments. */
export function requireArgs(given: number, needed: number, what: string): void {
  if (given < needed) {
    throw new TypeError(`Failed to execute ${what}: ${needed} argument${needed === 1 ? "" : "s"} required, but only ${given} present.`);
  }
}

/** Web IDL dictionary conversion (§3.2.17): undefined/null is the empty dictionary, else an object. */
export function toDictionary(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what} is not an object.`);
  return v as Record<string, unknown>;
}

/** HTML "report an exception": Workers log it; dispatch goes on. */
export function reportException(e: unknown): void {
  try {
    const c = (globalThis as { console?: { error?: (...a: unknown[]) => void } }).console;
    if (c && typeof c.error === "function") c.error("Uncaught", e);
  } catch {
    // Reporting must never throw into the dispatch that called it.
  }
}

// ---------------------------------------------------------------------------------------------------
// Event (DOM §2.2)

export interface EventInit {
  bubbles?: boolean;
  cancelable?: boolean;
  composed?: boolean;
}

const NONE = 0;
const CAPTURING_PHASE = 1;
const AT_TARGET = 2;
const BUBBLING_PHASE = 3;

// Internal access to an Event's flags, for dispatch (assigned in Event's static block).
let eventState: (e: Event) => EventState;
let isEvent: (v: unknown) => v is Event;

interface EventState {
  type: string;
  target: EventTarget | null;
  currentTarget: EventTarget | null;
  eventPhase: number;
  bubbles: boolean;
  cancelable: boolean;
  composed: boolean;
  // DOM §2.2 flags
  stopPropagation: boolean;
  stopImmediatePropagation: boolean;
  canceled: boolean;
  inPassiveListener: boolean;
  initialized: boolean;
  dispatching: boolean;
  isTrusted: boolean;
  timeStamp: number;
}

/** [LegacyUnforgeable] isTrusted is an own, non-configurable accessor on each event (§2.2). */
let isTrustedGetter: (this: Event) => boolean;

/** DOM §2.2 "set the canceled flag": only for a cancelable event outside a passive listener. */
function setCanceledFlag(s: EventState): void {
  if (s.cancelable && !s.inPassiveListener) s.canceled = true;
}

export class Event {
  // Constants, defined on the interface and its prototype below (Web IDL §3.7.5 "constants").
  declare static readonly NONE: 0;
  declare static readonly CAPTURING_PHASE: 1;
  declare static readonly AT_TARGET: 2;
  declare static readonly BUBBLING_PHASE: 3;
  declare readonly NONE: 0;
  declare readonly CAPTURING_PHASE: 1;
  declare readonly AT_TARGET: 2;
  declare readonly BUBBLING_PHASE: 3;
  declare readonly isTrusted: boolean;

  #s: EventState;

  static {
    eventState = (e) => e.#s;
    isEvent = (v): v is Event => typeof v === "object" && v !== null && #s in v;
    isTrustedGetter = function (this: Event) {
      return this.#s.isTrusted;
    };
  }

  /** DOM §2.2 "constructor steps" via "inner event creation steps" (§2.5). */
  constructor(type: string, eventInitDict?: EventInit) {
    requireArgs(arguments.length, 1, "'Event' constructor");
    const t = toDOMString(type);
    // Dictionary members are read in Web IDL order: inherited first, then lexicographically.
    const init = toDictionary(eventInitDict, "The provided value (EventInit)");
    const bubbles = !!init.bubbles;
    const cancelable = !!init.cancelable;
    const composed = !!init.composed;
    this.#s = {
      type: t, target: null, currentTarget: null, eventPhase: NONE, bubbles, cancelable, composed,
      stopPropagation: false, stopImmediatePropagation: false, canceled: false, inPassiveListener: false,
      // §2.5 step 3: set the initialized flag; step 4: timeStamp (Workers use the Date.now() clock).
      initialized: true, dispatching: false, isTrusted: false, timeStamp: Date.now(),
    };
    Object.defineProperty(this, "isTrusted", { get: isTrustedGetter, enumerable: true, configurable: false });
  }

  get type(): string { return this.#s.type; }
  get target(): EventTarget | null { return this.#s.target; }
  /** Legacy alias of target (§2.2). */
  get srcElement(): EventTarget | null { return this.#s.target; }
  get currentTarget(): EventTarget | null { return this.#s.currentTarget; }
  get eventPhase(): number { return this.#s.eventPhase; }
  get bubbles(): boolean { return this.#s.bubbles; }
  get cancelable(): boolean { return this.#s.cancelable; }
  get composed(): boolean { return this.#s.composed; }
  get defaultPrevented(): boolean { return this.#s.canceled; }
  get timeStamp(): number { return this.#s.timeStamp; }

  /** §2.2: the path has a single entry (the target) while dispatching, none otherwise. */
  composedPath(): EventTarget[] {
    const s = this.#s;
    return s.dispatching && s.currentTarget ? [s.currentTarget] : [];
  }

  stopPropagation(): void { this.#s.stopPropagation = true; }

  get cancelBubble(): boolean { return this.#s.stopPropagation; }
  set cancelBubble(value: boolean) { if (value) this.#s.stopPropagation = true; }

  stopImmediatePropagation(): void {
    this.#s.stopPropagation = true;
    this.#s.stopImmediatePropagation = true;
  }

  get returnValue(): boolean { return !this.#s.canceled; }
  set returnValue(value: boolean) { if (!value) setCanceledFlag(this.#s); }

  preventDefault(): void { setCanceledFlag(this.#s); }

  /** Legacy (§2.2 "initialize"): ignored while the event is being dispatched. */
  initEvent(type: string, bubbles = false, cancelable = false): void {
    requireArgs(arguments.length, 1, "'initEvent' on 'Event'");
    const s = this.#s;
    if (s.dispatching) return;
    s.initialized = true;
    s.stopPropagation = false;
    s.stopImmediatePropagation = false;
    s.canceled = false;
    s.isTrusted = false;
    s.target = null;
    s.type = toDOMString(type);
    s.bubbles = !!bubbles;
    s.cancelable = !!cancelable;
  }
}

// ---------------------------------------------------------------------------------------------------
// CustomEvent (DOM §2.4)

export interface CustomEventInit<T = unknown> extends EventInit {
  detail?: T;
}

export class CustomEvent<T = unknown> extends Event {
  #detail: T | null;

  constructor(type: string, eventInitDict?: CustomEventInit<T>) {
    requireArgs(arguments.length, 1, "'CustomEvent' constructor");
    super(type, eventInitDict);
    const init = toDictionary(eventInitDict, "The provided value (CustomEventInit)");
    // `any detail = null`: an absent (undefined) member takes the default.
    this.#detail = init.detail === undefined ? null : (init.detail as T);
  }

  get detail(): T | null { return this.#detail; }

  /** Legacy (§2.4): ignored while the event is being dispatched. */
  initCustomEvent(type: string, bubbles = false, cancelable = false, detail: T | null = null): void {
    requireArgs(arguments.length, 1, "'initCustomEvent' on 'CustomEvent'");
    if (eventState(this).dispatching) return;
    this.initEvent(type, bubbles, cancelable);
    this.#detail = detail;
  }
}

// ---------------------------------------------------------------------------------------------------
// EventTarget (DOM §2.7)

export type EventListenerCallback = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };

export interface AddEventListenerOptions {
  capture?: boolean;
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignalLike;
}

/** What EventTarget needs of an AbortSignal (abort.ts), without importing it (no import cycle). */
export interface AbortSignalLike {
  readonly aborted: boolean;
}

/** The AbortSignal hooks, registered by abort.ts: brand check and abort-algorithm add/remove. */
export interface SignalHooks {
  isSignal(v: unknown): boolean;
  addAlgorithm(signal: AbortSignalLike, algorithm: () => void): void;
  removeAlgorithm(signal: AbortSignalLike, algorithm: () => void): void;
}
let signalHooks: SignalHooks | undefined;
export function registerSignalHooks(hooks: SignalHooks): void {
  signalHooks = hooks;
}

/** DOM §2.7 "event listener" struct. */
interface Listener {
  type: string;
  callback: object;
  capture: boolean;
  passive: boolean;
  once: boolean;
  signal: AbortSignalLike | null;
  removed: boolean;
  /** The abort algorithm added for `signal`, dropped again if the listener is removed first. */
  onAbort: (() => void) | null;
}

/** HTML §8.1.8.1 "event handler": its value and the listener it installed, if activated. */
interface EventHandler {
  value: object | null;
  listener: Listener | null;
}

let fireEventInternal: (target: EventTarget, event: Event) => boolean;
let getHandler: (target: EventTarget, type: string) => object | null;
let setHandler: (target: EventTarget, type: string, value: unknown) => void;

/** DOM §2.7 "flatten" / "flatten more": options (a boolean or a dictionary) to capture/once/passive/signal. */
function flattenMore(options: unknown): { capture: boolean; once: boolean; passive: boolean; signal: AbortSignalLike | null } {
  if (options === undefined || options === null || (typeof options !== "object" && typeof options !== "function")) {
    return { capture: !!options, once: false, passive: false, signal: null };
  }
  const o = options as Record<string, unknown>;
  const capture = !!o.capture;
  const once = !!o.once;
  const passiveValue = o.passive;
  const signalValue = o.signal;
  let signal: AbortSignalLike | null = null;
  if (signalValue !== undefined) {
    if (!signalHooks?.isSignal(signalValue)) {
      throw new TypeError("Failed to read the 'signal' property from 'AddEventListenerOptions': Failed to convert value to 'AbortSignal'.");
    }
    signal = signalValue as AbortSignalLike;
  }
  // "default passive value" is false for every target outside a document.
  return { capture, once, passive: passiveValue === undefined ? false : !!passiveValue, signal };
}

/** DOM §2.7 "flatten": only `capture` matters for removal. */
function flatten(options: unknown): boolean {
  if (options === undefined || options === null || (typeof options !== "object" && typeof options !== "function")) return !!options;
  return !!(options as Record<string, unknown>).capture;
}

/** Web IDL callback interface conversion: an object (or null/undefined as null), else TypeError. */
function toCallback(v: unknown, what: string): object | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" && typeof v !== "function") {
    throw new TypeError(`Failed to execute '${what}' on 'EventTarget': parameter 2 is not of type 'Object'.`);
  }
  return v;
}

export class EventTarget {
  /** The event listener list (§2.7), kept per type: dispatch only ever looks at one type. */
  #listeners = new Map<string, Listener[]>();
  #handlers: Map<string, EventHandler> | null = null;

  static {
    fireEventInternal = (target, event) => {
      eventState(event).isTrusted = true;
      return target.#dispatch(event);
    };
    getHandler = (target, type) => target.#handlers?.get(type)?.value ?? null;
    setHandler = (target, type, value) => target.#setHandler(type, value);
  }

  constructor() {}

  /** DOM §2.7 addEventListener() and "add an event listener". */
  addEventListener(type: string, callback: EventListenerCallback | null, options?: boolean | AddEventListenerOptions): void {
    requireArgs(arguments.length, 2, "'addEventListener' on 'EventTarget'");
    const t = toDOMString(type);
    const cb = toCallback(callback, "addEventListener");
    const { capture, once, passive, signal } = flattenMore(options);
    this.#add({ type: t, callback: cb as object, capture, once, passive, signal, removed: false, onAbort: null });
  }

  /** DOM §2.7 removeEventListener() and "remove an event listener". */
  removeEventListener(type: string, callback: EventListenerCallback | null, options?: boolean | { capture?: boolean }): void {
    requireArgs(arguments.length, 2, "'removeEventListener' on 'EventTarget'");
    const t = toDOMString(type);
    const cb = toCallback(callback, "removeEventListener");
    const capture = flatten(options);
    if (cb === null) return;
    const list = this.#listeners.get(t);
    const found = list?.find((l) => l.callback === cb && l.capture === capture);
    if (found) this.#remove(found);
  }

  /** DOM §2.7 dispatchEvent(): InvalidStateError if already dispatching or not initialized. */
  dispatchEvent(event: Event): boolean {
    requireArgs(arguments.length, 1, "'dispatchEvent' on 'EventTarget'");
    if (!isEvent(event)) throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.");
    const s = eventState(event);
    if (s.dispatching || !s.initialized) {
      throw new DOMException("Failed to execute 'dispatchEvent' on 'EventTarget': The event is already being dispatched.", "InvalidStateError");
    }
    // Step 2: initialize event's isTrusted attribute to false.
    s.isTrusted = false;
    return this.#dispatch(event);
  }

  /** DOM §2.7 "add an event listener". */
  #add(listener: Listener): void {
    const { signal } = listener;
    // Step 2: if listener's signal is not null and is aborted, return.
    if (signal && signal.aborted) return;
    // Step 3: if listener's callback is null, return.
    if (listener.callback === null) return;
    // Step 4: append unless an equal (type, callback, capture) listener is already present.
    let list = this.#listeners.get(listener.type);
    if (list?.some((l) => l.callback === listener.callback && l.capture === listener.capture)) return;
    if (!list) this.#listeners.set(listener.type, (list = []));
    list.push(listener);
    // Step 5: if signal is not null, add an abort algorithm that removes the listener.
    if (signal && signalHooks) {
      listener.onAbort = () => this.#remove(listener);
      signalHooks.addAlgorithm(signal, listener.onAbort);
    }
  }

  /** DOM §2.7 "remove an event listener": set removed (seen by a dispatch in progress), then remove. */
  #remove(listener: Listener): void {
    listener.removed = true;
    const list = this.#listeners.get(listener.type);
    if (list) {
      const i = list.indexOf(listener);
      if (i >= 0) {
        // A fresh array: a dispatch in progress iterates its own clone anyway (§2.9 "invoke" step 6).
        const next = list.slice(0, i).concat(list.slice(i + 1));
        if (next.length) this.#listeners.set(listener.type, next);
        else this.#listeners.delete(listener.type);
      }
    }
    if (listener.signal && listener.onAbort && signalHooks) signalHooks.removeAlgorithm(listener.signal, listener.onAbort);
    listener.onAbort = null;
  }

  /**
   * DOM §2.9 "dispatch", for a target whose "get the parent" returns null: the event path is the
   * target alone (step 5.4), so both invocations below happen AT_TARGET (steps 5.13 and 5.14).
   */
  #dispatch(event: Event): boolean {
    const s = eventState(event);
    // Step 1: set event's dispatch flag.
    s.dispatching = true;
    // Steps 5.4 / 5.13.2 ("invoke" step 1): event's target is the shadow-adjusted target, here itself.
    s.target = this;
    try {
      // Step 5.13: capture invocation; the only struct is the target, so eventPhase is AT_TARGET.
      s.eventPhase = AT_TARGET;
      this.#invoke(s, event, "capturing");
      // Step 5.14: bubble invocation, again AT_TARGET (bubbles only matters for parents, of which there are none).
      s.eventPhase = AT_TARGET;
      this.#invoke(s, event, "bubbling");
    } finally {
      // Steps 6-12: reset phase, currentTarget, path; unset dispatch and propagation flags.
      s.eventPhase = NONE;
      s.currentTarget = null;
      s.dispatching = false;
      s.stopPropagation = false;
      s.stopImmediatePropagation = false;
    }
    // Step 13: return false if event's canceled flag is set; otherwise true.
    return !s.canceled;
  }

  /** DOM §2.9 "invoke" and "inner invoke". */
  #invoke(s: EventState, event: Event, phase: "capturing" | "bubbling"): void {
    // Invoke step 5: if event's stop propagation flag is set, return.
    if (s.stopPropagation) return;
    // Invoke step 4: set event's currentTarget to the struct's invocation target.
    s.currentTarget = this;
    // Invoke step 6: a clone of the listener list, so listeners added from here on are not run.
    const listeners = this.#listeners.get(s.type);
    if (!listeners) return;
    const clone = listeners.slice();
    // Inner invoke step 2: for each listener whose removed is false (checked now, at its turn).
    for (const listener of clone) {
      if (listener.removed) continue;
      // Inner invoke steps 2.1-2.4: type matches (by construction), and the phase matches capture.
      if (phase === "capturing" && !listener.capture) continue;
      if (phase === "bubbling" && listener.capture) continue;
      // Step 2.5: a once listener is removed before it runs.
      if (listener.once) this.#remove(listener);
      // Step 2.8: set the in passive listener flag if passive.
      if (listener.passive) s.inPassiveListener = true;
      // Step 2.10: "call a user object's operation" (Web IDL §3.11) with "handleEvent"; report exceptions.
      try {
        const cb = listener.callback as { handleEvent?: unknown };
        if (typeof cb === "function") {
          (cb as (e: Event) => unknown).call(s.currentTarget, event);
        } else {
          const handleEvent = cb.handleEvent;
          if (typeof handleEvent !== "function") throw new TypeError("The 'handleEvent' property of the event listener is not callable.");
          handleEvent.call(cb, event);
        }
      } catch (e) {
        reportException(e);
      }
      // Step 2.11: unset the in passive listener flag.
      s.inPassiveListener = false;
      // Step 2.13: if event's stop immediate propagation flag is set, stop here.
      if (s.stopImmediatePropagation) break;
    }
  }

  /** HTML §8.1.8.1 event handler IDL attribute setter ("activate" / "deactivate" an event handler). */
  #setHandler(type: string, value: unknown): void {
    const handlers = (this.#handlers ??= new Map());
    // [LegacyTreatNonObjectAsNull] EventHandlerNonNull: a non-object is null.
    const v = typeof value === "object" || typeof value === "function" ? value : null;
    let handler = handlers.get(type);
    if (v === null) {
      // Deactivate: remove the listener, set the value to null.
      if (handler?.listener) this.#remove(handler.listener);
      handlers.delete(type);
      return;
    }
    if (!handler) handlers.set(type, (handler = { value: null, listener: null }));
    handler.value = v;
    if (handler.listener) return; // Already active: the listener keeps its place in the list.
    const h = handler;
    // "The event handler processing algorithm": call the current value with this = currentTarget;
    // a return value of false cancels the event.
    const callback = function (this: unknown, event: Event) {
      const fn = h.value;
      if (typeof fn !== "function") return;
      const ret = (fn as (e: Event) => unknown).call(this, event);
      if (ret === false) setCanceledFlag(eventState(event));
    };
    h.listener = { type, callback, capture: false, passive: false, once: false, signal: null, removed: false, onAbort: null };
    this.#add(h.listener);
  }
}

/** DOM §2.10 "fire an event": a new trusted event of `type`, dispatched at `target`. */
export function fireEvent(target: EventTarget, type: string): boolean {
  return fireEventInternal(target, new Event(type));
}

/** Defines an `on<type>` event handler IDL attribute (HTML §8.1.8.1) on a prototype. */
export function defineEventHandler(proto: object, type: string): void {
  Object.defineProperty(proto, `on${type}`, {
    get(this: EventTarget) { return getHandler(this, type); },
    set(this: EventTarget, value: unknown) { setHandler(this, type, value); },
    enumerable: true,
    configurable: true,
  });
}

// Event's constants also live on its prototype (Web IDL §3.7.5: constants are on the interface object and the interface prototype object).
for (const [key, value] of [["NONE", NONE], ["CAPTURING_PHASE", CAPTURING_PHASE], ["AT_TARGET", AT_TARGET], ["BUBBLING_PHASE", BUBBLING_PHASE]] as const) {
  const desc = { value, writable: false, enumerable: true, configurable: false };
  Object.defineProperty(Event, key, desc);
  Object.defineProperty(Event.prototype, key, desc);
}
Object.defineProperty(Event.prototype, Symbol.toStringTag, { value: "Event", configurable: true });
Object.defineProperty(CustomEvent.prototype, Symbol.toStringTag, { value: "CustomEvent", configurable: true });
Object.defineProperty(EventTarget.prototype, Symbol.toStringTag, { value: "EventTarget", configurable: true });
