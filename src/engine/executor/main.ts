/**
 * Executor process entry. Runs with --no-node-snapshot (isolated-vm requires it). Isolates live only
 * here: a guest that aborts V8 takes down this process, never the host.
 */
import { buildRuntimeScript } from "../../runtime/index.ts";
import type { ExecutorToHost, HostToExecutor, WorkerSpec } from "../protocol.ts";
import type { Invocation } from "../../runtime/index.ts";
import { IsolatePool } from "./isolate-pool.ts";
import { selectRuntimeImage } from "./runtime-image.ts";
import { Watchdog } from "./watchdog.ts";
import { RunEnded, SyncBudgetExceeded, WorkerInstance, type CallResult } from "./worker-instance.ts";

export interface ExecutorConfig {
  poolSize: number;
  defaultMemoryMb: number;
  watchdogIntervalMs: number;
  /** Past this RSS the executor ends its largest instance; well past it, the process exits. */
  rssLimitBytes: number;
  /** Restore the runtime from a self-tested V8 snapshot (falls back to evaluating it). */
  snapshot: boolean;
}

// The supervisor passes the configuration as the first argument; nothing is read from the environment.
const config = JSON.parse(process.argv[2] ?? "{}") as ExecutorConfig;
const { image, fallbackReason } = await selectRuntimeImage(buildRuntimeScript(), config.snapshot);
if (fallbackReason && config.snapshot) process.stderr.write(`mayfly executor: evaluating the runtime per isolate (${fallbackReason})\n`);
const pool = new IsolatePool(image, config.poolSize, config.defaultMemoryMb);
const watchdog = new Watchdog(config.watchdogIntervalMs);
const instances = new Map<number, WorkerInstance>();
/** Startup of each instance id, awaited by calls that arrive while it is still starting. */
const starting = new Map<number, Promise<WorkerInstance>>();

function send(msg: ExecutorToHost): void {
  process.send!(msg);
}

async function handleCall(callId: number, instanceId: number, worker: WorkerSpec | undefined, inv: Invocation): Promise<void> {
  const wallStart = performance.now();
  let instance = instances.get(instanceId);
  let result: CallResult;
  let cpu = 0;
  try {
    const pending = starting.get(instanceId);
    if (pending) {
      instance = await pending;
    } else if (!instance) {
      if (!worker) throw new RunEnded("disposed", "Worker instance is gone; the host must resend its code.");
      const started = startWorker(instanceId, worker);
      starting.set(instanceId, started.then((s) => s.instance));
      starting.get(instanceId)!.catch(() => {});
      try {
        const s = await started;
        instance = s.instance;
        cpu += s.cpuMs;
      } finally {
        starting.delete(instanceId);
        instance ??= instances.get(instanceId);
      }
    }
    if (!instance) throw new RunEnded("disposed", "Worker instance is gone.");
    if (instance.active++ === 0) instance.resetLogBudget();
    const stop = watchdog.watch(instance, instance.spec.limits);
    try {
      const outcome = await instance.call(inv);
      result = { outcome, logs: [], stats: emptyStats() };
      checkOutput(outcome, instance);
    } finally {
      instance.active--;
      cpu += stop();
    }
  } catch (e) {
    const ended = e instanceof RunEnded ? e : new RunEnded("internal", (e as Error)?.message ?? String(e));
    result = { failure: { kind: ended.kind, error: { name: ended.name, message: ended.message }, detail: ended.detail }, logs: [], stats: emptyStats() };
    if (ended.kind === "startup") {
      // A worker that failed to start is not kept: the next call starts afresh, as on Cloudflare.
      instance?.end(ended);
    }
  }
  const gone = !instance || !instance.alive;
  if (instance) {
    result.logs = instance.takeLogs();
    result.stats = { cpuMs: cpu, wallMs: performance.now() - wallStart, heapBytes: instance.heapBytes };
  }
  if (gone) instances.delete(instanceId);
  pool.refillSoon();
  const frame = { t: "result" as const, callId, outcome: result.outcome, failure: result.failure, logs: result.logs, stats: result.stats, rssBytes: process.memoryUsage.rss(), refillMs: pool.refillMsAhead(), instanceGone: gone };
  try {
    send(frame);
  } catch (e) {
    // A value V8 copied out of the isolate may still be too deep or too large for the IPC channel:
    // that fails this call only, never the executor.
    const error = { name: "DataCloneError", message: `Result could not be sent to the host: ${(e as Error)?.message ?? e}` };
    send({ ...frame, outcome: undefined, failure: { kind: "clone", error }, logs: [] });
  }
  if (instance?.alive) sampleHeap(instance);
}

/** Starts a worker in a fresh isolate: synchronously when its top-level code is quick, else async. */
async function startWorker(instanceId: number, spec: WorkerSpec): Promise<{ instance: WorkerInstance; cpuMs: number }> {
  let instance = new WorkerInstance(pool.take(spec.limits.memoryMb), spec);
  instances.set(instanceId, instance);
  let cpuMs = 0;
  try {
    cpuMs += await startInstance(instance, "sync");
  } catch (e) {
    if (!(e instanceof SyncBudgetExceeded)) throw e;
    instance.end(new RunEnded("disposed", "Restarted asynchronously."));
    instance = new WorkerInstance(pool.take(spec.limits.memoryMb), spec);
    instances.set(instanceId, instance);
    cpuMs += await startInstance(instance, "async");
  }
  return { instance, cpuMs };
}

/** Runs the module graph's top-level code under the watchdog; resolves to the CPU ms it took. */
async function startInstance(instance: WorkerInstance, mode: "sync" | "async"): Promise<number> {
  const stop = watchdog.watch(instance, instance.spec.limits);
  try {
    await instance.start(mode);
    return stop();
  } catch (e) {
    stop();
    if (e instanceof SyncBudgetExceeded) throw e;
    throw e instanceof RunEnded ? e : startupFailure(e);
  }
}

class StartupError extends RunEnded {}

function startupFailure(e: unknown): RunEnded {
  const name = (e as Error)?.name && (e as Error).name !== "Error" ? (e as Error).name : guestErrorName(e);
  const err = new StartupError("startup", `Failed to start Worker: ${(e as Error)?.message ?? String(e)}`);
  err.name = name;
  return err;
}

/** isolated-vm copies guest errors as host errors whose stack starts with the guest's "Name: message". */
function guestErrorName(e: unknown): string {
  const m = /^(\w*Error)\b/.exec(String((e as Error)?.stack ?? ""));
  return m?.[1] ?? "Error";
}

function checkOutput(outcome: { ok: boolean; value?: unknown }, instance: WorkerInstance): void {
  const limit = instance.spec.limits.outputBytes;
  const size = outputSize(outcome.value);
  if (size > limit) throw new RunEnded("output", `Worker exceeded output limit of ${limit} bytes.`, `${size} bytes`);
}

function outputSize(v: unknown): number {
  if (v instanceof Uint8Array) return v.byteLength;
  if (v && typeof v === "object" && "body" in v && (v as { body: unknown }).body instanceof Uint8Array) {
    return ((v as { body: Uint8Array }).body).byteLength;
  }
  try {
    return Buffer.byteLength(JSON.stringify(v) ?? "");
  } catch {
    return 0;
  }
}

function emptyStats() {
  return { cpuMs: 0, wallMs: 0, heapBytes: 0 };
}

/** Heap figures are read between calls (reading them mid-run would wait for the isolate's lock). */
function sampleHeap(instance: WorkerInstance): void {
  instance.isolate.getHeapStatistics().then(
    (h) => {
      instance.heapBytes = h.used_heap_size + h.externally_allocated_size;
    },
    () => {},
  );
}

/**
 * Backstop for memory V8 does not account (Wasm growth, native leaks): when the process passes its
 * RSS limit, the instance holding the most memory is ended; far past it, the process exits and the
 * supervisor replaces it, failing only the runs that were here.
 */
function checkRss(): void {
  const rss = process.memoryUsage.rss();
  if (rss <= config.rssLimitBytes) return;
  if (rss > config.rssLimitBytes * 1.5) process.exit(71);
  let largest: WorkerInstance | undefined;
  for (const i of instances.values()) if (i.alive && (!largest || i.heapBytes > largest.heapBytes)) largest = i;
  largest?.end(new RunEnded("memoryMb", `Worker exceeded memory limit of ${largest.spec.limits.memoryMb} MB.`, "executor memory ceiling reached"));
}

process.on("message", (msg: HostToExecutor) => {
  if (msg.t === "call") {
    handleCall(msg.callId, msg.instanceId, msg.worker, msg.invocation).catch((e) => {
      process.stderr.write(`mayfly executor: call ${msg.callId} failed internally: ${(e as Error)?.stack ?? e}\n`);
    });
  } else if (msg.t === "dispose") {
    instances.get(msg.instanceId)?.dispose();
    instances.delete(msg.instanceId);
  }
});
process.on("disconnect", () => process.exit(0));
setInterval(checkRss, 50).unref();
pool.warm();
send({ t: "ready", pid: process.pid, runtime: image.kind });
