/**
 * The guest half of durable Code Mode, run before the code in its isolate:
 * - every tool call returns an envelope `{ ok, value | error, clock }` from the host, so a call
 *   answered from the journal and a call really made look the same to the code;
 * - `codemode.step(name, fn)` runs `fn` once and records its value; a replay gets the recorded value;
 * - the clock (Date, performance.now(), Intl's default date) is the journal's: it starts at the run's
 *   recorded start and moves only when a call returns, to the time recorded for that call. The
 *   runtime's clock moves at any I/O, which a replay would not reproduce.
 */
export const DURABLE_PRELUDE = String.raw`
let __clock = 0;
let __clockStart = 0;
let __tools;
let __stepDepth = 0;
const __settle = (r) => {
  if (typeof r.clock === "number") __clock = r.clock;
  if (r.ok) return r.value;
  const e = new Error(r.error.message);
  e.name = r.error.name;
  throw e;
};
(() => {
  const RuntimeDate = globalThis.Date;
  const D = function (...args) {
    if (!new.target) return new RuntimeDate(__clock).toString();
    return Reflect.construct(RuntimeDate, args.length ? args : [__clock], new.target);
  };
  Object.defineProperties(D, {
    prototype: { value: RuntimeDate.prototype },
    now: { value: () => __clock, writable: true, configurable: true },
    parse: { value: RuntimeDate.parse, writable: true, configurable: true },
    UTC: { value: RuntimeDate.UTC, writable: true, configurable: true },
    name: { value: "Date" },
    length: { value: 7 },
  });
  Object.defineProperty(RuntimeDate.prototype, "constructor", { value: D, writable: true, configurable: true });
  Object.defineProperty(globalThis, "Date", { value: D, writable: true, configurable: true });
  const performance = { now: () => __clock - __clockStart, get timeOrigin() { return __clockStart; }, toJSON() { return { timeOrigin: __clockStart }; } };
  Object.defineProperty(globalThis, "performance", { value: performance, writable: true, configurable: true });
  const proto = typeof Intl === "object" ? Intl.DateTimeFormat?.prototype : undefined;
  if (!proto) return;
  const formatGetter = Object.getOwnPropertyDescriptor(proto, "format")?.get;
  const formatToParts = proto.formatToParts;
  if (formatGetter) Object.defineProperty(proto, "format", { configurable: true, get() { const f = formatGetter.call(this); return (d) => f(d === undefined ? __clock : d); } });
  Object.defineProperty(proto, "formatToParts", { configurable: true, writable: true, value: function (d) { return formatToParts.call(this, d === undefined ? __clock : d); } });
})();
const codemode = Object.freeze({
  /** Runs fn once per run and records its value (JSON); a resumed run gets the recorded value back. */
  async step(name, fn) {
    if (typeof name !== "string" || name === "") throw new TypeError("codemode.step(name, fn): name must be a non-empty string.");
    if (typeof fn !== "function") throw new TypeError("codemode.step(name, fn): fn must be a function.");
    const begun = await __tools.stepBegin(name);
    if (begun.replayed) return __settle(begun);
    let json, error;
    __stepDepth++;
    try {
      json = JSON.stringify(await fn());
    } catch (e) {
      error = { name: String(e?.name ?? "Error"), message: String(e?.message ?? e) };
    } finally {
      __stepDepth--;
    }
    return __settle(await __tools.stepEnd(begun.seq, json, error));
  },
});
__bind = (tools, env) => {
  __tools = tools;
  __clock = __clockStart = env.__CLOCK;
  return async (ns, name, input) => {
    // A step's value is recorded, its function is not run again on replay: a tool call inside it would not be replayed.
    if (__stepDepth > 0) throw new TypeError("Tools cannot be called inside codemode.step(): call them outside the step and pass the values in.");
    return __settle(await tools.invoke(ns, name, input));
  };
};
`;
