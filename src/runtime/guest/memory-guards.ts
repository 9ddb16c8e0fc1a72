import { host } from "./hooks.ts";

/**
 * Builders V8 runs as one C++ loop, which neither the heap limit nor termination can interrupt
 * midway: `Array(1e9).fill(0)` spends seconds writing a billion dictionary entries and then aborts
 * the process, and `'x'.repeat(2 ** 28)` makes a 256 MiB string (kept lazy until something reads
 * it, then flattened in one allocation far above the limit). Each is checked against the run's
 * memory budget before it starts; one that could never fit ends the run with MemoryLimitError.
 *
 * Below this many bytes the check is skipped: it costs a host call, and anything this small is left
 * to V8's own heap limit.
 */
const CHECK_ABOVE_BYTES = 1 << 20;

/**
 * Whether a value of at least `bytes` could fit in the run's memory; when it could not, the host
 * flags the breach and ends the run. Strings are counted at one byte per code unit, their least.
 */
function fits(bytes: number, what: string): boolean {
  return bytes < CHECK_ABOVE_BYTES || host().reserve(bytes, what, true);
}

function tooLarge(what: string): never {
  throw new RangeError(`${what}: memory limit exceeded`);
}

/** ECMA-262 ToIntegerOrInfinity (7.1.5), for values already converted with Number(). */
function toIntegerOrInfinity(n: number): number {
  if (Number.isNaN(n) || n === 0) return 0;
  if (!Number.isFinite(n)) return n;
  return Math.trunc(n);
}

/** ECMA-262 relative index clamping, as Array.prototype.fill steps 5-10 use it. */
function clampRelative(relative: number, length: number): number {
  if (relative === -Infinity) return 0;
  if (relative < 0) return Math.max(length + relative, 0);
  return Math.min(relative, length);
}

function replace<T extends object>(proto: T, name: keyof T & string, wrap: (original: Function) => Function): void {
  const original = proto[name] as unknown as Function;
  const wrapped = wrap(original);
  Object.defineProperty(wrapped, "name", { value: name });
  Object.defineProperty(wrapped, "length", { value: original.length });
  Object.defineProperty(proto, name, { value: wrapped, writable: true, configurable: true });
}

export function guardLargeBuilders(): void {
  replace(String.prototype, "repeat", (repeat) =>
    function (this: unknown, count?: unknown) {
      // Steps 1-4 of String.prototype.repeat (22.1.3.18), once, then V8's own with the converted values.
      if (this == null) throw new TypeError("String.prototype.repeat called on null or undefined");
      const s = String(this);
      const n = toIntegerOrInfinity(Number(count));
      if (n < 0 || n === Infinity) return repeat.call(s, n);
      if (!fits(s.length * n, "String.prototype.repeat")) tooLarge("String.prototype.repeat");
      return repeat.call(s, n);
    });
  for (const name of ["padStart", "padEnd"] as const) {
    replace(String.prototype, name, (pad) =>
      function (this: unknown, maxLength?: unknown, fillString?: unknown) {
        if (this == null) throw new TypeError(`String.prototype.${name} called on null or undefined`);
        const s = String(this);
        const length = toIntegerOrInfinity(Number(maxLength));
        const filler = fillString === undefined ? undefined : String(fillString);
        if (!fits(length - s.length, `String.prototype.${name}`)) tooLarge(`String.prototype.${name}`);
        return pad.call(s, length, filler);
      });
  }
  replace(Array.prototype, "fill", (fill) =>
    function (this: unknown, value?: unknown, start?: unknown, end?: unknown) {
      // Steps 1-10 of Array.prototype.fill (23.1.3.7): how many elements it will write.
      if (this == null) throw new TypeError("Array.prototype.fill called on null or undefined");
      const o = Object(this) as { length: unknown };
      const len = Math.min(Math.max(toIntegerOrInfinity(Number(o.length)), 0), Number.MAX_SAFE_INTEGER);
      const k = clampRelative(toIntegerOrInfinity(Number(start)), len);
      const final = end === undefined ? len : clampRelative(toIntegerOrInfinity(Number(end)), len);
      // Each element written holds at least one pointer-sized slot.
      if (!fits(Math.max(final - k, 0) * 8, "Array.prototype.fill")) tooLarge("Array.prototype.fill");
      return fill.call(o, value, k, final);
    });
}
