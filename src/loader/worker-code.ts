import { z } from "zod";
import { InvalidWorkerCodeError } from "../errors.ts";
import type { Limits } from "../engine/limits.ts";
import { isTail, type Tail } from "../bindings/tails/index.ts";

/** One module's source, as in Cloudflare's Worker Loader API. */
export type ModuleSource =
  | string
  | { js: string }
  | { cjs: string }
  | { text: string }
  | { data: Uint8Array | ArrayBuffer }
  | { json: unknown }
  | { wasm: Uint8Array | ArrayBuffer };

/** The code and configuration of one dynamic worker (Cloudflare's `WorkerCode`). */
export interface WorkerCode {
  compatibilityDate: string;
  compatibilityFlags?: string[];
  mainModule: string;
  modules: Record<string, ModuleSource>;
  /** Plain data (by structured clone) and bindings: rpc(...), a fetcher, another worker's entrypoint. */
  env?: Record<string, unknown>;
  /**
   * `null` (the default): the worker has no network at all. Or a gateway every global `fetch()` goes
   * to: any object with a `fetch(request)` method, or another worker's entrypoint.
   */
  globalOutbound?: null | { fetch(request: Request): Promise<Response> | Response };
  limits?: Partial<Limits>;
  /** Receive a TailEvent after each run: host callbacks, objects with tail(events), or worker entrypoints. */
  tails?: Tail[];
  /**
   * npm dependencies (`{ dependencies: { zod: "^4" } }`), resolved and bundled on the host before the
   * first call; the loader must be granted npm (`new WorkerLoader({ npm })`). The worker imports them by name.
   */
  packageJson?: { dependencies?: Record<string, string> };
  /** A package-lock.json (object or text; npm's, or the one a previous load reported): installed exactly. */
  lockfile?: unknown;
  /** Type-check the worker's TypeScript modules before the first call; errors arrive as TypeCheckError. */
  typecheck?: boolean;
}

/**
 * A module's kind. "script" is mayfly's own: a classic script run before the module graph (the npm
 * bundle of a worker's dependencies, see bundler/npm); a worker's own code cannot be one.
 */
export type ModuleType = "esm" | "cjs" | "text" | "data" | "json" | "wasm" | "script";

/** A module after validation: one type, its content in the form the executor needs. */
export interface NormalizedModule {
  name: string;
  type: ModuleType;
  /** Source text for esm/cjs/text/script, JSON text for json, bytes for data/wasm. */
  content: string | Uint8Array;
  /** The content's hash, for a script: the key of its V8 code cache in the executors. */
  hash?: string;
}

const bytes = z.custom<Uint8Array | ArrayBuffer>(
  (v) => v instanceof Uint8Array || v instanceof ArrayBuffer,
  { message: "expected a Uint8Array or ArrayBuffer" },
);

export const limitsSchema = z.strictObject({
  cpuMs: z.number().positive().optional(),
  memoryMb: z.number().positive().optional(),
  wallMs: z.number().positive().optional(),
  subRequests: z.number().int().nonnegative().optional(),
  outputBytes: z.number().int().positive().optional(),
  logBytes: z.number().int().nonnegative().optional(),
});

const workerCodeSchema = z.object({
  compatibilityDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date like 2025-06-01"),
  compatibilityFlags: z.array(z.string()).optional(),
  mainModule: z.string({ error: "WorkerCode.mainModule is required" }).min(1),
  modules: z.record(z.string(), z.unknown()),
  env: z.record(z.string(), z.unknown()).optional(),
  globalOutbound: z.union([
    z.null(),
    z.custom<{ fetch(request: Request): Promise<Response> }>((v) => typeof (v as { fetch?: unknown } | null)?.fetch === "function", {
      message: "globalOutbound must be null or an object with a fetch(request) method",
    }),
  ]).optional(),
  limits: limitsSchema.optional(),
  tails: z.array(z.custom<Tail>(isTail, { message: "a tail is a function, an object with tail(events), or a worker entrypoint" })).optional(),
  // Other package.json fields (name, version, scripts...) are accepted and ignored: scripts never run.
  packageJson: z.looseObject({ dependencies: z.record(z.string(), z.string()).optional() }).optional(),
  lockfile: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  typecheck: z.boolean().optional(),
});

const MODULE_KEYS = ["js", "cjs", "text", "data", "json", "wasm"] as const;

/**
 * Checks a WorkerCode and turns its modules into one list of typed entries.
 * Throws InvalidWorkerCodeError with a message that names the offending field.
 */
export function normalizeWorkerCode(code: unknown): { code: WorkerCode; modules: NormalizedModule[] } {
  const parsed = workerCodeSchema.safeParse(code);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `WorkerCode.${issue.path.join(".")}: ` : "";
    throw new InvalidWorkerCodeError(`${where}${issue.message}`);
  }
  const wc = parsed.data as WorkerCode;
  const names = Object.keys(wc.modules);
  if (names.length === 0) throw new InvalidWorkerCodeError("WorkerCode.modules must contain at least one module.");
  if (!(wc.mainModule in wc.modules)) {
    throw new InvalidWorkerCodeError(`The main module "${wc.mainModule}" is not among WorkerCode.modules (${names.join(", ")}).`);
  }
  const modules = names.map((name) => normalizeModule(name, wc.modules[name]));
  const main = modules.find((m) => m.name === wc.mainModule)!;
  if (main.type !== "esm" && main.type !== "cjs") {
    throw new InvalidWorkerCodeError(`The main module "${wc.mainModule}" must be a JavaScript or TypeScript module, not ${main.type}.`);
  }
  return { code: wc, modules };
}

function normalizeModule(name: string, src: unknown): NormalizedModule {
  if (name.startsWith("/") || name.split("/").some((p) => p === ".." || p === "." || p === "")) {
    throw new InvalidWorkerCodeError(`Module name "${name}" must be a relative path without "." or ".." segments.`);
  }
  if (typeof src === "string") {
    if (!/\.(m?js|ts|mts)$/.test(name)) {
      throw new InvalidWorkerCodeError(`Module "${name}" is given as a string, which is only allowed for .js, .mjs and .ts modules; use { text }, { json }, { data } or { wasm } for others.`);
    }
    return { name, type: "esm", content: src };
  }
  if (typeof src !== "object" || src === null) {
    throw new InvalidWorkerCodeError(`Module "${name}" must be a string or an object with exactly one of ${MODULE_KEYS.join(", ")}.`);
  }
  const keys = Object.keys(src).filter((k) => (MODULE_KEYS as readonly string[]).includes(k));
  const extra = Object.keys(src).filter((k) => !(MODULE_KEYS as readonly string[]).includes(k));
  if (keys.length !== 1 || extra.length > 0) {
    throw new InvalidWorkerCodeError(`Module "${name}" must have exactly one of ${MODULE_KEYS.join(", ")}; it has ${Object.keys(src).join(", ") || "none"}.`);
  }
  const key = keys[0] as (typeof MODULE_KEYS)[number];
  const value = (src as Record<string, unknown>)[key];
  switch (key) {
    case "js":
    case "cjs":
    case "text":
      if (typeof value !== "string") throw new InvalidWorkerCodeError(`Module "${name}": { ${key} } must be a string.`);
      return { name, type: key === "js" ? "esm" : key, content: value };
    case "json":
      try {
        const text = JSON.stringify(value);
        if (text === undefined) throw new Error("not JSON-serializable");
        return { name, type: "json", content: text };
      } catch (e) {
        throw new InvalidWorkerCodeError(`Module "${name}": { json } value cannot be serialized: ${(e as Error).message}`);
      }
    case "data":
    case "wasm": {
      const parsed = bytes.safeParse(value);
      if (!parsed.success) throw new InvalidWorkerCodeError(`Module "${name}": { ${key} } must be a Uint8Array or ArrayBuffer.`);
      const u8 = parsed.data instanceof Uint8Array ? parsed.data : new Uint8Array(parsed.data);
      if (key === "wasm" && !WebAssembly.validate(u8 as Uint8Array<ArrayBuffer>)) {
        throw new InvalidWorkerCodeError(`Module "${name}": { wasm } is not a valid WebAssembly module.`);
      }
      return { name, type: key, content: new Uint8Array(u8) };
    }
  }
}
