import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ExecutorCrashedError } from "../errors.ts";
import type { ExecutorToHost, HostToExecutor } from "./protocol.ts";
import type { ExecutorConfig } from "./executor/main.ts";

export type DoneFrame = Extract<ExecutorToHost, { t: "done" }>;
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
  private nextCallId = 1;
  /** Instances started here: counted toward recycling. */
  instancesStarted = 0;
  rssBytes = 0;
  /** When this executor should be done refilling its isolate pool (performance.now() time). */
  busyUntil = 0;
  draining = false;
  dead = false;
  /** How the executor prepares isolates: from the snapshot, or by evaluating the runtime. */
  runtime: "snapshot" | "evaluate" | undefined;
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

  call(frame: Omit<Extract<HostToExecutor, { t: "call" }>, "callId">): Promise<ResultFrame> {
    if (this.dead) return Promise.reject(new ExecutorCrashedError("Executor process is gone."));
    const callId = this.nextCallId++;
    if (frame.worker) this.instancesStarted++;
    return new Promise((resolve, reject) => {
      this.pending.set(callId, { resolve, reject });
      this.child.send({ ...frame, callId } satisfies HostToExecutor, (err) => {
        if (err && this.pending.delete(callId)) reject(new ExecutorCrashedError(`Could not reach executor: ${err.message}`));
      });
    });
  }

  disposeInstance(instanceId: number): void {
    if (!this.dead) this.child.send({ t: "dispose", instanceId } satisfies HostToExecutor, () => {});
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child.kill(signal);
  }

  private onMessage(m: ExecutorToHost): void {
    if (m.t === "done") {
      const r = this.running.get(m.callId);
      this.running.delete(m.callId);
      r?.resolve(m);
      this.onSettled(this);
      return;
    }
    if (m.t !== "result") return;
    this.rssBytes = m.rssBytes;
    this.busyUntil = performance.now() + m.refillMs;
    const p = this.pending.get(m.callId);
    if (!p) return;
    this.pending.delete(m.callId);
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
    this.pending.clear();
    this.running.clear();
    this.onExit(this, reason);
  }
}
