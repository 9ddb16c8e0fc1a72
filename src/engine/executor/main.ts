/**
 * Executor process entry. Runs with --no-node-snapshot (isolated-vm requires it). Isolates live only
 * here: a guest that aborts V8 takes down this process, never the host.
 */
import { buildRuntime } from "../../runtime/index.ts";
import { setRuntimeModules } from "./services/runtime-modules.ts";
import type { ExecutorToHost, HostToExecutor, WorkerSpec } from "../protocol.ts";
import type { Invocation } from "../../runtime/index.ts";
import { IsolatePool } from "./isolate-pool.ts";
import { DEFAULT_LIMITS } from "../limits.ts";
import { bodies } from "./body-streams.ts";
import { capabilityCalls } from "./capability-calls.ts";
import { INSTANCE_ID, SUBREQUEST_LIMIT, SUBREQUESTS } from "./services/capabilities.ts";
import type { ServiceState } from "./services/index.ts";
import { ACTOR_STORAGE } from "./services/actor-storage.ts";
import { selectRuntimeImage } from "./runtime-image.ts";
import { PackageImages } from "./package-images.ts";
import { buildImageInChild } from "./image-builder.ts";
import { ScriptsHeld } from "../script-transfer.ts";
import { Watchdog } from "./watchdog.ts";
import { MainThreadPriority } from "./thread-priority.ts";
import { RunEnded, SyncBudgetExceeded, WorkerInstance, type CallResult } from "./worker-instance.ts";

export interface ExecutorConfig {
  poolSize: number;
  defaultMemoryMb: number;
  watchdogIntervalMs: number;
  /** Past this RSS the executor ends its largest instance; well past it, the process exits. */
  rssLimitBytes: number;
  /** Restore the runtime from a self-tested V8 snapshot (falls back to evaluating it). */
  snapshot: boolean;
  /** Nice steps this process's main thread is raised above its guest threads, where allowed (0: off). */
  mainThreadBoost: number;
  packageImages: false | { afterRuns: number; deadlineMs: number; poolSize: number; maxImages: number };
}

// The supervisor passes the configuration as the first argument; nothing is read from the environment.
const config = JSON.parse(process.argv[2] ?? "{}") as ExecutorConfig;
watchParent();
const runtime = buildRuntime();
setRuntimeModules(runtime.lazyModules);
const { image, fallbackReason } = await selectRuntimeImage(runtime.script, config.snapshot);
if (fallbackReason && config.snapshot) process.stderr.write(`mayfly executor: evaluating the runtime per isolate (${fallbackReason})\n`);
const pool = new IsolatePool(image, config.poolSize, config.defaultMemoryMb);
const packageImages = new PackageImages(config.packageImages && image.kind === "snapshot" ? {
  ...config.packageImages,
  build: (scripts, worker) => buildImageInChild(runtime.script, scripts, worker, (config.packageImages as { deadlineMs: number }).deadlineMs),
  log: (m) => process.stderr.write(`mayfly executor: ${m}\n`),
} : undefined);
const watchdog = new Watchdog(config.watchdogIntervalMs);
const scripts = new ScriptsHeld();
const instances = new Map<number, WorkerInstance>();
/** The instance serving each fetch call, for ending it when its streamed output passes the limit. */
const callInstances = new Map<number, WorkerInstance>();
bodies.configure(send);
capabilityCalls.configure(send);
bodies.onOutputExceeded = (callId) => {
  const instance = callInstances.get(callId);
  const limit = instance?.spec.limits.outputBytes ?? 0;
  instance?.end(new RunEnded("output", `Worker exceeded output limit of ${limit} bytes.`, "streamed response body"));
};
/** Startup of each instance id, awaited by calls that arrive while it is still starting. */
const starting = new Map<number, Promise<WorkerInstance>>();

/**
 * Everything this executor does is for its host: once the IPC channel is gone (the host exited
 * without close(), or was SIGKILLed) there is nobody to answer, so it leaves at once and quietly.
 * Registered before the first await: a host that exits during startup must not be missed.
 */
function watchParent(): void {
  process.on("disconnect", parentGone);
  // A send that lost the race with the disconnect reports here when it has no callback.
  process.on("error", (e: NodeJS.ErrnoException) => {
    if (isChannelGone(e)) parentGone();
    else throw e;
  });
  // The host may already be gone by the time this process runs its first line.
  if (!process.connected) parentGone();
}

/**
 * SIGKILL to itself, as WorkerLoader.close() ends executors: process.exit() runs isolated-vm's
 * thread-pool destructor, which joins pool threads that may be waiting on this (exiting) thread for
 * a synchronous callback, and the process then hangs forever, orphaned. Nobody waits on the status.
 */
function parentGone(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable: SIGKILL was sent");
}

function isChannelGone(e: NodeJS.ErrnoException | null | undefined): boolean {
  return e?.code === "ERR_IPC_CHANNEL_CLOSED" || e?.code === "EPIPE" || e?.code === "ECONNRESET";
}

/**
 * One frame to the host. A frame that cannot be serialized still throws here (reply() turns that
 * into a DataCloneError for the call); a channel closed under us means the host is gone.
 */
function send(msg: ExecutorToHost): void {
  if (!process.connected) parentGone();
  process.send!(msg, undefined, {}, (e: Error | null) => {
    if (!e) return;
    if (isChannelGone(e)) parentGone();
    process.stderr.write(`mayfly executor: a frame to the host was lost: ${e.message}\n`);
  });
}

async function handleCall(callId: number, instanceId: number, worker: WorkerSpec | undefined, inv: Invocation): Promise<void> {
  const wallStart = performance.now();
  let instance: WorkerInstance | undefined;
  let cpu = 0;
  /** Set once the reply has gone out while the run goes on (waitUntil): the rest goes in a "done" frame. */
  let replied = false;
  let failure: CallResult["failure"];
  let outcome: CallResult["outcome"];
  try {
    instance = await instanceFor(instanceId, worker, (ms) => (cpu += ms));
    if (inv.kind === "fetch") {
      bodies.open(callId, instance.servicesToken, instance.spec.limits.outputBytes);
      callInstances.set(callId, instance);
      inv = { ...inv, stream: callId };
    }
    if (instance.active++ === 0) {
      // A new run: fresh log and subrequest budgets.
      instance.resetLogBudget();
      (instance.servicesToken as ServiceState).store.set(SUBREQUESTS, 0);
    }
    const stop = watchdog.watch(instance, instance.spec.limits);
    try {
      outcome = await instance.call(inv);
      checkOutput(outcome, instance);
      if (outcome.pending && instance.alive) {
        // Cloudflare semantics: the response leaves now; the run stays alive for ctx.waitUntil work.
        replied = reply(callId, instance, { outcome }, cpu + stop.peek(), wallStart, false);
        await instance.drain();
      }
    } finally {
      cpu += stop();
      if (--instance.active === 0) instance.endRun(outcome?.ended === true && !replied);
    }
  } catch (e) {
    const ended = e instanceof RunEnded ? e : new RunEnded("internal", (e as Error)?.message ?? String(e));
    failure = { kind: ended.kind, error: { name: ended.name, message: ended.message }, detail: ended.detail };
    if (!replied) outcome = undefined;
    // A worker that failed to start is not kept: the next call starts afresh, as on Cloudflare.
    if (ended.kind === "startup") instance?.end(ended);
    instance ??= instances.get(instanceId);
  }
  // A response body still open now failed with the run (or was never finished by the guest).
  bodies.close(callId, failure ?? { kind: "stream", error: { name: "TypeError", message: "The worker's response body ended without being closed." } });
  callInstances.delete(callId);
  if (replied) sendDone(callId, instanceId, instance, failure, cpu, wallStart);
  else reply(callId, instance, { outcome, failure }, cpu, wallStart, true, instanceId);
  pool.refillSoon();
  packageImages.refillSoon();
}

/** The instance for a call: the live one, the one still starting, or a new one from the pool. */
async function instanceFor(instanceId: number, worker: WorkerSpec | undefined, addCpu: (ms: number) => void): Promise<WorkerInstance> {
  const pending = starting.get(instanceId);
  if (pending) return pending;
  const live = instances.get(instanceId);
  if (live) return live;
  if (!worker) throw new RunEnded("disposed", "Worker instance is gone; the host must resend its code.");
  const started = startWorker(instanceId, scripts.restore(worker));
  const instance = started.then((s) => s.instance);
  instance.catch(() => {});
  starting.set(instanceId, instance);
  try {
    const s = await started;
    addCpu(s.cpuMs);
    return s.instance;
  } finally {
    starting.delete(instanceId);
  }
}

/** Sends the call's result frame; `final` says no "done" frame follows. Returns true once sent. */
function reply(callId: number, instance: WorkerInstance | undefined, result: Pick<CallResult, "outcome" | "failure">, cpuMs: number, wallStart: number, final: boolean, instanceId?: number): boolean {
  const gone = !instance || !instance.alive;
  if (final && gone && instanceId !== undefined) instances.delete(instanceId);
  const frame = {
    t: "result" as const, callId, final, outcome: result.outcome, failure: result.failure,
    logs: instance?.takeLogs() ?? [],
    stats: statsOf(instance, cpuMs, wallStart, final),
    rssBytes: lastRss, refillMs: pool.refillMsAhead() + packageImages.refillMsAhead(), instanceGone: gone, recycle: pool.tainted || packageImages.tainted, packageImages: packageImages.ready,
  };
  try {
    send(frame);
  } catch (e) {
    // A value V8 copied out of the isolate may still be too deep or too large for the IPC channel:
    // that fails this call only, never the executor.
    const error = { name: "DataCloneError", message: `Result could not be sent to the host: ${(e as Error)?.message ?? e}` };
    send({ ...frame, outcome: undefined, failure: { kind: "clone", error }, logs: [] });
  }
  return true;
}

/** `settled`: the run has ended, so the isolate is idle and its heap can be read at once. */
function statsOf(instance: WorkerInstance | undefined, cpuMs: number, wallStart: number, settled: boolean) {
  if (settled && instance?.alive && !instance.takeHeapFresh()) readHeapNow(instance);
  const subRequests = instance ? Number((instance.servicesToken as ServiceState).store.get(SUBREQUESTS) ?? 0) : 0;
  return { cpuMs, wallMs: performance.now() - wallStart, heapBytes: instance?.heapBytes ?? 0, subRequests };
}

/** The end of a run that replied early: its later logs, final cost, and how the waitUntil work ended. */
function sendDone(callId: number, instanceId: number, instance: WorkerInstance | undefined, failure: CallResult["failure"], cpuMs: number, wallStart: number): void {
  const gone = !instance || !instance.alive;
  if (gone) instances.delete(instanceId);
  send({
    t: "done", callId, failure, logs: instance?.takeLogs() ?? [],
    stats: statsOf(instance, cpuMs, wallStart, true),
    instanceGone: gone,
  });
}

/**
 * Runs one trivial worker through the whole executor path before reporting ready: the executor's own
 * code (and isolated-vm's threads) are cold in a new process, which cost the first real request
 * ~15 ms of CPU. Its isolate is disposed like any other.
 */
async function warmUpExecutor(): Promise<void> {
  const spec: WorkerSpec = {
    mainModule: "warm.js",
    modules: [{ name: "warm.js", type: "esm", content: "export default { fetch(r) { console.log(r.url); return Response.json({ ok: true }) } }" }],
    env: {}, compatibilityFlags: [], limits: { ...DEFAULT_LIMITS, memoryMb: config.defaultMemoryMb },
  };
  const instance = new WorkerInstance(pool.take(spec.limits.memoryMb), spec);
  try {
    await instance.start("sync");
    await instance.call({ kind: "fetch", entrypoint: null, props: undefined, request: { url: "http://warm.up/", method: "GET", headers: [], body: null } });
    instance.takeLogs();
  } catch {
    // A failed warm-up only means a slower first request; real requests report their own errors.
  } finally {
    instance.endRun();
    instance.dispose();
  }
}

/** Starts a worker in a fresh isolate: synchronously when its top-level code is quick, else async. */
async function startWorker(instanceId: number, spec: WorkerSpec): Promise<{ instance: WorkerInstance; cpuMs: number }> {
  let instance = newInstance(instanceId, spec);
  let cpuMs = 0;
  try {
    cpuMs += await startInstance(instance, "sync");
  } catch (e) {
    if (!(e instanceof SyncBudgetExceeded)) throw e;
    instance.end(new RunEnded("disposed", "Restarted asynchronously."));
    instance = newInstance(instanceId, spec);
    cpuMs += await startInstance(instance, "async");
  }
  return { instance, cpuMs };
}

/** A worker instance on a fresh isolate, whose services know which instance they serve. */
function newInstance(instanceId: number, spec: WorkerSpec): WorkerInstance {
  const instance = new WorkerInstance(packageImages.take(spec) ?? pool.take(spec.limits.memoryMb), spec);
  const store = (instance.servicesToken as ServiceState).store;
  store.set(INSTANCE_ID, instanceId);
  store.set(SUBREQUEST_LIMIT, spec.limits.subRequests);
  if (spec.actor) store.set(ACTOR_STORAGE, { path: spec.actor.storagePath, maxBytes: spec.actor.maxStorageBytes, replicate: spec.actor.replicate === true });
  instances.set(instanceId, instance);
  return instance;
}

/** Runs the module graph's top-level code under the watchdog; resolves to the CPU ms it took. */
async function startInstance(instance: WorkerInstance, mode: "sync" | "async"): Promise<number> {
  const stop = watchdog.watch(instance, instance.spec.limits);
  try {
    await instance.start(mode);
    if (!instance.preloaded) packageImages.noteEvaluated(instance.spec);
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

function readHeapNow(instance: WorkerInstance): void {
  try {
    const h = instance.isolate.getHeapStatisticsSync();
    instance.heapBytes = h.used_heap_size + h.externally_allocated_size;
  } catch {
    // Disposed in the meantime: the last sample stands.
  }
}

/**
 * Backstop for memory V8 does not account (Wasm growth, native leaks): when the process passes its
 * RSS limit, the instance holding the most memory is ended; far past it, the process exits and the
 * supervisor replaces it, failing only the runs that were here.
 */
/** RSS as last sampled by checkRss (every 50 ms): reading it costs a /proc read, ~8 µs, too much per reply. */
let lastRss = process.memoryUsage.rss();

function checkRss(): void {
  const rss = (lastRss = process.memoryUsage.rss());
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
  } else if (msg.t === "forget-scripts") {
    scripts.forget(msg.hashes);
  } else if (msg.t === "dispose") {
    instances.get(msg.instanceId)?.dispose();
    instances.delete(msg.instanceId);
  } else if (msg.t === "req-chunk") {
    bodies.requestChunk(msg.callId, msg.data);
  } else if (msg.t === "req-end") {
    bodies.requestEnd(msg.callId);
  } else if (msg.t === "req-error") {
    bodies.requestEnd(msg.callId, msg.message);
  } else if (msg.t === "res-pull") {
    bodies.responsePull(msg.callId);
  } else if (msg.t === "res-cancel") {
    bodies.responseCancel(msg.callId);
  } else if (msg.t === "cap-result") {
    capabilityCalls.answer(msg.reqId, msg.envelope);
  }
});
setInterval(checkRss, 50).unref();
const priority = new MainThreadPriority();
priority.start(config.mainThreadBoost, 20);
pool.warm();
await warmUpExecutor();
send({ t: "ready", pid: process.pid, runtime: image.kind, mainThreadRaised: priority.raised });
