import { buildSync } from "esbuild";
import { InvalidWorkerCodeError } from "../errors.ts";

/**
 * A worker file as one ES module: esbuild bundles the file with its relative imports (TypeScript
 * included), leaving `cloudflare:workers` to the runtime. What `mayfly run file.ts` loads.
 */
export function bundleWorkerFile(path: string): string {
  try {
    const out = buildSync({
      entryPoints: [path],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2023",
      external: ["cloudflare:workers"],
      logLevel: "silent",
    });
    return out.outputFiles[0]!.text;
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    throw new InvalidWorkerCodeError(`${where}${first?.text ?? (e as Error).message}`);
  }
}
