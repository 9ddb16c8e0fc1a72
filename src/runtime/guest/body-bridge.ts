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

/** Where pumpBytes sends a body: one call per chunk, then an end, or an abort on failure. */
interface ByteSink {
  write(bytes: Uint8Array): Promise<unknown>;
  close(): unknown;
  abort(error: unknown): void;
}

/** Reads `stream` to its end into `sink`; resolves when it has been sent whole, or failed. */
async function pumpBytes(stream: ReadableStream<unknown>, sink: ByteSink): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = toBytes(value);
      if (bytes.byteLength > 0) await sink.write(bytes);
    }
    await sink.close();
  } catch (e) {
    sink.abort(e);
    reader.cancel(e).catch(() => {});
  }
}

/** Writes a request body into a host sink (see capabilityBody for the other direction); failures abort it. */
export function sendToCapability(stream: ReadableStream<unknown>, sinkId: number): Promise<void> {
  const call = (method: string, ...args: unknown[]) => startHostTask<null>("cap", "call", sinkId, method, args).promise;
  return pumpBytes(stream, {
    write: (bytes) => call("write", bytes),
    close: () => call("close"),
    abort: (e) => void call("abort", (e as Error)?.message ?? String(e)).catch(() => {}),
  });
}

/** Pumps a response body to the host; resolves when it has been sent whole, or failed. */
export function sendBody(stream: ReadableStream<unknown>, key: number): Promise<void> {
  return pumpBytes(stream, {
    write: (bytes) => startHostTask<void>("body", "write", key, bytes).promise,
    close: () => callHost("body", "end", key),
    abort: (e) => {
      const err = e as { name?: unknown; message?: unknown };
      try {
        callHost("body", "abort", key, typeof err?.name === "string" ? err.name : "TypeError", typeof err?.message === "string" ? err.message : String(e));
      } catch {
        // The call is already over (limit, cancel): nothing left to tell.
      }
    },
  });
}

/** Fetch requires response body chunks to be Uint8Array; other views are accepted as Workers do. */
function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError("This ReadableStream did not return bytes.");
}
