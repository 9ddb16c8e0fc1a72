/**
 * The warm-up of a package image: the worker's own module graph, bundled into one classic script that
 * the image builder runs in V8's throwaway warm-up context (image-builder.ts). Its top-level code calls
 * into the packages (`z.object(...)`), so V8 compiles those package functions there, and the snapshot
 * keeps their bytecode; every isolate made from the image then skips compiling them (~2.7 ms for a
 * zod schema in a fresh isolate). Nothing the code leaves behind is kept: V8 snapshots the context as
 * it was before the warm-up and only adds compiled code, so no state of this worker reaches another
 * worker using the same packages. Worker code never runs in the builder otherwise.
 */
import { build, type Plugin } from "esbuild";
import type { NormalizedModule } from "../../loader/worker-code.ts";
import { BUILTIN_MODULES, moduleSource, resolveSpecifier } from "./modules.ts";

/**
 * The worker's graph (its modules, the bundle's scripts left out: they are in the image already) as a
 * script whose errors are swallowed, or undefined when it cannot be one.
 */
export async function warmUpScript(mainModule: string, modules: readonly Pick<NormalizedModule, "name" | "type" | "content">[]): Promise<string | undefined> {
  // Only what is plain source: a CommonJS, data or Wasm module needs the runtime's per-run setup.
  if (modules.some((m) => m.type !== "esm" && m.type !== "text" && m.type !== "json")) return undefined;
  const byName = new Map(modules.map((m) => [m.name, m]));
  const names = new Set(byName.keys());
  const graph: Plugin = {
    name: "worker-graph",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        const from = args.importer || mainModule;
        const target = args.kind === "entry-point" ? mainModule : resolveSpecifier(args.path, from, names);
        return target ? { path: target, namespace: "worker" } : { errors: [{ text: `unresolved ${args.path}` }] };
      });
      build.onLoad({ filter: /.*/, namespace: "worker" }, (args) => ({
        contents: BUILTIN_MODULES[args.path] ?? moduleSource(byName.get(args.path) as NormalizedModule),
        loader: "js",
      }));
    },
  };
  try {
    const out = await build({
      entryPoints: [mainModule], bundle: true, write: false, format: "iife", platform: "neutral",
      target: "es2023", logLevel: "silent", plugins: [graph],
    });
    return `try {\n${out.outputFiles[0]!.text}\n} catch {}`;
  } catch {
    return undefined; // top-level await, syntax esbuild refuses: no warm-up, the image still helps
  }
}
