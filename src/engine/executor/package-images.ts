import type { WorkerSpec } from "../protocol.ts";
import { IsolatePool, type FreshIsolate } from "./isolate-pool.ts";
import type { SnapshotImage } from "./runtime-image.ts";

/**
 * Isolate images with a worker's npm packages already evaluated, one per dependency set (the hash of
 * its npm bundle), each with a small pool of isolates. Evaluating zod alone took ~5 ms in every fresh
 * isolate even from a code cache; restored from an image, the packages' objects are simply there.
 *
 * An image is built only for a bundle that has already run to completion in an ordinary isolate under
 * the worker's limits (so a package whose top-level code loops or fails never reaches the builder),
 * and the build itself runs in a separate process with a deadline (image-builder.ts): snapshot
 * creation has no timeout of its own and would otherwise hold this executor's thread.
 * Every isolate restored from one image starts with the same package state: whatever a package
 * computed at load time (a random seed, say) is identical in each, as it is in each request of one
 * warm Cloudflare isolate. The worker's own code never runs in the builder.
 */
export interface PackageImageOptions {
  /**
   * Builds the image for a bundle, or fails; called at most once per bundle hash. `worker` is the
   * worker that triggered it: its top-level code warms the image (only compiled code is kept).
   */
  build(scripts: { code: string; filename: string }[], worker: Pick<WorkerSpec, "mainModule" | "modules">): Promise<SnapshotImage>;
  /** Runs to completion of one bundle in ordinary isolates before its image is built. */
  afterRuns: number;
  /** Isolates kept ready per image. */
  poolSize: number;
  /** Images kept; the least recently used goes first. */
  maxImages: number;
  log?: (message: string) => void;
}

type Entry =
  | { state: "seen"; runs: number }
  | { state: "building" }
  | { state: "failed" }
  | { state: "ready"; pool: IsolatePool };

/** Bundles seen fewer than afterRuns times that are remembered; the oldest are forgotten past it. */
const MAX_SEEN = 256;

export class PackageImages {
  private readonly entries = new Map<string, Entry>();
  private readonly options: PackageImageOptions | undefined;

  /** Without options, images are off: take() never finds one. */
  constructor(options?: PackageImageOptions) {
    this.options = options;
  }

  /** A fresh isolate with this worker's packages in it, when an image for them is ready. */
  take(spec: WorkerSpec): FreshIsolate | undefined {
    const key = keyOf(spec);
    const entry = key ? this.entries.get(key) : undefined;
    if (!key || entry?.state !== "ready") return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry); // most recently used last
    return entry.pool.take(spec.limits.memoryMb);
  }

  /**
   * The worker's bundle ran to completion in an ordinary isolate: build its image, off the request
   * path, if none exists or is being built.
   */
  noteEvaluated(spec: WorkerSpec): void {
    const options = this.options;
    const key = keyOf(spec);
    if (!key || !options) return;
    const entry = this.entries.get(key) ?? { state: "seen", runs: 0 };
    if (entry.state !== "seen") return;
    entry.runs++;
    this.entries.set(key, entry);
    if (entry.runs < options.afterRuns) return this.forgetSeen();
    this.entries.set(key, { state: "building" });
    const scripts = spec.modules.filter((m) => m.type === "script").map((m) => ({ code: m.content as string, filename: m.name }));
    options.build(scripts, { mainModule: spec.mainModule, modules: spec.modules.filter((m) => m.type !== "script") }).then(
      (image) => {
        if (this.entries.get(key)?.state !== "building") return;
        const pool = new IsolatePool(image, options.poolSize, spec.limits.memoryMb, key);
        this.entries.set(key, { state: "ready", pool });
        pool.refillSoon();
        this.evict();
      },
      (error: Error) => {
        this.entries.set(key, { state: "failed" });
        options.log?.(`npm bundle image not built, its packages are evaluated per isolate: ${error?.message ?? error}`);
      },
    );
  }

  refillSoon(): void {
    for (const e of this.entries.values()) if (e.state === "ready") e.pool.refillSoon();
  }

  refillMsAhead(): number {
    let ms = 0;
    for (const e of this.entries.values()) if (e.state === "ready") ms += e.pool.refillMsAhead();
    return ms;
  }

  /** Images ready to serve. */
  get ready(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.state === "ready") n++;
    return n;
  }

  get tainted(): boolean {
    for (const e of this.entries.values()) if (e.state === "ready" && e.pool.tainted) return true;
    return false;
  }

  dispose(): void {
    for (const e of this.entries.values()) if (e.state === "ready") e.pool.dispose();
    this.entries.clear();
  }

  private forgetSeen(): void {
    if (this.entries.size <= MAX_SEEN) return;
    for (const key of this.oldest("seen", MAX_SEEN)) this.entries.delete(key);
  }

  /** Past maxImages, the least recently used images go (take() moves an image to the end). */
  private evict(): void {
    for (const key of this.oldest("ready", this.options?.maxImages ?? 0)) {
      const e = this.entries.get(key);
      if (e?.state === "ready") e.pool.dispose();
      this.entries.delete(key);
    }
  }

  /** The keys in `state` beyond the newest `keep`, oldest first. */
  private oldest(state: Entry["state"], keep: number): string[] {
    const keys = [...this.entries].filter(([, e]) => e.state === state).map(([k]) => k);
    return keys.slice(0, Math.max(0, keys.length - keep));
  }
}

/** The key of a worker's packages: the hashes of its scripts (the npm bundle), or none. */
export function keyOf(spec: WorkerSpec): string | undefined {
  const scripts = spec.modules.filter((m) => m.type === "script");
  if (scripts.length === 0 || scripts.some((m) => !m.hash)) return undefined;
  return scripts.map((m) => m.hash).join("+");
}
