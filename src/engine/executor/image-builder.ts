/**
 * Builds an isolate image (a V8 snapshot: the runtime plus a worker's npm bundle, evaluated) in a
 * short-lived child process of the executor, under a deadline.
 *
 * Why a process: V8's snapshot creator runs the scripts with no timeout and no memory limit, on the
 * thread that calls it. A package whose top-level code behaves while it runs in a request (where the
 * bundle has already completed once, under the worker's limits) but loops or allocates without end
 * while it is being imaged would otherwise hold or kill the executor and every tenant on it. Here the
 * worst case is a killed builder and a bundle that keeps being evaluated per isolate.
 * The child runs with the executor's own V8 flags: V8 refuses a snapshot made under other flags.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import ivm from "isolated-vm";
import { SnapshotImage } from "./runtime-image.ts";
import { warmUpScript } from "./image-warm-up.ts";
import type { WorkerSpec } from "../protocol.ts";

/**
 * The runtime, the bundle's scripts, and the worker whose top-level code warms the image (its modules
 * without those scripts; image-warm-up.ts).
 */
interface BuildRequest { runtime: string; scripts: { code: string; filename: string }[]; worker: Pick<WorkerSpec, "mainModule" | "modules"> }
type BuildReply = { ok: true; blob: Uint8Array } | { ok: false; message: string };

const ENTRY = fileURLToPath(import.meta.url);

/** In the executor: builds the image in a child, resolving to it or rejecting past `deadlineMs`. */
export function buildImageInChild(runtime: string, scripts: BuildRequest["scripts"], worker: BuildRequest["worker"], deadlineMs: number, memoryMb = 512): Promise<SnapshotImage> {
  return new Promise((resolve, reject) => {
    const child = fork(ENTRY, [], {
      execArgv: [...process.execArgv.filter((a) => !a.startsWith("--max-old-space-size")), `--max-old-space-size=${memoryMb}`],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "ignore", "ipc"],
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`building the image took longer than ${deadlineMs} ms`));
    }, deadlineMs);
    child.once("message", (reply: BuildReply) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      if (!reply.ok) return reject(new Error(reply.message));
      try {
        const copy = new ivm.ExternalCopy(reply.blob.buffer.slice(reply.blob.byteOffset, reply.blob.byteOffset + reply.blob.byteLength) as ArrayBuffer);
        resolve(new SnapshotImage(copy));
      } catch (e) {
        reject(e);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the image builder exited (${signal ?? code})`));
    });
    child.send({ runtime, scripts, worker } satisfies BuildRequest);
  });
}

/** In the child: build, answer once, and leave. */
function serve(): void {
  process.once("message", async (req: BuildRequest) => {
    let reply: BuildReply;
    try {
      const warmUp = await warmUpScript(req.worker.mainModule, req.worker.modules);
      const blob = SnapshotImage.create(req.runtime, req.scripts, warmUp);
      reply = { ok: true, blob: new Uint8Array(blob.copy()) };
    } catch (e) {
      reply = { ok: false, message: (e as Error)?.message ?? String(e) };
    }
    process.send!(reply, () => process.exit(0));
  });
}

if (process.argv[1] === ENTRY && process.send) serve();
