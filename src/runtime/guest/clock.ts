/**
 * Workers' clock: `Date.now()` does not advance during pure computation, only across I/O, so guest
 * code cannot time side channels with it. The executor sets the time at each event it delivers.
 */
let now = 0;
/** performance.timeOrigin: the clock when the worker started. */
let origin = 0;

export function setClock(ms: number): void {
  now = ms;
}

/** Called once per worker, at start: performance.now() counts from here. */
export function setTimeOrigin(ms: number): void {
  origin = ms;
  now = ms;
}

/** `performance` (HR-Time §4): now() is frozen with Date.now(), in whole milliseconds. */
export function installPerformance(g: typeof globalThis): void {
  const performance = {
    now: () => now - origin,
    get timeOrigin() { return origin; },
    toJSON() { return { timeOrigin: origin }; },
  };
  Object.defineProperty(g, "performance", { value: performance, writable: true, configurable: true });
}

export function installFrozenDate(g: typeof globalThis): void {
  const OriginalDate = Date;
  const FrozenDate = function (this: unknown, ...args: unknown[]) {
    if (!new.target) return new OriginalDate(now).toString();
    return Reflect.construct(OriginalDate, args.length ? args : [now], new.target);
  } as unknown as DateConstructor;
  Object.defineProperties(FrozenDate, {
    prototype: { value: OriginalDate.prototype },
    now: { value: () => now, writable: true, configurable: true },
    parse: { value: OriginalDate.parse, writable: true, configurable: true },
    UTC: { value: OriginalDate.UTC, writable: true, configurable: true },
    name: { value: "Date" },
    length: { value: 7 },
  });
  Object.defineProperty(OriginalDate.prototype, "constructor", { value: FrozenDate, writable: true, configurable: true });
  Object.defineProperty(g, "Date", { value: FrozenDate, writable: true, configurable: true });
  freezeIntlClock();
}

/** Intl.DateTimeFormat's format()/formatToParts() with no date read the real clock: give them ours. */
function freezeIntlClock(): void {
  const proto = typeof Intl === "object" ? Intl.DateTimeFormat?.prototype : undefined;
  if (!proto) return;
  const formatGetter = Object.getOwnPropertyDescriptor(proto, "format")?.get;
  const formatToParts = proto.formatToParts;
  if (formatGetter) {
    Object.defineProperty(proto, "format", {
      configurable: true,
      get(this: Intl.DateTimeFormat) {
        const bound = formatGetter.call(this) as (d?: Date | number) => string;
        return (date?: Date | number) => bound(date === undefined ? now : date);
      },
    });
  }
  Object.defineProperty(proto, "formatToParts", {
    configurable: true, writable: true,
    value: function (this: Intl.DateTimeFormat, date?: Date | number) {
      return formatToParts.call(this, date === undefined ? now : date);
    },
  });
}
