import { buildSync } from "esbuild";
import { resolve } from "node:path";
import { InvalidWorkerCodeError } from "../errors.ts";

/**
 * A worker file as one ES module: esbuild bundles the file with its relative imports (TypeScript
 * included), leaving `cloudflare:workers` to the runtime. What `mayfly run file.ts` loads.
 */
export function bundleWorkerFile(path: string, options: BundleWorkerOptions = {}): string {
  return bundleWorker(path, options).code;
}

export interface BundleWorkerOptions {
  /**
   * npm packages the worker declares (its packageJson's dependencies): their imports stay bare, for
   * the loader to resolve from the registry and bundle (src/bundler/npm), not from the host's node_modules.
   */
  packages?: string[];
}

/** The bundle and the absolute paths of every file that went into it (what a watcher watches). */
export function bundleWorker(path: string, options: BundleWorkerOptions = {}): { code: string; inputs: string[] } {
  try {
    const out = buildSync({
      entryPoints: [path],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2023",
      external: ["cloudflare:workers", "mayfly:agents", ...(options.packages ?? []).flatMap((p) => [p, `${p}/*`])],
      logLevel: "silent",
      metafile: true,
    });
    const cwd = process.cwd();
    return { code: out.outputFiles[0]!.text, inputs: Object.keys(out.metafile!.inputs).map((p) => resolve(cwd, p)) };
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    throw new InvalidWorkerCodeError(`${where}${first?.text ?? (e as Error).message}`);
  }
}
