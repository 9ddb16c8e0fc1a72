/**
 * Bodies that stream across the isolate boundary, a chunk at a time, through the executor's body
 * service (engine/executor/body-streams.ts). Pull-driven on both sides: a request chunk is fetched
 * when the guest reads, a response chunk is sent when the host reader has room.
 */
import { callHost, startHostTask } from "./host-calls.ts";
import { streams } from "./streams.ts";

/** The request body of the call `key`, as a ReadableStream of bytes. */
export function incomingBody(key: number): ReadableStream<Uint8Array> {
  // The runtime's own class, not the global, which guest code may have replaced.
  const RS = streams().ReadableStream as unknown as typeof ReadableStream;
  return new RS<Uint8Array>({
    async pull(controller) {
      const chunk = await startHostTask<Uint8Array | null>("body", "read", key).promise;
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

/**
 * A large or unsized body a capability answered with (a fetch through a gateway or service): the host
 * holds it as a temporary capability and hands over one chunk per "read" call, as the guest pulls.
 */
export function capabilityBody(streamId: number): ReadableStream<Uint8Array> {
  const RS = streams().ReadableStream as unknown as typeof ReadableStream;
  const call = (method: string) => startHostTask<Uint8Array | null>("cap", "call", streamId, method, []).promise;
  return new RS<Uint8Array>({
    async pull(controller) {
      const chunk = await call("read");
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    },
    cancel: () => call("cancel").then(() => undefined),
  }, { highWaterMark: 0 });
}

/** Pumps a response body to the host; resolves when it has been sent whole, or failed. */
export async function sendBody(stream: ReadableStream<unknown>, key: number): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = toBytes(value);
      if (bytes.byteLength > 0) await startHostTask<void>("body", "write", key, bytes).promise;
    }
    callHost("body", "end", key);
  } catch (e) {
    const err = e as { name?: unknown; message?: unknown };
    try {
      callHost("body", "abort", key, typeof err?.name === "string" ? err.name : "TypeError", typeof err?.message === "string" ? err.message : String(e));
    } catch {
      // The call is already over (limit, cancel): nothing left to tell.
    }
    reader.cancel(e).catch(() => {});
  }
}

/** Fetch requires response body chunks to be Uint8Array; other views are accepted as Workers do. */
function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError("This ReadableStream did not return bytes.");
}
