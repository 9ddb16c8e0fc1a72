/**
 * Request and response bodies that stream between the host and an isolate, a chunk at a time, so a
 * 100 MB body never sits whole in any process. Flow control is by pull: the executor asks the host
 * for each request chunk (req-pull), and the host grants one response chunk per read (res-pull).
 * Each stream is named by its call id and usable only by the isolate that serves that call.
 */
import type { ExecutorToHost, FailureKind } from "../protocol.ts";

interface CallBodies {
  owner: object;
  /** Request side. */
  reqQueue: Uint8Array[];
  reqEnded: boolean;
  reqError: string | undefined;
  reqWaiter: (() => void) | undefined;
  reqPulled: boolean;
  /** Response side. */
  resCredit: number;
  resWaiter: (() => void) | undefined;
  resBytes: number;
  resLimit: number;
  resCancelled: boolean;
  resClosed: boolean;
}

export class OutputExceeded extends Error {}

export class BodyStreams {
  private readonly calls = new Map<number, CallBodies>();
  private send: (m: ExecutorToHost) => void = () => {};
  /** Called when a response body passes its output limit: the executor ends that run. */
  onOutputExceeded: (callId: number) => void = () => {};

  configure(send: (m: ExecutorToHost) => void): void {
    this.send = send;
  }

  /** Registers a call's bodies, owned by one isolate's services (`owner`). */
  open(callId: number, owner: object, outputLimit: number): void {
    this.calls.set(callId, {
      owner, reqQueue: [], reqEnded: false, reqError: undefined, reqWaiter: undefined, reqPulled: false,
      resCredit: 0, resWaiter: undefined, resBytes: 0, resLimit: outputLimit, resCancelled: false, resClosed: false,
    });
  }

  /** Forgets a call; a response still open is failed with `failure` (or ended, if none). */
  close(callId: number, failure?: { kind: FailureKind; error: { name: string; message: string }; detail?: string }): void {
    const c = this.calls.get(callId);
    if (!c) return;
    this.calls.delete(callId);
    if (!c.resClosed && failure) this.send({ t: "res-error", callId, failure });
    c.reqWaiter?.();
    c.resWaiter?.();
  }

  /** Whether the response of `callId` is still streaming (the run stays alive meanwhile). */
  streaming(callId: number): boolean {
    const c = this.calls.get(callId);
    return !!c && !c.resClosed && !c.resCancelled;
  }

  // -- frames from the host --
  requestChunk(callId: number, data: Uint8Array): void {
    const c = this.calls.get(callId);
    if (!c) return;
    c.reqPulled = false;
    c.reqQueue.push(data);
    c.reqWaiter?.();
  }
  requestEnd(callId: number, error?: string): void {
    const c = this.calls.get(callId);
    if (!c) return;
    c.reqEnded = true;
    c.reqError = error;
    c.reqWaiter?.();
  }
  responsePull(callId: number): void {
    const c = this.calls.get(callId);
    if (!c) return;
    c.resCredit++;
    c.resWaiter?.();
  }
  responseCancel(callId: number): void {
    const c = this.calls.get(callId);
    if (!c) return;
    c.resCancelled = true;
    c.resWaiter?.();
  }

  // -- calls from the guest, through the "body" host service --
  /** The next request chunk, or null at the end. */
  async read(owner: object, callId: number): Promise<Uint8Array | null> {
    const c = this.owned(owner, callId);
    for (;;) {
      const chunk = c.reqQueue.shift();
      if (chunk) return chunk;
      if (c.reqError !== undefined) throw Object.assign(new Error(c.reqError), { name: "TypeError" });
      if (c.reqEnded) return null;
      if (!c.reqPulled) {
        c.reqPulled = true;
        this.send({ t: "req-pull", callId });
      }
      await new Promise<void>((r) => (c.reqWaiter = r));
      c.reqWaiter = undefined;
      if (!this.calls.has(callId)) return null;
    }
  }

  /** Sends one response chunk once the host has room for it. */
  async write(owner: object, callId: number, data: Uint8Array): Promise<void> {
    const c = this.owned(owner, callId);
    while (c.resCredit === 0 && !c.resCancelled && this.calls.has(callId)) {
      await new Promise<void>((r) => (c.resWaiter = r));
      c.resWaiter = undefined;
    }
    if (c.resCancelled || !this.calls.has(callId)) throw Object.assign(new Error("The response body was cancelled by its reader."), { name: "TypeError" });
    c.resBytes += data.byteLength;
    if (c.resBytes > c.resLimit) {
      this.onOutputExceeded(callId);
      throw new OutputExceeded("output limit");
    }
    c.resCredit--;
    this.send({ t: "res-chunk", callId, data });
  }

  end(owner: object, callId: number): void {
    const c = this.owned(owner, callId);
    if (c.resClosed) return;
    c.resClosed = true;
    this.send({ t: "res-end", callId });
  }

  abort(owner: object, callId: number, error: { name: string; message: string }): void {
    const c = this.owned(owner, callId);
    if (c.resClosed) return;
    c.resClosed = true;
    this.send({ t: "res-error", callId, failure: { kind: "stream", error } });
  }

  private owned(owner: object, callId: number): CallBodies {
    const c = this.calls.get(callId);
    // A guest can only name streams of calls its own isolate serves.
    if (!c || c.owner !== owner) throw Object.assign(new Error("No such body stream."), { name: "TypeError" });
    return c;
  }
}

export const bodies = new BodyStreams();
