import { fork, type ChildProcess } from "node:child_process";
import { ScriptsSent } from "./script-transfer.ts";
import { fileURLToPath } from "node:url";
import { ExecutorCrashedError } from "../errors.ts";
import { callCapability } from "./capability-router.ts";
import type { ExecutorToHost, HostToExecutor } from "./protocol.ts";
import type { ExecutorConfig } from "./executor/main.ts";

export type DoneFrame = Extract<ExecutorToHost, { t: "done" }>;
export type StreamFailure = Extract<ExecutorToHost, { t: "res-error" }>["failure"];

/** Per-call options for bodies that stream. */
export interface CallStreams {
  /** A request body sent a chunk at a time, as the executor asks for it. */
  requestBody?: ReadableStream<Uint8Array>;
  /** The error a streamed response body fails with, from the executor's failure report. */
  failureToError?: (failure: StreamFailure) => Error;
}
/** A call's reply; when the run goes on after it (waitUntil), `done` settles when the run ends. */
export type ResultFrame = Extract<ExecutorToHost, { t: "result" }> & { done?: Promise<DoneFrame> };

export interface ExecutorLaunch {
  config: ExecutorConfig;
  /** V8 flags for the executor process (e.g. the Wasm memory ceiling). */
  v8Flags: string[];
}

const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const ENTRY = fileURLToPath(new URL(`./executor/main${ext}`, import.meta.url));

/**
 * The host's handle on one executor child process: sends call frames, matches result frames to
 * their callers, and fails every pending call with ExecutorCrashedError if the process dies.
 */
export class ExecutorProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private readonly pending = new Map<number, { resolve: (r: ResultFrame) => void; reject: (e: Error) => void }>();
  /** Calls that replied but whose run goes on (waitUntil), until their "done" frame. */
  private readonly running = new Map<number, { resolve: (r: DoneFrame) => void; reject: (e: Error) => void }>();
  /** Streamed request bodies being read, and streamed response bodies being filled, by call id. */
  private readonly requestBodies = new Map<number, ReadableStreamDefaultReader<Uint8Array>>();
  private readonly responseBodies = new Map<number, { controller: ReadableStreamDefaultController<Uint8Array>; pulled?: () => void; toError: (f: StreamFailure) => Error }>();
  private readonly streamOptions = new Map<number, CallStreams>();
  private nextCallId = 1;
  private readonly scripts = new ScriptsSent();
  /** Instances started here: counted toward recycling. */
  instancesStarted = 0;
  rssBytes = 0;
  /** Images with npm bundles evaluated that the executor had ready at its last reply. */
  packageImages = 0;
  /** Set once the executor reports an isolate it cannot free (see the "result" frame's `recycle`). */
  mustRecycle = false;
  /** When this executor should be done refilling its isolate pool (performance.now() time). */
  busyUntil = 0;
  draining = false;
  dead = false;
  /** How the executor prepares isolates: from the snapshot, or by evaluating the runtime. */
  runtime: "snapshot" | "evaluate" | undefined;
  /** Whether the OS let the executor raise its main thread above its guest threads (mainThreadBoost). */
  mainThreadRaised = false;
  onExit: (proc: ExecutorProcess, reason: string) => void = () => {};
  /** Called when a run that replied early has ended (so a draining executor may stop). */
  onSettled: (proc: ExecutorProcess) => void = () => {};

  constructor(launch: ExecutorLaunch) {
    this.child = fork(ENTRY, [JSON.stringify(launch.config)], {
      execArgv: ["--no-node-snapshot", ...launch.v8Flags],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once("message", (m: ExecutorToHost) => {
        if (m.t !== "ready") return reject(new Error("executor spoke before ready"));
        this.runtime = m.runtime;
        this.mainThreadRaised = m.mainThreadRaised;
        resolve();
      });
      this.child.once("exit", () => reject(new ExecutorCrashedError("Executor process exited during startup.")));
    });
    this.ready.catch(() => {});
    this.child.on("message", (m: ExecutorToHost) => this.onMessage(m));
    this.child.on("exit", (code, signal) => this.onProcessExit(code, signal));
    this.child.on("error", () => {}); // "exit" follows and carries the failure
  }

  get inFlight(): number {
    return this.pending.size + this.running.size;
  }

  get usable(): boolean {
    return !this.dead && !this.draining;
  }

  call(frame: Omit<Extract<HostToExecutor, { t: "call" }>, "callId">, streams: CallStreams = {}): Promise<ResultFrame> {
    if (this.dead) return Promise.reject(new ExecutorCrashedError("Executor process is gone."));
    const callId = this.nextCallId++;
    if (frame.worker) {
      this.instancesStarted++;
      const { spec, forget } = this.scripts.prepare(frame.worker);
      if (forget.length) this.child.send({ t: "forget-scripts", hashes: forget } satisfies HostToExecutor, () => {});
      frame = { ...frame, worker: spec };
    }
    if (streams.requestBody) this.requestBodies.set(callId, streams.requestBody.getReader());
    if (streams.requestBody || streams.failureToError) this.streamOptions.set(callId, streams);
    return new Promise((resolve, reject) => {
      this.pending.set(callId, { resolve, reject });
      this.child.send({ ...frame, callId } satisfies HostToExecutor, (err) => {
        if (err && this.pending.delete(callId)) reject(new ExecutorCrashedError(`Could not reach executor: ${err.message}`));
      });
    });
  }

  /** Runs a guest's capability call in the host and sends the envelope back. */
  private async answerCapability(m: Extract<ExecutorToHost, { t: "cap-call" }>): Promise<void> {
    const envelope = await callCapability(m.instanceId, m.capId, m.method, m.args);
    if (this.dead) return;
    try {
      this.child.send({ t: "cap-result", reqId: m.reqId, envelope } satisfies HostToExecutor, () => {});
    } catch (e) {
      // The host's answer could not be serialized (a function, a class instance's methods...).
      const error = { name: "DataCloneError", message: `The binding's result could not be cloned: ${(e as Error)?.message ?? e}` };
      this.child.send({ t: "cap-result", reqId: m.reqId, envelope: { ok: false, error } } satisfies HostToExecutor, () => {});
    }
  }

  /** Answers the executor's pull with the next chunk of a streamed request body. */
  private async sendRequestChunk(callId: number): Promise<void> {
    const reader = this.requestBodies.get(callId);
    if (!reader) return;
    try {
      const { done, value } = await reader.read();
      if (this.dead) return;
      if (done) {
        this.requestBodies.delete(callId);
        this.child.send({ t: "req-end", callId } satisfies HostToExecutor, () => {});
      } else {
        this.child.send({ t: "req-chunk", callId, data: value } satisfies HostToExecutor, () => {});
      }
    } catch (e) {
      this.requestBodies.delete(callId);
      if (!this.dead) this.child.send({ t: "req-error", callId, message: (e as Error)?.message ?? String(e) } satisfies HostToExecutor, () => {});
    }
  }

  /** A streamed response: its body becomes a host ReadableStream that pulls chunk by chunk. */
  private attachResponseBody(m: Extract<ExecutorToHost, { t: "result" }>): void {
    const value = m.outcome?.ok ? (m.outcome.value as { streamed?: boolean; bodyStream?: ReadableStream<Uint8Array> } | null) : null;
    if (!value?.streamed) return;
    const callId = m.callId;
    const toError = this.streamOptions.get(callId)?.failureToError ?? ((f: StreamFailure) => new Error(f.error.message));
    value.bodyStream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.responseBodies.set(callId, { controller, toError });
      },
      // One chunk of credit per read: the executor never runs ahead of the reader.
      pull: () => new Promise<void>((resolve) => {
        const r = this.responseBodies.get(callId);
        if (!r) return resolve();
        r.pulled = () => { r.pulled = undefined; resolve(); };
        this.child.send({ t: "res-pull", callId } satisfies HostToExecutor, () => {});
      }),
      cancel: () => {
        this.responseBodies.delete(callId);
        if (!this.dead) this.child.send({ t: "res-cancel", callId } satisfies HostToExecutor, () => {});
      },
    }, { highWaterMark: 0 });
  }

  disposeInstance(instanceId: number): void {
    if (!this.dead) this.child.send({ t: "dispose", instanceId } satisfies HostToExecutor, () => {});
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child.kill(signal);
  }

  private onMessage(m: ExecutorToHost): void {
    switch (m.t) {
      case "cap-call":
        return void this.answerCapability(m);
      case "req-pull":
        return void this.sendRequestChunk(m.callId);
      case "res-chunk": {
        const r = this.responseBodies.get(m.callId);
        r?.controller.enqueue(m.data);
        r?.pulled?.();
        return;
      }
      case "res-end":
      case "res-error": {
        const r = this.responseBodies.get(m.callId);
        this.responseBodies.delete(m.callId);
        if (m.t === "res-end") r?.controller.close();
        else r?.controller.error(r.toError(m.failure));
        r?.pulled?.();
        return;
      }
    }
    if (m.t === "done") {
      const r = this.running.get(m.callId);
      this.running.delete(m.callId);
      r?.resolve(m);
      this.onSettled(this);
      return;
    }
    if (m.t !== "result") return;
    this.rssBytes = m.rssBytes;
    this.packageImages = m.packageImages;
    if (m.recycle) this.mustRecycle = true;
    this.busyUntil = performance.now() + m.refillMs;
    const p = this.pending.get(m.callId);
    if (!p) return;
    this.pending.delete(m.callId);
    this.attachResponseBody(m);
    this.requestBodies.get(m.callId)?.cancel().catch(() => {});
    this.requestBodies.delete(m.callId);
    this.streamOptions.delete(m.callId);
    if (m.final) return p.resolve(m);
    const done = new Promise<DoneFrame>((resolve, reject) => this.running.set(m.callId, { resolve, reject }));
    done.catch(() => {});
    p.resolve({ ...m, done });
  }

  private onProcessExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.dead = true;
    const reason = signal ? `signal ${signal}` : `exit code ${code}`;
    const err = new ExecutorCrashedError(`The executor process running this worker died (${reason}); the worker's in-flight calls failed. Other workers are unaffected.`);
    for (const p of this.pending.values()) p.reject(err);
    for (const r of this.running.values()) r.reject(err);
    for (const r of this.responseBodies.values()) r.controller.error(err);
    for (const r of this.requestBodies.values()) r.cancel(err).catch(() => {});
    this.pending.clear();
    this.running.clear();
    this.responseBodies.clear();
    this.requestBodies.clear();
    this.onExit(this, reason);
  }
}
