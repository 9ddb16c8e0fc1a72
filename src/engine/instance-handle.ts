import type { Invocation } from "../runtime/index.ts";
import { ExecutorCrashedError } from "../errors.ts";
import type { CallStreams, ResultFrame, ExecutorProcess } from "./executor-process.ts";
import type { WorkerSpec } from "./protocol.ts";
import type { Supervisor } from "./supervisor.ts";
import { registerCapabilities, unregisterCapabilities, type CapabilityLookup } from "./capability-router.ts";

let nextInstanceId = 1;

/**
 * The host's reference to one worker instance. It is placed on an executor at its first call (code and
 * first request travel in one frame) and re-placed, with a fresh isolate, after its isolate is ended
 * by a limit, its executor dies, or its executor is recycled.
 */
export class InstanceHandle {
  private readonly id = nextInstanceId++;
  private proc: ExecutorProcess | undefined;
  private placing: Promise<ExecutorProcess> | undefined;
  heapBytes = 0;
  lastUsed = Date.now();
  /** Calls in flight; an instance with any is never idle. */
  active = 0;

  private readonly supervisor: Supervisor;
  private readonly spec: WorkerSpec;

  constructor(supervisor: Supervisor, spec: WorkerSpec, capabilities?: CapabilityLookup) {
    this.supervisor = supervisor;
    this.spec = spec;
    if (capabilities) {
      this.capabilities = capabilities;
      registerCapabilities(this.id, capabilities);
    }
  }

  /** Kept so the router's weak reference to this worker's capabilities lives as long as the handle. */
  readonly capabilities: CapabilityLookup | undefined;

  /** The worker is gone for good: its isolate is freed and its capabilities can no longer be called. */
  close(): void {
    this.release();
    unregisterCapabilities(this.id);
  }

  get live(): boolean {
    return this.proc !== undefined && !this.proc.dead;
  }

  async call(invocation: Invocation, streams?: CallStreams): Promise<ResultFrame> {
    this.active++;
    const endRun = this.capabilities?.beginRun?.();
    try {
      const result = await this.callOnce(invocation, streams);
      // A run that replied early goes on (waitUntil, a streamed body) until `done`.
      if (endRun) void (result.done ? result.done.finally(endRun).catch(() => {}) : endRun());
      return result;
    } catch (e) {
      endRun?.();
      throw e;
    } finally {
      this.active--;
      this.lastUsed = Date.now();
    }
  }

  private async callOnce(invocation: Invocation, streams?: CallStreams): Promise<ResultFrame> {
    // A draining executor is left at the next call; a durable actor leaves it only between calls, so
    // that it never runs as two instances (one finishing on the old executor, one on the new).
    if (this.proc?.draining && !(this.spec.actor && this.active > 1)) this.release();
    let proc = this.proc;
    let worker: WorkerSpec | undefined;
    if (!proc || proc.dead) {
      if (!this.placing) {
        worker = this.spec;
        this.placing = this.supervisor.pick();
      }
      const placing = this.placing;
      try {
        proc = await placing;
      } finally {
        if (this.placing === placing && worker) this.placing = undefined;
      }
      if (worker) this.proc = proc;
    }
    try {
      const result = await proc.call({ t: "call", instanceId: this.id, worker, invocation }, streams);
      if (result.instanceGone && this.proc === proc) this.proc = undefined;
      this.heapBytes = result.stats.heapBytes;
      result.done?.then(
        (d) => { if (d.instanceGone && this.proc === proc) this.proc = undefined; },
        () => { if (this.proc === proc) this.proc = undefined; },
      );
      return result;
    } catch (e) {
      if (e instanceof ExecutorCrashedError && this.proc === proc) this.proc = undefined;
      throw e;
    } finally {
      this.supervisor.afterCall(proc);
    }
  }

  /** Frees the isolate; the handle stays usable and starts a fresh one on its next call. */
  release(): void {
    if (this.proc && !this.proc.dead) this.proc.disposeInstance(this.id);
    this.proc = undefined;
  }
}
