import ivm from "isolated-vm";
import type { Invocation, Outcome, WireError } from "../../runtime/index.ts";
import type { CallStats, FailureKind, LogLine, WorkerSpec } from "../protocol.ts";
import type { NormalizedModule } from "../../loader/worker-code.ts";
import { release, type FreshIsolate } from "./isolate-pool.ts";
import { BUILTIN_MODULES, moduleSource, resolveSpecifier } from "./modules.ts";
import { cjsDefinition, cjsValueDefinition } from "./commonjs.ts";
import { CodeCache } from "./code-cache.ts";
import { keyOf } from "./package-images.ts";

/** This executor's V8 code caches of the scripts workers bring (their npm bundles). */
const codeCache = new CodeCache();

export interface CallResult {
  outcome?: Outcome;
  failure?: { kind: FailureKind; error: WireError; detail?: string };
  logs: LogLine[];
  stats: CallStats;
}

/**
 * Wall-clock budget for evaluating a worker's top-level code synchronously. It bounds how long one
 * tenant's startup can hold the executor's thread (and so delay other tenants' replies); a worker
 * whose top-level code takes longer is started again, asynchronously, in a fresh isolate. That is
 * safe because top-level code can reach nothing outside its own isolate.
 */
export const SYNC_START_BUDGET_MS = 10;

export class SyncBudgetExceeded extends Error {}

/** Thrown inside the executor when a run was ended by mayfly rather than by the guest. */
export class RunEnded extends Error {
  readonly kind: FailureKind;
  readonly detail: string | undefined;
  constructor(kind: FailureKind, message: string, detail?: string) {
    super(message);
    this.kind = kind;
    this.detail = detail;
  }
}

/**
 * One worker living in one isolate: its module graph instantiated once, then any number of
 * invocations until it is disposed or a limit ends it. The isolate is never reused by another worker.
 */
export class WorkerInstance {
  private readonly fresh: FreshIsolate;
  private dispatchRef!: ivm.Reference<(inv: unknown, now: number, token: number) => Promise<Outcome>>;
  /** Why the isolate was ended, when mayfly ended it; every pending call reports this. */
  endedBy: RunEnded | undefined;
  /**
   * Rejects when mayfly ends the isolate. A call into an isolate whose thread V8 parked (out of heap)
   * never settles, even once the isolate is disposed, so every call also races this.
   */
  private readonly ended: Promise<never>;
  private rejectEnded!: (reason: RunEnded) => void;
  active = 0;
  private nextToken = 1;
  private readonly runtimeFns = new Map<string, ivm.Reference<unknown>>();
  lastUsed = Date.now();
  heapBytes = 0;

  readonly spec: WorkerSpec;

  constructor(fresh: FreshIsolate, spec: WorkerSpec) {
    this.fresh = fresh;
    this.spec = spec;
    this.ended = new Promise<never>((_, reject) => (this.rejectEnded = reject));
    this.ended.catch(() => {});
    fresh.slot.logBudget = spec.limits.logBytes;
    fresh.slot.memoryBudget = spec.limits.memoryMb * 1024 * 1024;
    fresh.slot.onBreach = () => {
      const kind = fresh.slot.breach!;
      this.end(kind === "logs"
        ? new RunEnded("logs", `Worker exceeded log output limit of ${spec.limits.logBytes} bytes.`)
        : new RunEnded("memoryMb", `Worker exceeded memory limit of ${spec.limits.memoryMb} MB.`, "memory outside the JS heap, or a string or array too large to build"));
    };
    fresh.slot.onCatastrophe = () => {
      this.end(new RunEnded("memoryMb", `Worker exceeded memory limit of ${spec.limits.memoryMb} MB.`, "the JavaScript heap ran out during one large allocation"));
    };
  }

  /** This isolate's identity for executor-wide resources such as body streams. */
  get servicesToken(): object {
    return this.fresh.slot.services.token;
  }

  /** Whether this isolate came from an image with the worker's npm bundle already evaluated. */
  get preloaded(): boolean {
    return this.fresh.preloaded !== undefined;
  }

  get isolate(): ivm.Isolate {
    return this.fresh.isolate;
  }

  get alive(): boolean {
    return !this.endedBy && !this.fresh.isolate.isDisposed;
  }

  /**
   * Instantiates the module graph and runs top-level code. Errors here are startup errors.
   * "sync" evaluates on the executor's thread within SYNC_START_BUDGET_MS, saving the two thread
   * hops of an async evaluation (~0.5-1 ms on an idle machine); past the budget it throws
   * SyncBudgetExceeded and this isolate must be discarded (its top-level code was cut off midway).
   */
  async start(mode: "sync" | "async"): Promise<void> {
    const { isolate, context, runtime } = this.fresh;
    const spec = this.spec;
    const start = runtime.getSync("start", { reference: true }) as ivm.Reference<Function>;
    start.applySync(undefined, [new ivm.ExternalCopy({ flags: spec.compatibilityFlags, env: spec.env, now: Date.now(), outbound: spec.globalOutbound, actor: actorStart(spec) }).copyInto({ release: true })]);
    const putBlob = runtime.getSync("putBlob", { reference: true }) as ivm.Reference<Function>;
    for (const m of spec.modules) {
      if (m.type === "data" || m.type === "wasm") {
        putBlob.applySync(undefined, [`blob:${m.name}`, m.type, new ivm.ExternalCopy(m.content as Uint8Array).copyInto({ release: true })]);
      }
    }
    const names = new Set(spec.modules.map((m) => m.name));
    const byName = new Map(spec.modules.map((m) => [m.name, m]));
    this.runScripts();
    this.defineCommonJs(names, byName);
    const compiled = new Map<string, ivm.Module>();
    const nameOf = new Map<ivm.Module, string>();
    const compile = (name: string): ivm.Module => {
      let mod = compiled.get(name);
      if (mod) return mod;
      const source = BUILTIN_MODULES[name] ?? moduleSource(byName.get(name)!);
      mod = isolate.compileModuleSync(source, { filename: name });
      compiled.set(name, mod);
      nameOf.set(mod, name);
      return mod;
    };
    const main = compile(spec.mainModule);
    main.instantiateSync(context, (specifier, referrer) => {
      const from = nameOf.get(referrer) ?? spec.mainModule;
      const target = resolveSpecifier(specifier, from, names);
      if (!target) throw new Error(`No such module "${specifier}" (imported from "${from}"). Only the worker's own modules and cloudflare:workers can be imported.`);
      return compile(target);
    });
    if (mode === "sync") {
      try {
        main.evaluateSync({ timeout: SYNC_START_BUDGET_MS });
      } catch (e) {
        if (/timed out/i.test((e as Error)?.message ?? "")) throw new SyncBudgetExceeded();
        throw e;
      }
    } else {
      await this.guarded(() => main.evaluate());
    }
    const setMain = runtime.getSync("setMain", { reference: true }) as ivm.Reference<Function>;
    setMain.applySync(undefined, [main.namespace.derefInto()]);
    this.dispatchRef = runtime.getSync("dispatch", { reference: true }) as ivm.Reference<(inv: unknown, now: number, token: number) => Promise<Outcome>>;
  }

  /**
   * Runs the worker's scripts (its npm bundle, which registers the packages' exports for the modules
   * that stand for them) before the graph is instantiated, compiled from the executor's code cache.
   */
  private runScripts(): void {
    const { isolate, context } = this.fresh;
    if (this.fresh.preloaded !== undefined && this.fresh.preloaded === keyOf(this.spec)) return;
    for (const m of this.spec.modules) {
      if (m.type !== "script") continue;
      const source = m.content as string;
      const script = m.hash ? codeCache.compile(isolate, source, m.name, m.hash) : isolate.compileScriptSync(source, { filename: m.name });
      script.runSync(context, { release: true });
    }
  }

  /** Registers CommonJS factories (and the json/text values they require) before the graph runs. */
  private defineCommonJs(names: Set<string>, byName: Map<string, NormalizedModule>): void {
    const cjs = this.spec.modules.filter((m) => m.type === "cjs");
    if (!cjs.length) return;
    const { isolate, context } = this.fresh;
    const run = (source: string, filename: string) => isolate.compileScriptSync(source, { filename }).runSync(context, { release: true });
    const required = new Set<string>();
    for (const m of cjs) {
      const resolve = (spec: string) => {
        const name = resolveSpecifier(spec, m.name, names);
        if (name) required.add(name);
        return name;
      };
      run(cjsDefinition(m, resolve, (name) => byName.get(name)?.type), m.name);
    }
    for (const name of required) {
      const m = byName.get(name);
      if (m && (m.type === "json" || m.type === "text")) run(cjsValueDefinition(m), name);
    }
  }

  /** Runs one invocation; never throws for guest behaviour, only reports. */
  async call(inv: Invocation): Promise<Outcome> {
    this.lastUsed = Date.now();
    const token = this.nextToken++;
    const arg = new ivm.ExternalCopy(inv).copyInto({ release: true });
    let outcome: Outcome;
    try {
      outcome = (await this.guarded(() =>
        this.dispatchRef.apply(undefined, [arg, Date.now(), token], { result: { promise: true, copy: true } }),
      )) as Outcome;
    } catch (e) {
      if (e instanceof RunEnded || !this.alive) throw e;
      outcome = await this.recoverOutcome(token, e);
    }
    if (this.fresh.slot.breach) this.fresh.slot.onBreach();
    if (this.endedBy) throw this.endedBy;
    if (this.heapOverLimit()) {
      this.end(new RunEnded("memoryMb", `Worker exceeded memory limit of ${this.spec.limits.memoryMb} MB.`, "JavaScript heap, found after the run"));
      throw this.endedBy;
    }
    const refused = !outcome.ok && outcome.error.name === "RangeError" ? refusedAllocation(outcome.error.message, this.spec.limits.memoryMb) : undefined;
    if (refused) {
      // V8 refused to build a value because it could not fit: a memory breach, even though the guest
      // only sees a RangeError.
      this.end(new RunEnded("memoryMb", `Worker exceeded memory limit of ${this.spec.limits.memoryMb} MB.`, refused));
      throw this.endedBy;
    }
    return outcome;
  }

  /**
   * The dispatch call was rejected although the isolate lives: either guest code left a promise
   * rejection unhandled (isolated-vm then rejects whatever call is running), which is logged as
   * Workers do and the outcome fetched again; or the result cannot be copied out, which fails the
   * same way every time and is reported as a DataCloneError.
   */
  private async recoverOutcome(token: number, first: unknown): Promise<Outcome> {
    const awaitOutcome = this.runtimeFn<(t: number) => Promise<Outcome>>("awaitOutcome");
    const uncaught = (e: unknown) => this.fresh.slot.log("error", `Uncaught (in promise) ${(e as Error)?.message ?? String(e)}`);
    let last = first;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const outcome = (await this.guarded(() => awaitOutcome.apply(undefined, [token], { result: { promise: true, copy: true } }))) as Outcome;
        uncaught(last);
        return outcome;
      } catch (e) {
        if (e instanceof RunEnded || !this.alive) throw e;
        // The same failure again: the result itself cannot be copied.
        if (((e as Error)?.message ?? String(e)) === ((last as Error)?.message ?? String(last))) break;
        uncaught(last);
        last = e;
      }
    }
    throw new RunEnded("clone", `The worker's result could not be cloned out of the isolate: ${(last as Error)?.message ?? last}`);
  }

  /**
   * isolated-vm checks the heap only after a full GC, and its near-heap-limit callback lends V8 up to
   * 1 GB more meanwhile, so a run can build a large value (one JSON.parse result, say) and answer
   * before any GC looks. V8 collects before growing past the limit it was given, so a heap above the
   * run's limit at the end can only be such a loan: the run breached its limit.
   */
  /** Whether heapBytes was read after the last call settled and nothing ran since (see takeHeapFresh). */
  private heapFresh = false;

  /** True once if heapBytes is still as read right after the last call (saves a second read, ~16 µs). */
  takeHeapFresh(): boolean {
    const fresh = this.heapFresh;
    this.heapFresh = false;
    return fresh;
  }

  private heapOverLimit(): boolean {
    if (!this.alive) return false;
    const h = this.fresh.isolate.getHeapStatisticsSync();
    this.heapBytes = h.used_heap_size + h.externally_allocated_size;
    this.heapFresh = this.active <= 1;
    return h.used_heap_size > this.spec.limits.memoryMb * 1024 * 1024;
  }

  /** Waits for the pending waitUntil work (bounded by the watchdog's limits). */
  async drain(): Promise<void> {
    this.heapFresh = false;
    const drain = this.runtimeFn<() => Promise<void>>("drain");
    // An unhandled rejection in the waitUntil work rejects this call (see recoverOutcome): log it, wait on.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.guarded(() => drain.apply(undefined, [], { result: { promise: true } }));
        break;
      } catch (e) {
        if (e instanceof RunEnded || !this.alive || attempt >= 100) throw e;
        this.fresh.slot.log("error", `Uncaught (in promise) ${(e as Error)?.message ?? String(e)}`);
      }
    }
    if (this.endedBy) throw this.endedBy;
  }

  /**
   * The run is over: cancel its timers and other host tasks so nothing of it fires later.
   * `guestDone`: the runtime already cleared its timers when it answered (Outcome.ended).
   */
  endRun(guestDone = false): void {
    this.fresh.slot.services.cancelAll();
    if (!this.alive || guestDone) return;
    this.runtimeFn<() => void>("endRun").applySync(undefined, []);
  }

  /**
   * A function of the runtime's handle, looked up once per isolate: drain and endRun may run on
   * every invocation, and each lookup is a call into the isolate.
   */
  private runtimeFn<F>(name: string): ivm.Reference<F> {
    let ref = this.runtimeFns.get(name);
    if (!ref) {
      ref = this.fresh.runtime.getSync(name, { reference: true }) as ivm.Reference<unknown>;
      this.runtimeFns.set(name, ref);
    }
    return ref as ivm.Reference<F>;
  }

  takeLogs(): LogLine[] {
    return this.fresh.slot.takeLogs();
  }

  resetLogBudget(): void {
    this.fresh.slot.logBytes = 0;
  }

  /** Ends the isolate now; pending calls fail with `reason`. */
  end(reason: RunEnded): void {
    if (!this.endedBy) {
      this.endedBy = reason;
      this.rejectEnded(reason);
    }
    release(this.fresh);
  }

  dispose(): void {
    this.end(new RunEnded("disposed", "Worker was disposed."));
  }

  /** Translates isolated-vm's disposal rejections into the reason mayfly ended the isolate for. */
  private async guarded<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await Promise.race([fn(), this.ended]);
    } catch (e) {
      if (this.endedBy) throw this.endedBy;
      const msg = (e as Error)?.message ?? String(e);
      if (/memory limit/i.test(msg)) {
        this.end(new RunEnded("memoryMb", `Worker exceeded memory limit of ${this.spec.limits.memoryMb} MB.`, "JavaScript heap"));
        throw this.endedBy;
      }
      if (this.fresh.isolate.isDisposed) {
        this.end(new RunEnded("internal", `Worker isolate ended unexpectedly: ${msg}`));
        throw this.endedBy;
      }
      throw e;
    }
  }
}

/** What the guest runtime learns of the actor it hosts (never its storage path). */
function actorStart(spec: WorkerSpec): { className: string; id: string; name?: string; control: number; replicate?: boolean } | undefined {
  const a = spec.actor;
  return a ? { className: a.className, id: a.id, ...(a.name !== undefined ? { name: a.name } : {}), control: a.control, ...(a.replicate ? { replicate: true } : {}) } : undefined;
}

/** V8's longest string, in one-byte characters (2^29 - 24 on 64-bit builds). */
const MAX_STRING_BYTES = 2 ** 29 - 24;

/**
 * What a guest's uncaught RangeError says was refused for lack of memory, if anything: an
 * ArrayBuffer V8 could not allocate within the limit, or a string longer than V8 allows, which, under
 * a limit below V8's longest string, could never fit anyway (doubling a string reaches it in 29 steps,
 * cheaply, because V8 builds the halves as ropes).
 */
function refusedAllocation(message: string, memoryMb: number): string | undefined {
  if (/Array buffer allocation failed/.test(message)) return "ArrayBuffer allocation";
  if (/memory limit exceeded/.test(message)) return "a string or array too large to build";
  if (/^Invalid string length/.test(message) && memoryMb * 1024 * 1024 < MAX_STRING_BYTES) return "a string longer than the memory limit";
  return undefined;
}
