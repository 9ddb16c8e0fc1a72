import ivm from "isolated-vm";
import { HookSlot } from "./hook-slot.ts";
import type { RuntimeImage } from "./runtime-image.ts";

/** A fresh isolate with the runtime evaluated, never used by any worker. */
export interface FreshIsolate {
  isolate: ivm.Isolate;
  context: ivm.Context;
  /** The runtime's private handle (see runtime/guest/index.ts). */
  runtime: ivm.Reference<Record<string, unknown>>;
  slot: HookSlot;
  memoryMb: number;
  /** The key of the npm bundle already evaluated in this isolate's image (see package-images.ts). */
  preloaded?: string;
}

/**
 * Isolates made ahead of time, one pool per memory limit (V8 fixes the heap limit at creation).
 * Each isolate serves exactly one worker and is then disposed; refilling happens off the request path.
 */
export class IsolatePool {
  private readonly free = new Map<number, FreshIsolate[]>();
  private readonly image: RuntimeImage;
  private refillScheduled = false;
  /** Memory limits recently asked for, kept warm besides the default. */
  private readonly wanted = new Set<number>();
  created = 0;
  /** An isolate of this executor ran out of heap and cannot be freed: the executor must be replaced. */
  tainted = false;
  /** Moving average of one isolate's creation time, for the host's routing. */
  createMs = 4;

  private readonly size: number;

  private readonly preloaded: string | undefined;

  constructor(image: RuntimeImage, size: number, defaultMemoryMb: number, preloaded?: string) {
    this.image = image;
    this.size = size;
    this.preloaded = preloaded;
    this.wanted.add(defaultMemoryMb);
  }

  /** Fills the pool now (at executor start), so the first request finds isolates ready. */
  warm(): void {
    for (const mb of this.wanted) this.fill(mb);
  }

  take(memoryMb: number): FreshIsolate {
    this.wanted.add(memoryMb);
    // Made on the request's time: warming it would cost that request more than it saves.
    return this.free.get(memoryMb)?.pop() ?? this.create(memoryMb, false);
  }

  /**
   * Tops the pool up, one isolate per turn of the event loop (~4 ms each). The executor calls this
   * once a response has left, so creation never sits between a request and its response.
   */
  refillSoon(): void {
    this.scheduleRefill();
  }

  /** How long refilling will keep this executor's event loop busy, estimated (ms). */
  refillMsAhead(): number {
    let missing = 0;
    for (const mb of this.wanted) missing += Math.max(0, this.size - (this.free.get(mb)?.length ?? 0));
    return missing * this.createMs;
  }

  dispose(): void {
    for (const list of this.free.values()) for (const f of list) release(f);
    this.free.clear();
  }

  private scheduleRefill(): void {
    if (this.refillScheduled) return;
    this.refillScheduled = true;
    setImmediate(() => {
      this.refillScheduled = false;
      for (const mb of this.wanted) {
        const list = this.free.get(mb) ?? [];
        this.free.set(mb, list);
        if (list.length < this.size) {
          // Warming costs more CPU than it saves the request: worth it only while the executor has
          // slack (the pool is more than half full); under load, isolates go out cold.
          list.push(this.create(mb, list.length * 2 >= this.size));
          this.scheduleRefill();
          return;
        }
      }
    });
  }

  private fill(memoryMb: number): void {
    const list = this.free.get(memoryMb) ?? [];
    this.free.set(memoryMb, list);
    while (list.length < this.size) list.push(this.create(memoryMb));
  }

  private create(memoryMb: number, warm = true): FreshIsolate {
    const slot = new HookSlot();
    const log = new ivm.Callback((level: string, message: string) => slot.log(level, message));
    const reserve = new ivm.Callback((bytes: number, what: string, transient?: boolean) => slot.reserve(bytes, transient === true));
    const onCatastrophe = (message: string) => {
      this.tainted = true;
      slot.catastrophe = message;
      // Called from isolated-vm's thread machinery: end the run from the event loop.
      setImmediate(() => slot.onCatastrophe());
    };
    const call = new ivm.Callback((service: string, op: string, args: unknown[]) => slot.services.call(service, op, args));
    const start = new ivm.Callback((service: string, op: string, args: unknown[], ticket: number) => slot.services.start(service, op, args, ticket));
    const started = performance.now();
    const { isolate, context, handle } = this.image.create(memoryMb, { log, reserve, call, start, onCatastrophe }, warm);
    const settle = handle.getSync("settle", { reference: true }) as ivm.Reference<Function>;
    slot.services.deliver = (ticket, envelope) => {
      if (isolate.isDisposed) return;
      // Delivered when the isolate is free; a disposed isolate simply drops it. The only other way
      // this call fails is a promise rejection the guest left unhandled while it ran: logged, as on Workers.
      settle.apply(undefined, [ticket, new ivm.ExternalCopy(envelope).copyInto({ release: true }), Date.now()]).catch((e: Error) => {
        if (!isolate.isDisposed) slot.log("error", `Uncaught (in promise) ${e?.message ?? String(e)}`);
      });
    };
    this.createMs = 0.8 * this.createMs + 0.2 * (performance.now() - started);
    this.created++;
    return { isolate, context, runtime: handle, slot, memoryMb, ...(this.preloaded ? { preloaded: this.preloaded } : {}) };
  }
}

export function release(f: FreshIsolate): void {
  f.slot.services.close();
  if (!f.isolate.isDisposed) f.isolate.dispose();
}
