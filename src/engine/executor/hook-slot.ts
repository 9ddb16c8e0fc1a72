import type { LogLine } from "../protocol.ts";
import { IsolateServices } from "./services/index.ts";

/**
 * Per-isolate sink for the runtime's host hooks. The Callbacks are created with the pooled isolate,
 * before its run is known, so they write here; the run that takes the isolate sets the budgets.
 */
export class HookSlot {
  logs: LogLine[] = [];
  logBytes = 0;
  logBudget = Infinity;
  reservedBytes = 0;
  memoryBudget = Infinity;
  /** Set when a hook saw a breach; the executor ends the instance right after the hook returns. */
  breach: "logs" | "memoryMb" | undefined;
  onBreach: () => void = () => {};
  /** Set when V8 ran out of heap in this isolate (see HookCallbacks.onCatastrophe); the isolate is lost. */
  catastrophe: string | undefined;
  onCatastrophe: () => void = () => {};
  /** Host services (timers, clone, random...) and their per-isolate state. */
  readonly services = new IsolateServices();

  log(level: string, message: string): boolean {
    if (this.breach) return false;
    const size = message.length + level.length;
    if (this.logBytes + size > this.logBudget) return this.flag("logs");
    this.logBytes += size;
    this.logs.push({ level, message, time: Date.now() });
    return true;
  }

  /**
   * Charges memory V8's heap limit does not see. A `transient` charge is checked, not kept: it is
   * about to become ordinary heap (a string or array the runtime is asked to build), which is only
   * refused when it alone could never fit, since V8 would otherwise build it in C++ without ever
   * stopping to notice the limit.
   */
  reserve(bytes: number, transient = false): boolean {
    if (this.breach) return false;
    if (!Number.isFinite(bytes) || bytes < 0) return false;
    if (this.reservedBytes + bytes > this.memoryBudget) return this.flag("memoryMb");
    if (!transient) this.reservedBytes += bytes;
    return true;
  }

  takeLogs(): LogLine[] {
    const out = this.logs;
    this.logs = [];
    return out;
  }

  private flag(kind: "logs" | "memoryMb"): false {
    this.breach = kind;
    // Disposing an isolate from inside its own callback is unsafe; do it once the callback returns.
    setImmediate(() => this.onBreach());
    return false;
  }
}
