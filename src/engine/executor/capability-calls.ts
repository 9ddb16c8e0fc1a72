/**
 * The executor's side of capability calls: forwards a guest's call to the host (cap-call) and settles
 * it with the host's envelope (cap-result). The instance id comes from the calling isolate's own
 * service state, never from the guest.
 */
import type { CapEnvelope, ExecutorToHost } from "../protocol.ts";

export class CapabilityCalls {
  private readonly pending = new Map<number, (envelope: CapEnvelope) => void>();
  private nextReqId = 1;
  private send: (m: ExecutorToHost) => void = () => {};

  configure(send: (m: ExecutorToHost) => void): void {
    this.send = send;
  }

  async request(instanceId: number, capId: number, method: string, args: unknown[]): Promise<unknown> {
    const reqId = this.nextReqId++;
    const envelope = await new Promise<CapEnvelope>((resolve) => {
      this.pending.set(reqId, resolve);
      this.send({ t: "cap-call", reqId, instanceId, capId, method, args });
    });
    if (envelope.ok) return envelope.value;
    throw Object.assign(new Error(envelope.error.message), { name: envelope.error.name });
  }

  answer(reqId: number, envelope: CapEnvelope): void {
    const resolve = this.pending.get(reqId);
    this.pending.delete(reqId);
    resolve?.(envelope);
  }
}

export const capabilityCalls = new CapabilityCalls();
