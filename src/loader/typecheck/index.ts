import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { TypeCheckError, type TypeCheckDiagnostic } from "../../errors.ts";
import type { NormalizedModule } from "../worker-code.ts";
import type { CheckJob } from "./thread.ts";

export interface TypecheckOptions {
  /** The installed npm packages, whose types the worker's imports of them are checked against. */
  installDir?: string;
  /** A check still running after this long is ended (default 30 s). */
  timeoutMs?: number;
}

const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const THREAD = fileURLToPath(new URL(`./thread${ext}`, import.meta.url));
/** The checker's heap: enough for large packages' types, a ceiling for a type-level bomb. */
const MAX_HEAP_MB = 1024;

/**
 * Checks run one at a time in one checker thread, started on the first `typecheck: true` and kept
 * (TypeScript and its parsed libs stay loaded, so later checks take milliseconds, not a second).
 */
let thread: Worker | undefined;
let queue: Promise<unknown> = Promise.resolve();
let nextId = 1;

/**
 * Type-checks a worker's TypeScript modules (see check.ts) off the host's event loop. Throws
 * TypeCheckError with each diagnostic as `file:line:col`, or when the check runs past its time or memory.
 */
export function typecheckWorker(modules: readonly NormalizedModule[], opts: TypecheckOptions = {}): Promise<void> {
  const run = queue.then(() => runCheck(modules, opts));
  queue = run.catch(() => {});
  return run;
}

function runCheck(modules: readonly NormalizedModule[], opts: TypecheckOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const t = (thread ??= startThread());
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      t.off("message", onMessage);
      t.off("exit", onExit);
      t.unref();
    };
    const onMessage = (m: { id: number; diagnostics?: TypeCheckDiagnostic[]; error?: string }) => {
      if (m.id !== id) return;
      done();
      if (m.error) reject(new TypeCheckError([], `The type checker failed: ${m.error}`));
      else if (m.diagnostics!.length) reject(new TypeCheckError(m.diagnostics!));
      else resolve();
    };
    const onExit = () => {
      done();
      if (thread === t) thread = undefined;
      reject(new TypeCheckError([], `The type checker ran out of memory (${MAX_HEAP_MB} MB) checking this worker.`));
    };
    const timer = setTimeout(() => {
      done();
      if (thread === t) thread = undefined;
      void t.terminate();
      reject(new TypeCheckError([], `Type-checking did not finish within ${timeoutMs} ms.`));
    }, timeoutMs);
    t.on("message", onMessage);
    t.on("exit", onExit);
    t.ref();
    t.postMessage({ id, modules: [...modules], installDir: opts.installDir } satisfies CheckJob);
  });
}

function startThread(): Worker {
  const t = new Worker(THREAD, { resourceLimits: { maxOldGenerationSizeMb: MAX_HEAP_MB } });
  t.on("error", () => {}); // an out-of-memory arrives as "exit", handled by the waiting check
  t.unref();
  return t;
}
