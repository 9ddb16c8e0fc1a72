import { Engine, type EngineOptions } from "../engine/index.ts";
import { resolveLimits, type Limits } from "../engine/limits.ts";
import { InvalidWorkerCodeError, NpmNotEnabledError, WorkerDisposedError } from "../errors.ts";
import { NpmBundler, type NpmOptions, type NpmReport } from "../bundler/npm/index.ts";
import { typecheckWorker } from "./typecheck/index.ts";
import { bindEnv } from "./env.ts";
import { CapabilityTable, asCapability, type Capability } from "../bindings/capability.ts";
import type { RunReport } from "./run-report.ts";
import { transpileModules } from "./transpile.ts";
import { normalizeWorkerCode, type NormalizedModule, type WorkerCode } from "./worker-code.ts";
import { WorkerStub, type StubBacking } from "./worker-stub.ts";

export interface WorkerLoaderOptions extends EngineOptions {
  /** Defaults for every worker's `limits`; a WorkerCode's own limits override them. */
  limits?: Partial<Limits>;
  /** Bounds on the `get(id)` cache; past either, the least recently used worker is evicted. */
  cache?: { maxWorkers?: number; maxMemoryMb?: number };
  /** A worker idle this long frees its isolate (default 60 s); a cached id is evicted. */
  idleTtlMs?: number;
  /** Called after every invocation with its outcome, logs and cost. */
  onRun?: (report: RunReport) => void;
  /**
   * Grants npm packages: a WorkerCode's `packageJson` is resolved from `registry`, verified, bundled and
   * cached in `cacheDir`; `allow` limits which packages. Without it, a `packageJson` is refused.
   */
  npm?: NpmOptions;
  /** A `typecheck: true` check still running after this long fails the load with TypeCheckError (default 30 s). */
  typecheckTimeoutMs?: number;
}

/** What a durable actor's instance adds to a worker (see _loadActor). */
export interface ActorLoad {
  className: string;
  id: string;
  name?: string;
  storagePath: string;
  maxStorageBytes: number;
  control: Capability;
  /** Capture committed writes as changesets for the control channel's "replicate" (cluster mode). */
  replicate?: boolean;
}

interface CacheEntry {
  stub: WorkerStub;
}

/**
 * Cloudflare's Worker Loader API, self-hosted: `load(code)` for a one-off worker, `get(id, getCode)`
 * for a worker kept warm by id. Each worker runs in its own fresh V8 isolate in an executor process.
 */
export class WorkerLoader {
  readonly engine: Engine;
  private readonly opts: WorkerLoaderOptions;
  private readonly cache = new Map<string, CacheEntry>();
  /** Every undisposed stub, with its cache id when it came from get(). */
  private readonly live = new Map<WorkerStub, string | undefined>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly npm: NpmBundler | undefined;
  private closed = false;

  constructor(options: WorkerLoaderOptions = {}) {
    this.opts = options;
    this.npm = options.npm ? new NpmBundler(options.npm) : undefined;
    this.engine = new Engine({ ...options, defaultMemoryMb: options.defaultMemoryMb ?? options.limits?.memoryMb });
    const ttl = options.idleTtlMs ?? 60_000;
    this.sweeper = setInterval(() => this.sweep(ttl), Math.max(10, Math.min(ttl / 2, 5_000)));
    this.sweeper.unref();
  }

  /** Workers not yet disposed (each holds at most one isolate), and how many of them are cached by id. */
  get liveWorkers(): { total: number; cached: number } {
    return { total: this.live.size, cached: this.cache.size };
  }

  /** Resolves once every executor is up with a warm isolate pool (optional: calls wait anyway). */
  ready(): Promise<void> {
    warmHostPaths();
    return this.engine.ready();
  }

  /**
   * A new worker in a fresh isolate. Invalid code throws here, synchronously; startup errors surface on
   * the first call, as do the errors of preparing `packageJson` and `typecheck` (which run on the host
   * before the code is sent to an executor).
   */
  load(code: WorkerCode): WorkerStub {
    this.assertOpen();
    return this.track(Promise.resolve(this.prepare(code)), undefined);
  }

  /**
   * The worker cached under `id`, or a new one from `getCode()` (called once per live id, sync or async;
   * its errors reach the caller of the first call, and the id is not cached).
   */
  get(id: string, getCode: () => WorkerCode | Promise<WorkerCode>): WorkerStub {
    this.assertOpen();
    const hit = this.cache.get(id);
    if (hit && !hit.stub.disposed) {
      this.cache.delete(id); // re-insert: Map order is the LRU order
      this.cache.set(id, hit);
      return hit.stub;
    }
    let backing: Promise<StubBacking>;
    try {
      backing = Promise.resolve(getCode()).then((code) => this.prepare(code));
    } catch (e) {
      backing = Promise.reject(e);
    }
    const stub = this.track(backing, id);
    backing.catch(() => {
      if (this.cache.get(id)?.stub === stub) this.cache.delete(id);
    });
    this.cache.set(id, { stub });
    this.evict();
    return stub;
  }

  /**
   * @internal A durable actor's instance (src/actors/): `actor.control` joins the worker's capability
   * table, and the executor opens `actor.storagePath` for its ctx.storage. Returns the table too, so
   * the actor can hand its own bindings on to a facet.
   */
  _loadActor(code: WorkerCode, actor: ActorLoad): { stub: WorkerStub; capabilities: CapabilityTable } {
    this.assertOpen();
    const capabilities = new CapabilityTable();
    let backing: Promise<StubBacking>;
    try {
      backing = Promise.resolve(this.prepareWith(code, actor, capabilities));
    } catch (e) {
      backing = Promise.reject(e); // reaches the actor's first caller
    }
    return { stub: this.track(backing, undefined), capabilities };
  }

  /** Disposes every worker and stops the executors. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const stub of [...this.live.keys()]) stub.dispose();
    this.cache.clear();
    await this.engine.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private prepare(code: WorkerCode): StubBacking | Promise<StubBacking> {
    return this.prepareWith(code, undefined, new CapabilityTable());
  }

  private prepareWith(code: WorkerCode, actor: ActorLoad | undefined, capabilities: CapabilityTable): StubBacking | Promise<StubBacking> {
    const { code: wc, modules } = normalizeWorkerCode(code);
    if (wc.packageJson && !this.npm) {
      throw new NpmNotEnabledError("WorkerCode.packageJson needs npm, which this WorkerLoader was not granted: new WorkerLoader({ npm: { cacheDir, allow } }).");
    }
    const env = bindEnv(wc.env ?? {}, capabilities);
    const control = actor ? capabilities.add(actor.control).__mayflyCapability : undefined;
    const outbound = wc.globalOutbound ? asCapability(wc.globalOutbound, "globalOutbound") : undefined;
    const globalOutbound = outbound ? capabilities.add(outbound).__mayflyCapability : undefined;
    const limits = resolveLimits(this.opts.limits, wc.limits);
    if (limits.memoryMb > this.engine.maxMemoryMb) {
      throw new InvalidWorkerCodeError(`limits.memoryMb ${limits.memoryMb} is above this loader's maxMemoryMb (${this.engine.maxMemoryMb}).`);
    }
    const transpiled = transpileModules(modules);
    const finish = (packages: NormalizedModule[], npm?: NpmReport): StubBacking => {
      if (this.closed) throw new WorkerDisposedError("The WorkerLoader was closed.");
      const handle = this.engine.createInstance({
        mainModule: wc.mainModule,
        modules: [...transpiled, ...packages],
        env,
        compatibilityFlags: wc.compatibilityFlags ?? [],
        limits,
        globalOutbound,
        ...(actor ? { actor: { className: actor.className, id: actor.id, name: actor.name, storagePath: actor.storagePath, maxStorageBytes: actor.maxStorageBytes, control: control!, ...(actor.replicate ? { replicate: true } : {}) } } : {}),
      }, capabilities.size ? capabilities : undefined);
      return { handle, limits, tails: wc.tails ?? [], npm };
    };
    if (!wc.packageJson && !wc.typecheck) return finish([]);
    // Loading stays synchronous, as Cloudflare's LOADER.load() is: resolving packages and type-checking
    // happen on the host now, and the first call awaits them before anything reaches an executor.
    return (async () => {
      let packages: NormalizedModule[] = [];
      let report: NpmReport | undefined;
      let installDir: string | undefined;
      if (wc.packageJson) {
        ({ modules: packages, report, installDir } = await this.npm!.bundle({
          packageJson: wc.packageJson, lockfile: wc.lockfile, modules: transpiled, install: wc.typecheck === true,
        }));
      }
      if (wc.typecheck) await typecheckWorker(modules, { installDir, timeoutMs: this.opts.typecheckTimeoutMs });
      return finish(packages, report);
    })();
  }

  private track(backing: Promise<StubBacking>, workerId: string | undefined): WorkerStub {
    const stub: WorkerStub = new WorkerStub(backing, {
      workerId,
      onRun: this.opts.onRun,
      onDispose: () => {
        this.live.delete(stub);
        if (workerId !== undefined && this.cache.get(workerId)?.stub === stub) this.cache.delete(workerId);
      },
    });
    this.live.set(stub, workerId);
    backing.then((b) => handles.set(stub, b), () => {});
    return stub;
  }

  /** Evicts least recently used ids past the count or memory bound. */
  private evict(): void {
    const maxWorkers = this.opts.cache?.maxWorkers ?? 1000;
    const maxBytes = (this.opts.cache?.maxMemoryMb ?? 1024) * 1024 * 1024;
    let bytes = 0;
    const sizes = new Map<string, number>();
    for (const [id, e] of this.cache) {
      const size = estimateBytes(e.stub);
      sizes.set(id, size);
      bytes += size;
    }
    for (const [id, e] of this.cache) {
      if (this.cache.size <= maxWorkers && bytes <= maxBytes) break;
      bytes -= sizes.get(id)!;
      e.stub.dispose();
    }
  }

  private sweep(ttlMs: number): void {
    const now = Date.now();
    for (const [stub, id] of this.live) {
      const last = lastUsed(stub);
      if (last === undefined || now - last < ttlMs) continue;
      if (id !== undefined) stub.dispose();
      else stub._releaseIsolate();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new WorkerDisposedError("The WorkerLoader was closed.");
  }
}

const handles = new WeakMap<WorkerStub, StubBacking>();

function estimateBytes(stub: WorkerStub): number {
  const b = handles.get(stub);
  // An isolate that has not reported yet is counted at the ~1 MB a fresh one costs.
  return Math.max(b?.handle.heapBytes ?? 0, 1024 * 1024);
}

function lastUsed(stub: WorkerStub): number | undefined {
  const b = handles.get(stub);
  return b?.handle.live && b.handle.active === 0 ? b.handle.lastUsed : undefined;
}

/**
 * The first Request/Response a Node process builds loads undici (~30 ms), and the first TypeScript
 * transform starts esbuild's service (~100 ms): ready() pays both, once per process, so a first
 * request does not.
 */
let hostWarmed = false;
function warmHostPaths(): void {
  if (hostWarmed) return;
  hostWarmed = true;
  void new Request("http://warm.up/", { method: "POST", body: "x" }).arrayBuffer();
  void new Response("x").text();
  transpileModules([{ name: "warm.ts", type: "esm", content: "export const x: number = 1;" }]);
}
