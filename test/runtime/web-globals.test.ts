/**
 * The small Web APIs on a worker's global scope (DOMException, Event/EventTarget/CustomEvent,
 * AbortController/AbortSignal, TextEncoder/TextDecoder, atob/btoa, navigator, self), each exercised
 * inside a worker's fetch handler through the public API; the handler returns what it saw as JSON.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkerLoader, type RunReport } from "../../src/index.ts";
import { fetchText, worker } from "../helpers.ts";

let loader: WorkerLoader;
const reports: RunReport[] = [];
before(async () => {
  loader = new WorkerLoader({ executors: 1, onRun: (r) => reports.push(r) });
  await loader.ready();
});
after(() => loader.close());

/** Guest-side helpers for every probe. */
const PRELUDE = `
const err = (f) => { try { f(); return "no error"; } catch (e) { return String(e?.name) + (e?.code !== undefined ? "/" + e.code : ""); } };
const bytes = (u8) => Array.from(u8);
const fffd = (s) => s.split("").map((c) => c === "\\uFFFD" ? "?" : c.charCodeAt(0) < 0x80 ? c : "U+" + c.charCodeAt(0).toString(16).toUpperCase()).join("");
`;

/** Runs `body` as an async function in a fresh worker's fetch handler; returns its JSON result. */
async function guest<T = Record<string, unknown>>(body: string): Promise<T> {
  const stub = loader.load(worker(`${PRELUDE}
export default { async fetch(request, env, ctx) {
  const result = await (async () => { ${body} })();
  return new Response(JSON.stringify(result));
} };`));
  const text = await fetchText(stub);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`guest did not answer JSON: ${text}`);
  }
}

describe("globals (Web IDL §3.7 interface objects; HTML §7.2 WindowOrWorkerGlobalScope)", () => {
  test("every global is writable, configurable, not enumerable; self is globalThis; navigator as on Workers", async () => {
    const r = await guest(`
      const names = ["DOMException", "Event", "EventTarget", "CustomEvent", "AbortController", "AbortSignal", "TextEncoder", "TextDecoder", "atob", "btoa", "navigator", "self"];
      const descs = Object.fromEntries(names.map((n) => { const d = Object.getOwnPropertyDescriptor(globalThis, n); return [n, d ? [typeof d.value, d.writable, d.enumerable, d.configurable] : null]; }));
      return { descs, self: self === globalThis, nav: [navigator.userAgent, navigator.hardwareConcurrency, navigator.language],
        tags: [String(new EventTarget()), String(new AbortController()), String(new AbortController().signal), String(new TextEncoder()), String(new TextDecoder()), String(new Event("x")), String(navigator)] };`);
    for (const [name, d] of Object.entries(r.descs as Record<string, unknown[]>)) {
      const type = name === "navigator" || name === "self" ? "object" : "function";
      assert.deepEqual(d, [type, true, false, true], name);
    }
    assert.equal(r.self, true);
    assert.deepEqual(r.nav, ["Cloudflare-Workers", 1, "en"]);
    assert.deepEqual(r.tags, ["[object EventTarget]", "[object AbortController]", "[object AbortSignal]", "[object TextEncoder]", "[object TextDecoder]", "[object Event]", "[object Navigator]"]);
  });
});

describe("DOMException (Web IDL §3.14, §4.3)", () => {
  test("name, message and the legacy code table; defaults; constants", async () => {
    const r = await guest(`
      const names = ["IndexSizeError", "HierarchyRequestError", "WrongDocumentError", "InvalidCharacterError", "NoModificationAllowedError",
        "NotFoundError", "NotSupportedError", "InUseAttributeError", "InvalidStateError", "SyntaxError", "InvalidModificationError",
        "NamespaceError", "InvalidAccessError", "TypeMismatchError", "SecurityError", "NetworkError", "AbortError", "URLMismatchError",
        "QuotaExceededError", "TimeoutError", "InvalidNodeTypeError", "DataCloneError", "EncodingError", "NotReadableError", "OperationError", "Custom"];
      const d = new DOMException();
      return {
        codes: Object.fromEntries(names.map((n) => [n, new DOMException("m", n).code])),
        defaults: [d.name, d.message, d.code],
        nullish: [new DOMException(undefined, undefined).name, new DOMException(null, null).name, new DOMException(null).message],
        constants: [DOMException.INDEX_SIZE_ERR, DOMException.DOMSTRING_SIZE_ERR, DOMException.ABORT_ERR, DOMException.DATA_CLONE_ERR, d.TIMEOUT_ERR, DOMException.VALIDATION_ERR],
        readonlyConstant: (() => { "use strict"; try { DOMException.ABORT_ERR = 1; return "assigned"; } catch (e) { return e.name; } })(),
        symbolName: err(() => new DOMException("m", Symbol())),
        noNew: err(() => DOMException("m")),
      };`);
    assert.deepEqual(r.codes, {
      IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5, NoModificationAllowedError: 7,
      NotFoundError: 8, NotSupportedError: 9, InUseAttributeError: 10, InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13,
      NamespaceError: 14, InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
      QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25, EncodingError: 0, NotReadableError: 0, OperationError: 0, Custom: 0,
    });
    assert.deepEqual(r.defaults, ["Error", "", 0]);
    assert.deepEqual(r.nullish, ["Error", "null", "null"]);
    assert.deepEqual(r.constants, [1, 2, 20, 25, 23, 16]);
    assert.equal(r.readonlyConstant, "TypeError");
    assert.equal(r.symbolName, "TypeError");
    assert.equal(r.noNew, "TypeError");
  });

  test("is an Error: prototype chain, getters on the prototype, stack, toString, thrown and caught", async () => {
    const r = await guest(`
      const e = new DOMException("went wrong", "NotFoundError");
      const caught = (() => { try { throw new DOMException("x", "AbortError"); } catch (x) { return x instanceof DOMException && x instanceof Error; } })();
      return {
        instanceofError: e instanceof Error, isError: typeof Error.isError === "function" ? Error.isError(e) : true,
        protoChain: Object.getPrototypeOf(DOMException.prototype) === Error.prototype,
        ownKeys: Object.getOwnPropertyNames(e).filter((k) => k !== "stack"),
        getters: ["name", "message", "code"].map((k) => typeof Object.getOwnPropertyDescriptor(DOMException.prototype, k)?.get),
        stackHead: e.stack.split("\\n")[0], stackHasFrame: /\\n\\s+at /.test(e.stack),
        toString: String(e), tag: Object.prototype.toString.call(e), caught,
        brand: err(() => Object.getOwnPropertyDescriptor(DOMException.prototype, "code").get.call({})),
      };`);
    assert.equal(r.instanceofError, true);
    assert.equal(r.isError, true);
    assert.equal(r.protoChain, true);
    assert.deepEqual(r.ownKeys, []);
    assert.deepEqual(r.getters, ["function", "function", "function"]);
    assert.equal(r.stackHead, "NotFoundError: went wrong");
    assert.equal(r.stackHasFrame, true);
    assert.equal(r.toString, "NotFoundError: went wrong");
    assert.equal(r.tag, "[object DOMException]");
    assert.equal(r.caught, true);
    assert.equal(r.brand, "TypeError");
  });

  test("a DOMException thrown out of a handler reaches the host with its name and message", async () => {
    const stub = loader.load(worker(`export default { fetch() { throw new DOMException("nope", "NotSupportedError"); } }`));
    await assert.rejects(stub.getEntrypoint().fetch("http://x/"), (e: Error) => e.name === "NotSupportedError" && /nope/.test(e.message));
  });
});

describe("Event and CustomEvent (DOM §2.2, §2.4, §2.5)", () => {
  test("constructor: type, init dictionary, defaults, constants, isTrusted own and false, timeStamp", async () => {
    const r = await guest(`
      const e = new Event("ping", { bubbles: true, cancelable: 1, composed: "yes" });
      const d = new Event("plain");
      const isTrusted = Object.getOwnPropertyDescriptor(e, "isTrusted");
      return {
        e: [e.type, e.bubbles, e.cancelable, e.composed, e.defaultPrevented, e.eventPhase, e.target, e.currentTarget, e.isTrusted, e.cancelBubble, e.returnValue],
        d: [d.bubbles, d.cancelable, d.composed],
        isTrusted: [typeof isTrusted.get, isTrusted.configurable],
        timeStamp: [typeof e.timeStamp, e.timeStamp === Date.now()],
        constants: [Event.NONE, Event.CAPTURING_PHASE, Event.AT_TARGET, Event.BUBBLING_PHASE, e.AT_TARGET],
        path: e.composedPath().length,
        noType: err(() => new Event()), badInit: err(() => new Event("x", 5)), noNew: err(() => Event("x")),
        typeCoerced: new Event(42).type,
        custom: [new CustomEvent("c", { detail: { a: 1 } }).detail, new CustomEvent("c").detail, new CustomEvent("c") instanceof Event],
      };`);
    assert.deepEqual(r.e, ["ping", true, true, true, false, 0, null, null, false, false, true]);
    assert.deepEqual(r.d, [false, false, false]);
    assert.deepEqual(r.isTrusted, ["function", false]);
    assert.deepEqual(r.timeStamp, ["number", true]);
    assert.deepEqual(r.constants, [0, 1, 2, 3, 2]);
    assert.equal(r.path, 0);
    assert.equal(r.noType, "TypeError");
    assert.equal(r.badInit, "TypeError");
    assert.equal(r.noNew, "TypeError");
    assert.equal(r.typeCoerced, "42");
    assert.deepEqual(r.custom, [{ a: 1 }, null, true]);
  });

  test("preventDefault needs cancelable (§2.2 'set the canceled flag'); returnValue and cancelBubble (legacy)", async () => {
    const r = await guest(`
      const a = new Event("a"); a.preventDefault();
      const b = new Event("b", { cancelable: true }); b.preventDefault();
      const c = new Event("c", { cancelable: true }); c.returnValue = false;
      const d = new Event("d"); d.cancelBubble = true; const dBefore = d.cancelBubble; d.cancelBubble = false;
      return { a: a.defaultPrevented, b: [b.defaultPrevented, b.returnValue], c: c.defaultPrevented, d: [dBefore, d.cancelBubble] };`);
    assert.deepEqual(r, { a: false, b: [true, false], c: true, d: [true, true] });
  });
});

describe("EventTarget (DOM §2.7, §2.9 dispatch for a target without a parent)", () => {
  test("dispatch: capturing listeners first, then the rest, each in order added; event state during and after", async () => {
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      const seen = [];
      t.addEventListener("x", (e) => log.push("bubble1"));
      t.addEventListener("x", (e) => log.push("capture1"), true);
      t.addEventListener("x", function (e) { log.push("bubble2"); seen.push([this === t, e.target === t, e.currentTarget === t, e.eventPhase, e.composedPath().length === 1 && e.composedPath()[0] === t]); });
      t.addEventListener("x", (e) => log.push("capture2"), { capture: true });
      t.addEventListener("y", () => log.push("other type"));
      const e = new Event("x");
      const ret = t.dispatchEvent(e);
      return { log, seen, ret, after: [e.eventPhase, e.currentTarget, e.target === t, e.composedPath().length] };`);
    assert.deepEqual(r.log, ["capture1", "capture2", "bubble1", "bubble2"]);
    assert.deepEqual(r.seen, [[true, true, true, 2, true]]);
    assert.equal(r.ret, true);
    assert.deepEqual(r.after, [0, null, true, 0]);
  });

  test("add: duplicates (same type, callback, capture) are ignored; null callback ignored; non-object throws; remove matches capture", async () => {
    const r = await guest(`
      const t = new EventTarget(); let n = 0; const f = () => n++;
      t.addEventListener("x", f); t.addEventListener("x", f); t.addEventListener("x", f, { capture: false, once: true });
      t.addEventListener("x", f, true);
      t.addEventListener("x", null);
      t.dispatchEvent(new Event("x")); const afterFirst = n;
      t.removeEventListener("x", f, true);
      t.dispatchEvent(new Event("x")); const afterCaptureRemoved = n;
      t.removeEventListener("x", f, { capture: false });
      t.dispatchEvent(new Event("x"));
      return { afterFirst, afterCaptureRemoved, final: n, bad: err(() => t.addEventListener("x", "nope")), missing: err(() => t.addEventListener("x")) };`);
    assert.deepEqual(r, { afterFirst: 2, afterCaptureRemoved: 3, final: 3, bad: "TypeError", missing: "TypeError" });
  });

  test("handleEvent objects are called with this = the object, looked up at each call", async () => {
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      const obj = { handleEvent(e) { log.push(["first", this === obj, e.type]); obj.handleEvent = function () { log.push(["second", this === obj]); }; } };
      t.addEventListener("x", obj);
      t.dispatchEvent(new Event("x")); t.dispatchEvent(new Event("x"));
      return log;`);
    assert.deepEqual(r, [["first", true, "x"], ["second", true]]);
  });

  test("once removes the listener before it runs (so a nested dispatch does not rerun it)", async () => {
    const r = await guest(`
      const t = new EventTarget(); let n = 0;
      t.addEventListener("x", () => { n++; if (n === 1) t.dispatchEvent(new Event("x")); }, { once: true });
      t.dispatchEvent(new Event("x")); t.dispatchEvent(new Event("x"));
      return n;`);
    assert.equal(r, 1);
  });

  test("signal option: an aborted signal adds nothing; aborting later removes the listener; bad signal throws", async () => {
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      t.addEventListener("x", () => log.push("pre-aborted"), { signal: AbortSignal.abort() });
      const ac = new AbortController();
      t.addEventListener("x", () => log.push("live"), { signal: ac.signal });
      t.dispatchEvent(new Event("x"));
      ac.abort();
      t.dispatchEvent(new Event("x"));
      return { log, bad: err(() => t.addEventListener("x", () => {}, { signal: {} })), nullSignal: err(() => t.addEventListener("x", () => {}, { signal: null })) };`);
    assert.deepEqual(r, { log: ["live"], bad: "TypeError", nullSignal: "TypeError" });
  });

  test("stopImmediatePropagation stops the remaining listeners; stopPropagation only the next invocation (§2.9 'invoke' step 5)", async () => {
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      t.addEventListener("x", (e) => { log.push("a"); e.stopImmediatePropagation(); });
      t.addEventListener("x", () => log.push("b"));
      t.dispatchEvent(new Event("x"));
      const u = new EventTarget(); const log2 = [];
      u.addEventListener("x", (e) => { log2.push("cap1"); e.stopPropagation(); }, true);
      u.addEventListener("x", () => log2.push("cap2"), true);
      u.addEventListener("x", () => log2.push("bubble"));
      const e = new Event("x");
      u.dispatchEvent(e);
      // The flags are cleared after dispatch, so the event can be dispatched again.
      const again = []; const v = new EventTarget(); v.addEventListener("x", () => again.push(1)); v.dispatchEvent(e);
      return { log, log2, again, cancelBubble: e.cancelBubble };`);
    assert.deepEqual(r, { log: ["a"], log2: ["cap1", "cap2"], again: [1], cancelBubble: false });
  });

  test("a listener that throws is reported via console.error and the dispatch goes on", async () => {
    reports.length = 0;
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      t.addEventListener("x", () => { log.push(1); throw new TypeError("listener broke"); });
      t.addEventListener("x", { handleEvent: 42 });
      t.addEventListener("x", () => log.push(2));
      const ret = t.dispatchEvent(new Event("x"));
      return { log, ret };`);
    assert.deepEqual(r, { log: [1, 2], ret: true });
    const errors = reports.at(-1)!.logs.filter((l) => l.level === "error").map((l) => l.message);
    assert.equal(errors.length, 2);
    assert.match(errors[0]!, /TypeError: listener broke/);
    assert.match(errors[1]!, /TypeError: .*handleEvent/);
    assert.equal(reports.at(-1)!.outcome, "ok");
  });

  test("removal during dispatch is honoured; listeners added during dispatch do not run (§2.9 'invoke' step 6)", async () => {
    const r = await guest(`
      const t = new EventTarget(); const log = [];
      const b = () => log.push("b");
      t.addEventListener("x", () => { log.push("a"); t.removeEventListener("x", b); t.addEventListener("x", () => log.push("late")); });
      t.addEventListener("x", b);
      t.dispatchEvent(new Event("x"));
      const first = [...log]; log.length = 0;
      t.dispatchEvent(new Event("x"));
      return { first, second: log };`);
    assert.deepEqual(r, { first: ["a"], second: ["a", "late"] });
  });

  test("dispatchEvent: returns false when canceled; passive listeners cannot cancel; re-dispatch throws InvalidStateError; non-Event throws", async () => {
    const r = await guest(`
      const t = new EventTarget();
      t.addEventListener("c", (e) => e.preventDefault());
      t.addEventListener("p", (e) => e.preventDefault(), { passive: true });
      let nested = null;
      t.addEventListener("n", (e) => { nested = err(() => t.dispatchEvent(e)); });
      t.dispatchEvent(new Event("n"));
      return {
        canceled: t.dispatchEvent(new Event("c", { cancelable: true })), notCancelable: t.dispatchEvent(new Event("c")),
        passive: t.dispatchEvent(new Event("p", { cancelable: true })), nested,
        notEvent: err(() => t.dispatchEvent({ type: "x" })), brand: err(() => EventTarget.prototype.addEventListener.call({}, "x", () => {})),
        subclass: (() => { class My extends EventTarget { ping() { return this.dispatchEvent(new CustomEvent("ping", { detail: 7 })); } }
          const m = new My(); let d; m.addEventListener("ping", (e) => { d = e.detail; }); m.ping(); return d; })(),
      };`);
    assert.deepEqual(r, { canceled: false, notCancelable: true, passive: true, nested: "InvalidStateError/11", notEvent: "TypeError", brand: "TypeError", subclass: 7 });
  });
});

describe("AbortController and AbortSignal (DOM §3.1, §3.2)", () => {
  test("abort(): default reason is an AbortError DOMException; first reason wins; abort event fires once, trusted; onabort", async () => {
    const r = await guest(`
      const ac = new AbortController(); const s = ac.signal; const log = [];
      s.onabort = (e) => log.push(["onabort", e.type, e.isTrusted, e.target === s, s.aborted]);
      s.addEventListener("abort", () => log.push(["listener"]));
      const before = [s.aborted, s.reason, err(() => s.throwIfAborted())];
      ac.abort(); ac.abort("second");
      let thrown; try { s.throwIfAborted(); } catch (e) { thrown = e === s.reason; }
      return { before, after: [s.aborted, s.reason instanceof DOMException, s.reason.name, s.reason.message, s.reason.code], thrown, log, same: ac.signal === s,
        illegal: err(() => new AbortSignal()), typeofOnabort: typeof s.onabort };`);
    assert.deepEqual(r.before, [false, null, "no error"]);
    assert.deepEqual(r.after, [true, true, "AbortError", "This operation was aborted", 20]);
    assert.equal(r.thrown, true);
    assert.deepEqual(r.log, [["onabort", "abort", true, true, true], ["listener"]]);
    assert.equal(r.same, true);
    assert.equal(r.illegal, "TypeError");
    assert.equal(r.typeofOnabort, "function");
  });

  test("abort(reason) keeps any reason; onabort = null removes the handler; a handler's place in the list is kept when replaced", async () => {
    const r = await guest(`
      const ac = new AbortController(); const log = [];
      ac.signal.onabort = () => log.push("old");
      ac.signal.addEventListener("abort", () => log.push("listener"));
      ac.signal.onabort = () => log.push("handler");
      const other = new AbortController(); other.signal.onabort = () => log.push("never"); other.signal.onabort = null; other.abort();
      ac.abort({ why: "custom" });
      return { log, reason: ac.signal.reason, nulled: other.signal.onabort };`);
    assert.deepEqual(r, { log: ["handler", "listener"], reason: { why: "custom" }, nulled: null });
  });

  test("AbortSignal.abort(reason): already aborted, no event", async () => {
    const r = await guest(`
      const a = AbortSignal.abort(); const b = AbortSignal.abort("why");
      return [a.aborted, a.reason.name, b.reason, a instanceof EventTarget];`);
    assert.deepEqual(r, [true, "AbortError", "why", true]);
  });

  test("AbortSignal.any: an aborted input gives an aborted result with the first aborted input's reason (§3.2 'create a dependent abort signal' step 2)", async () => {
    const r = await guest(`
      const live = new AbortController();
      const s = AbortSignal.any([live.signal, AbortSignal.abort("first"), AbortSignal.abort("second")]);
      const empty = AbortSignal.any([]);
      return { s: [s.aborted, s.reason], empty: empty.aborted, notSignal: err(() => AbortSignal.any([{}])), notIterable: err(() => AbortSignal.any(5)) };`);
    assert.deepEqual(r, { s: [true, "first"], empty: false, notSignal: "TypeError", notIterable: "TypeError" });
  });

  test("AbortSignal.any: dependents take the reason before any abort event fires, and fire after their source", async () => {
    const r = await guest(`
      const a = new AbortController(); const b = new AbortController(); const log = [];
      const any1 = AbortSignal.any([a.signal, b.signal]);
      const any2 = AbortSignal.any([any1]); // a dependent input: links to a and b directly
      a.signal.addEventListener("abort", () => log.push(["a", any1.aborted, any2.aborted, any1.reason]));
      any1.addEventListener("abort", (e) => log.push(["any1", e.target === any1]));
      any2.addEventListener("abort", () => log.push(["any2", any2.reason]));
      b.abort("b reason"); // any1 and any2 abort via b
      const afterB = [any1.reason, any2.reason, a.signal.aborted];
      a.abort("a reason");
      return { log, afterB, final: [any1.reason, any2.reason] };`);
    assert.deepEqual(r.afterB, ["b reason", "b reason", false]);
    assert.deepEqual(r.log, [["any1", true], ["any2", "b reason"], ["a", true, true, "b reason"]]);
    assert.deepEqual(r.final, ["b reason", "b reason"]);
  });

  test("AbortSignal.any over a dependent signal still aborts after the intermediate signal is dropped", async () => {
    const r = await guest(`
      const a = new AbortController();
      const outer = AbortSignal.any([AbortSignal.any([a.signal])]);
      let fired = false; outer.onabort = () => { fired = true; };
      a.abort("x");
      return [fired, outer.reason];`);
    assert.deepEqual(r, [true, "x"]);
  });

  test("AbortSignal.timeout: a TimeoutError DOMException after the delay (needs setTimeout in the guest)", async (t) => {
    const r = await guest(`
      if (typeof setTimeout === "undefined") return { timers: false, missing: err(() => AbortSignal.timeout(1)) };
      const s = AbortSignal.timeout(5);
      const before = s.aborted;
      const e = await new Promise((resolve) => s.addEventListener("abort", resolve));
      return { timers: true, before, aborted: s.aborted, name: s.reason.name, code: s.reason.code, isDOMException: s.reason instanceof DOMException,
        trusted: e.isTrusted, negative: err(() => AbortSignal.timeout(-1)), nan: err(() => AbortSignal.timeout(NaN)) };`);
    if (!r.timers) {
      assert.equal(r.missing, "TypeError");
      t.skip("the guest has no setTimeout");
      return;
    }
    assert.deepEqual(r, { timers: true, before: false, aborted: true, name: "TimeoutError", code: 23, isDOMException: true, trusted: true, negative: "TypeError", nan: "TypeError" });
  });
});

describe("TextEncoder (Encoding §8.2)", () => {
  test("encode: UTF-8 of a USVString; lone surrogates become U+FFFD; surrogate pairs become four bytes", async () => {
    const r = await guest(`
      const te = new TextEncoder();
      return { encoding: te.encoding, empty: bytes(te.encode()), ascii: bytes(te.encode("Hi")), two: bytes(te.encode("é")), three: bytes(te.encode("€")),
        pair: bytes(te.encode("😀")), lone: bytes(te.encode("a\\uD800b")), loneTrail: bytes(te.encode("\\uDC00")), reversed: bytes(te.encode("\\uDC00\\uD800")),
        type: te.encode("x") instanceof Uint8Array, coerced: bytes(te.encode(12)) };`);
    assert.deepEqual(r, {
      encoding: "utf-8", empty: [], ascii: [72, 105], two: [0xc3, 0xa9], three: [0xe2, 0x82, 0xac], pair: [0xf0, 0x9f, 0x98, 0x80],
      lone: [0x61, 0xef, 0xbf, 0xbd, 0x62], loneTrail: [0xef, 0xbf, 0xbd], reversed: [0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd], type: true, coerced: [0x31, 0x32],
    });
  });

  test("encodeInto: whole code points only; read counts UTF-16 code units; respects the view's offset", async () => {
    const r = await guest(`
      const te = new TextEncoder();
      const d1 = new Uint8Array(4); const r1 = te.encodeInto("Hi😀", d1);
      const d2 = new Uint8Array(6); const r2 = te.encodeInto("Hi😀", d2);
      const d3 = new Uint8Array(3); const r3 = te.encodeInto("\\uD800x", d3);
      const backing = new Uint8Array(8); const r4 = te.encodeInto("€€", backing.subarray(2, 7));
      return { r1, d1: bytes(d1), r2, d2: bytes(d2), r3, d3: bytes(d3), r4, backing: bytes(backing),
        notU8: err(() => te.encodeInto("x", new Uint16Array(2))), missing: err(() => te.encodeInto("x")) };`);
    assert.deepEqual(r, {
      r1: { read: 2, written: 2 }, d1: [72, 105, 0, 0],
      r2: { read: 4, written: 6 }, d2: [72, 105, 0xf0, 0x9f, 0x98, 0x80],
      r3: { read: 1, written: 3 }, d3: [0xef, 0xbf, 0xbd],
      r4: { read: 1, written: 3 }, backing: [0, 0, 0xe2, 0x82, 0xac, 0, 0, 0],
      notU8: "TypeError", missing: "TypeError",
    });
  });
});

describe("TextDecoder (Encoding §8.1, UTF-8 decoder §9.1.1)", () => {
  test("labels: UTF-8's labels, trimmed and case-insensitive; an unknown label (or replacement) is a RangeError (§4.2 'get an encoding')", async () => {
    const r = await guest(`
      const ok = ["utf-8", "UTF8", " unicode-1-1-utf-8 ", "\\tUtF-8\\n", "unicode11utf8", "x-unicode20utf8"].map((l) => new TextDecoder(l).encoding);
      const bad = ["replacement", "iso-2022-kr", "", "utf-8x", "\\u000butf-8"].map((l) => err(() => new TextDecoder(l)));
      const d = new TextDecoder();
      return { ok, bad, defaults: [d.encoding, d.fatal, d.ignoreBOM], opts: [new TextDecoder("utf-8", { fatal: true }).fatal, new TextDecoder(undefined, { ignoreBOM: 1 }).ignoreBOM] };`);
    assert.deepEqual(r.ok, Array(6).fill("utf-8"));
    assert.deepEqual(r.bad, Array(5).fill("RangeError"));
    assert.deepEqual(r.defaults, ["utf-8", false, false]);
    assert.deepEqual(r.opts, [true, true]);
  });

  test("legacy encodings decode as Node's TextDecoder does: labels resolved, streaming state kept, fatal errors are TypeError", async () => {
    const r = await guest(`
      const bytes = [0x41, 0x80, 0xE9, 0x9F];
      const names = ["latin1", "windows-1252", "iso-8859-2", "koi8-r", "utf-16le", "shift_jis"].map((l) => new TextDecoder(l).encoding);
      const latin = new TextDecoder("latin1").decode(new Uint8Array(bytes));
      const utf16 = new TextDecoder("utf-16le");
      const split = utf16.decode(new Uint8Array([0x48, 0x00, 0x69]), { stream: true }) + utf16.decode(new Uint8Array([0x00]));
      const bom = new TextDecoder("utf-16le").decode(new Uint8Array([0xFF, 0xFE, 0x41, 0x00]));
      const sjis = new TextDecoder("shift_jis").decode(new Uint8Array([0x82, 0xA0]));
      const fatal = err(() => new TextDecoder("shift_jis", { fatal: true }).decode(new Uint8Array([0x82])));
      return { names, latin, split, bom, sjis, fatal };`);
    const node = (label: string, bytes: number[]) => new TextDecoder(label).decode(new Uint8Array(bytes));
    assert.deepEqual(r, {
      names: ["windows-1252", "windows-1252", "iso-8859-2", "koi8-r", "utf-16le", "shift_jis"],
      latin: node("latin1", [0x41, 0x80, 0xE9, 0x9F]), split: "Hi", bom: "A", sjis: "あ", fatal: "TypeError",
    });
  });

  test("replacement follows 'maximal subparts': WHATWG / Unicode test vectors", async () => {
    const r = await guest(`
      const vectors = {
        truncated4: [0xF0, 0x90, 0x80], overlongNul: [0xC0, 0x80], surrogate: [0xED, 0xA0, 0x80], overlong3: [0xE0, 0x80, 0x80],
        overlong4: [0xF0, 0x80, 0x80, 0x80], tooBig: [0xF4, 0x90, 0x80, 0x80], fiveSix: [0xFC, 0x80, 0x80, 0x80, 0x80, 0x80],
        lone: [0xFF], loneCont: [0x80], truncated2: [0xC3], truncated3: [0xE2, 0x82], badTrail: [0xE0, 0xC0, 0x00],
        surrogatePair: [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80],
        unicodeTable38: [0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64],
        restoredAscii: [0xE2, 0x41, 0xF0, 0x9F, 0x42],
        valid: [0x41, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0xEF, 0xBF, 0xBF],
      };
      const d = new TextDecoder();
      return Object.fromEntries(Object.entries(vectors).map(([k, v]) => [k, fffd(d.decode(new Uint8Array(v)))]));`);
    assert.deepEqual(r, {
      truncated4: "?", overlongNul: "??", surrogate: "???", overlong3: "???", overlong4: "????", tooBig: "????", fiveSix: "??????",
      lone: "?", loneCont: "?", truncated2: "?", truncated3: "?", badTrail: "??\0", surrogatePair: "??????",
      unicodeTable38: "a???b?c??d", restoredAscii: "?A?B",
      valid: "AU+E9U+20ACU+D83DU+DE00U+DBFFU+DFFFU+FFFF",
    });
  });

  test("fatal: every ill-formed vector throws TypeError (WPT textdecoder-fatal), valid input decodes", async () => {
    const r = await guest(`
      const bad = [[0xFF], [0xC0], [0xE0], [0xC0, 0x00], [0xC0, 0xC0], [0xE0, 0x00], [0xE0, 0xC0, 0x00], [0xE0, 0x80, 0xC0],
        [0xFC, 0x80, 0x80, 0x80, 0x80, 0x80], [0xFE, 0x80, 0x80, 0x80, 0x80, 0x80], [0xFF, 0x80, 0x80, 0x80, 0x80, 0x80],
        [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80], [0xF8, 0x80, 0x80, 0x80, 0x80], [0xFC, 0x80, 0x80, 0x80, 0x80, 0x80],
        [0xC1, 0xBF], [0xE0, 0x9F, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF], [0xED, 0xA0, 0x80], [0xED, 0xB0, 0x80], [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80], [0xF4, 0x90, 0x80, 0x80]];
      const d = new TextDecoder("utf-8", { fatal: true });
      const results = bad.map((v) => err(() => d.decode(new Uint8Array(v))));
      // After an error the decoder starts afresh.
      const afterError = d.decode(new Uint8Array([0xE2, 0x82, 0xAC]));
      const streamThenFlush = (() => { const s = new TextDecoder("utf-8", { fatal: true }); const a = s.decode(new Uint8Array([0xE2]), { stream: true }); return [a, err(() => s.decode())]; })();
      return { results, afterError, streamThenFlush };`);
    assert.deepEqual(r.results, Array(23).fill("TypeError"));
    assert.equal(r.afterError, "€");
    assert.deepEqual(r.streamThenFlush, ["", "TypeError"]);
  });

  test("BOM: stripped once per stream unless ignoreBOM (§8.1.1 'serialize I/O queue')", async () => {
    const r = await guest(`
      const bom = [0xEF, 0xBB, 0xBF];
      const d = new TextDecoder();
      const plain = [d.decode(new Uint8Array([...bom, 0x41])), d.decode(new Uint8Array([...bom, 0x42]))];
      const s = new TextDecoder();
      const split = [s.decode(new Uint8Array([0xEF, 0xBB]), { stream: true }), s.decode(new Uint8Array([0xBF, 0x41]), { stream: true }),
        fffd(s.decode(new Uint8Array(bom), { stream: true })), s.decode()];
      const twoBoms = fffd(new TextDecoder().decode(new Uint8Array([...bom, ...bom])));
      const ignored = fffd(new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array([...bom, 0x41])));
      const notFirst = fffd(new TextDecoder().decode(new Uint8Array([0x41, ...bom])));
      return { plain, split, twoBoms, ignored, notFirst };`);
    assert.deepEqual(r, { plain: ["A", "B"], split: ["", "A", "U+FEFF", ""], twoBoms: "U+FEFF", ignored: "U+FEFFA", notFirst: "AU+FEFF" });
  });

  test("stream: multi-byte sequences split across chunks; a flush with a pending sequence yields one U+FFFD", async () => {
    const r = await guest(`
      const d = new TextDecoder();
      const euro = [d.decode(new Uint8Array([0xE2]), { stream: true }), d.decode(new Uint8Array([0x82]), { stream: true }), d.decode(new Uint8Array([0xAC]), { stream: true })];
      const emoji = [d.decode(new Uint8Array([0x41, 0xF0, 0x9F]), { stream: true }), d.decode(new Uint8Array([0x98, 0x80, 0x42]), { stream: true }), d.decode()];
      const pending = [d.decode(new Uint8Array([0xF0, 0x9F, 0x98]), { stream: true }), fffd(d.decode())];
      const restored = [d.decode(new Uint8Array([0xE2, 0x82]), { stream: true }), fffd(d.decode(new Uint8Array([0x41])))];
      const invalidAcross = [d.decode(new Uint8Array([0xED]), { stream: true }), fffd(d.decode(new Uint8Array([0xA0, 0x80])))];
      // Every byte fed alone must decode the same as the whole.
      const text = "aé€😀\\u{10FFFF}z";
      const all = new TextEncoder().encode(text);
      let oneByOne = ""; for (const b of all) oneByOne += d.decode(new Uint8Array([b]), { stream: true }); oneByOne += d.decode();
      // A non-streaming call after an unfinished stream starts afresh only after flushing it.
      const flushed = fffd(d.decode(new Uint8Array([0xE2]), { stream: true }) + d.decode(new Uint8Array([0x41])));
      return { euro, emoji, pending, restored, invalidAcross, oneByOne: oneByOne === text, flushed };`);
    assert.deepEqual(r, {
      euro: ["", "", "€"], emoji: ["A", "😀B", ""], pending: ["", "?"], restored: ["", "?A"], invalidAcross: ["", "???"], oneByOne: true, flushed: "?A",
    });
  });

  test("input: any BufferSource (ArrayBuffer, typed arrays, DataView) honouring offset and length; others throw", async () => {
    const r = await guest(`
      const bytesAB = new TextEncoder().encode("xxhello€yy");
      const d = new TextDecoder();
      const view = new DataView(bytesAB.buffer, 2, 8);
      return {
        arrayBuffer: d.decode(bytesAB.buffer.slice(2, 10)), dataView: d.decode(view), sub: d.decode(bytesAB.subarray(2, 10)),
        u16: fffd(d.decode(new Uint16Array([0x4241]))), none: d.decode(), undef: d.decode(undefined),
        str: err(() => d.decode("abc")), arr: err(() => d.decode([65])), badOptions: err(() => d.decode(new Uint8Array(1), 5)),
        big: d.decode(new TextEncoder().encode("ü".repeat(50000))) === "ü".repeat(50000),
      };`);
    assert.deepEqual(r, { arrayBuffer: "hello€", dataView: "hello€", sub: "hello€", u16: "AB", none: "", undef: "", str: "TypeError", arr: "TypeError", badOptions: "TypeError", big: true });
  });

  test("Response/Request bodies decode with the same UTF-8 decoder (maximal subparts, no BOM handling change)", async () => {
    const stub = loader.load(worker(`export default { async fetch(r) { const t = await r.text(); return Response.json([...t].map((c) => c.codePointAt(0))); } }`));
    const res = await stub.getEntrypoint().fetch("http://x/", { method: "POST", body: new Uint8Array([0xF0, 0x90, 0x80, 0x41, 0xC0, 0x80, 0xE2, 0x82, 0xAC]) });
    assert.deepEqual(await res.json(), [0xfffd, 0x41, 0xfffd, 0xfffd, 0x20ac]);
  });
});

describe("atob and btoa (HTML §8.3, Infra forgiving-base64)", () => {
  test("btoa encodes Latin-1 with padding; code points above U+00FF throw InvalidCharacterError", async () => {
    const r = await guest(`
      return { vals: ["", "f", "fo", "foo", "foob", "fooba", "foobar", "\\u00ff\\u00fe\\u0000", String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))].map((s) => btoa(s)),
        coerced: btoa(null), wide: err(() => btoa("€")), surrogate: err(() => btoa("\\uD800")), missing: err(() => btoa()) };`);
    assert.deepEqual((r.vals as string[]).slice(0, 8), ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "//4A"]);
    assert.equal((r.vals as string[])[8], Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("base64"));
    assert.equal(r.coerced, "bnVsbA==");
    assert.deepEqual([r.wide, r.surrogate, r.missing], ["InvalidCharacterError/5", "InvalidCharacterError/5", "TypeError"]);
  });

  test("atob: forgiving decode (whitespace stripped, padding optional, extra bits ignored); bad input throws InvalidCharacterError", async () => {
    const r = await guest(`
      const ok = ["", "Zg==", "Zg", "Zm8=", "Zm8", "Zm9v", " Z m\\t9\\nv\\fY\\rg = = ", "YQ", "YR", "//4A", "ab", "abc=", "abcd"].map((s) => [...atob(s)].map((c) => c.charCodeAt(0)));
      const bad = ["Zg=", "Zg===", "Z", "Zm9vY", "a===", "=Zg=", "Zg==Zg==", "Zm9v!", "Zm-_", "\\u00e9", "Zg\\u000b==", "ab=", "Zm9v\\u0100"].map((s) => err(() => atob(s)));
      return { ok, bad, roundTrip: atob(btoa("\\u0000\\u0080\\u00ff hello")) === "\\u0000\\u0080\\u00ff hello", undef: err(() => atob(undefined)), missing: err(() => atob()) };`);
    assert.deepEqual(r.ok, [[], [102], [102], [102, 111], [102, 111], [102, 111, 111], [102, 111, 111, 98], [97], [97], [255, 254, 0], [105], [105, 183], [105, 183, 29]]);
    assert.deepEqual(r.bad, Array(13).fill("InvalidCharacterError/5"));
    assert.equal(r.roundTrip, true);
    assert.equal(r.undef, "InvalidCharacterError/5");
    assert.equal(r.missing, "TypeError");
  });
});
