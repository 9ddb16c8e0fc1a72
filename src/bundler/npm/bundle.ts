import { build, type Metafile, type Plugin } from "esbuild";
import { createHash } from "node:crypto";
import { relative } from "node:path";
import { realpathSync } from "node:fs";
import { builtinModules } from "node:module";
import { NodeBuiltinImportError, PackageBundleError } from "../../errors.ts";
import type { NormalizedModule } from "../../loader/worker-code.ts";
import { resolveSpecifier } from "../../engine/executor/modules.ts";
import { packageOfSpecifier } from "./lockfile.ts";
import type { Taken } from "./imports.ts";

/**
 * The bare specifiers (`zod`, `date-fns/format`) the worker's JavaScript and TypeScript modules import
 * that name one of its dependencies and are not one of its own modules. esbuild parses each module
 * (imports, dynamic imports with a literal, require() calls); nothing is followed or bundled here.
 */
export async function importedPackages(modules: readonly NormalizedModule[], dependencies: readonly string[]): Promise<string[]> {
  const names = new Set(modules.map((m) => m.name));
  const code = modules.filter((m) => m.type === "esm" || m.type === "cjs");
  if (code.length === 0) return [];
  const found = new Set<string>();
  const scan: Plugin = {
    name: "mayfly-scan",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === "entry-point") return { path: args.path, namespace: "worker" };
        if (!/^[./]/.test(args.path) && !args.path.includes(":") && !resolveSpecifier(args.path, args.importer, names)
          && dependencies.includes(packageOfSpecifier(args.path))) found.add(args.path);
        return { path: args.path, external: true };
      });
      b.onLoad({ filter: /.*/, namespace: "worker" }, (args) => {
        const m = code.find((c) => c.name === args.path)!;
        return { contents: m.content as string, loader: /\.m?ts$/.test(m.name) ? "ts" : "js" };
      });
    },
  };
  try {
    await build({ entryPoints: code.map((m, i) => ({ in: m.name, out: `m${i}` })), bundle: true, write: false, outdir: "/scan", format: "esm", logLevel: "silent", plugins: [scan] });
  } catch (e) {
    // A syntax error in the worker's own code is reported by the loader as it always was; here it only
    // means no package imports were found in that module.
    void e;
  }
  return [...found].sort();
}

export interface PackageBundle {
  /** The script holding the packages, and one small ES module per imported specifier (named so the worker's import finds it). */
  modules: NormalizedModule[];
  /** Bytes of each package's files in the output, by package name. */
  bytesByPackage: Record<string, number>;
  bytes: number;
}

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** Marks the plugin's own resolve() calls, which must not re-enter it. */
const SKIP = Symbol("mayfly-builtin-probe");

/**
 * Bundles the imported specifiers from the installed tree for the worker. A first esbuild build, one
 * ES entry per specifier, is read only for its metafile: the import chains (no Node built-in may be
 * reached) and each entry's export names. The packages themselves go into one script (bundleScript),
 * and each specifier gets a module of the same name (`zod` → `zod.js`, found by the worker's bare
 * import) reading its exports from it. Resolution follows the conditions a Workers bundler uses
 * (workerd, worker, browser), so packages pick their web builds.
 */
export async function bundlePackages(installDir: string, specifiers: readonly string[], taken: ReadonlyMap<string, Taken>, workerNames: ReadonlySet<string>): Promise<PackageBundle> {
  if (specifiers.length === 0) return { modules: [], bytesByPackage: {}, bytes: 0 };
  // esbuild reports real paths: compare against the install directory's real path.
  const inside = `${realpathSync(installDir)}/`;
  const confine: Plugin = {
    name: "mayfly-confine",
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === SKIP) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: SKIP });
        if (r.errors.length > 0) {
          // A Node built-in nothing answered for (no polyfill package, no `browser` map of it): left
          // external, and reported below with the chain that reached it.
          if (BUILTINS.has(args.path)) return { path: args.path, external: true };
          return { errors: r.errors };
        }
        // A package is bundled from its own tree only: an absolute or ../ import of a host file (a
        // key, a config) would put the host's data into the worker.
        if (r.namespace === "file" && !r.external && !r.path.startsWith(inside)) {
          return { errors: [{ text: `"${args.path}" resolves to ${r.path}, outside the installed packages; a package may only import its own files and its dependencies.` }] };
        }
        return { path: r.path, namespace: r.namespace, external: r.external, sideEffects: r.sideEffects, pluginData: r.pluginData, suffix: r.suffix };
      });
    },
  };
  let result;
  try {
    result = await build({
      absWorkingDir: installDir,
      entryPoints: specifiers.map((s) => ({ in: s, out: s.replace(/\.(m?js|cjs)$/, "") })),
      bundle: true,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2023",
      write: false,
      outdir: "/npm-out",
      metafile: true,
      logLevel: "silent",
      // What bundlers targeting Workers set: libraries that branch on it take their production path.
      define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
      plugins: [confine],
    });
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    throw new PackageBundleError(`The worker's npm dependencies could not be bundled: ${where}${first?.text ?? (e as Error).message}`);
  }
  const meta = result.metafile!;
  assertNoBuiltins(meta);
  const { text: script, meta: scriptMeta } = await bundleScript(installDir, specifiers, taken, confine);
  const modules: NormalizedModule[] = [{ name: SCRIPT_NAME, type: "script", content: script, hash: createHash("sha256").update(script).digest("hex") }];
  let bytes = Buffer.byteLength(script);
  for (const file of result.outputFiles!) {
    const spec = specifiers.find((s) => `/npm-out/${s.replace(/\.(m?js|cjs)$/, "")}.js` === file.path);
    if (!spec) continue;
    // The metafile names outputs relative to the working directory.
    const out = meta.outputs[relative(installDir, file.path)];
    if (!out) throw new PackageBundleError(`esbuild reported no exports for "${spec}".`);
    // An entry is named as the worker imports it (`zod` finds `zod.js`, `pkg/x.mjs` itself).
    const name = /\.(m?js|cjs)$/.test(spec) ? spec : `${spec}.js`;
    if (workerNames.has(name)) throw new PackageBundleError(`The bundled package module "${name}" has the name of one of the worker's own modules; rename that module.`);
    const names = taken.get(spec) ?? "*";
    const facade = facadeSource(spec, names === "*" ? out.exports : [...names]);
    modules.push({ name, type: "esm", content: facade });
    bytes += Buffer.byteLength(facade);
  }
  const bytesByPackage: Record<string, number> = {};
  for (const out of Object.values(scriptMeta.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
      const i = input.lastIndexOf("node_modules/");
      if (i < 0) continue;
      const pkg = packageOfSpecifier(input.slice(i + "node_modules/".length));
      bytesByPackage[pkg] = (bytesByPackage[pkg] ?? 0) + bytesInOutput;
    }
  }
  return { modules, bytesByPackage, bytes };
}

/** The script holding every imported package; the worker's imports find modules that read from it. */
const SCRIPT_NAME = "_npm/packages.js";
/** Where the script leaves each specifier's exports, for the modules that stand for them. */
const REGISTRY = 'globalThis[Symbol.for("mayfly.npm")]';

/**
 * The packages as one classic script (an IIFE) that registers, for each imported specifier, the
 * exports the worker takes from it (all of them for a namespace import; see imports.ts).
 * A script and not modules: executors keep V8 code caches of scripts (isolated-vm ignores cached data
 * for modules), so a fresh isolate compiles ~900 KB of zod and date-fns in ~1 ms instead of ~13 ms.
 */
async function bundleScript(installDir: string, specifiers: readonly string[], taken: ReadonlyMap<string, Taken>, confine: Plugin): Promise<{ text: string; meta: Metafile }> {
  const lines: string[] = [];
  const entries = specifiers.map((s, i) => {
    const names = taken.get(s) ?? "*";
    if (names === "*") {
      lines.push(`import * as e${i} from ${JSON.stringify(s)};`);
      return `${JSON.stringify(s)}: e${i}`;
    }
    const list = [...names];
    lines.push(`import { ${list.map((n, j) => `${JSON.stringify(n)} as e${i}_${j}`).join(", ")} } from ${JSON.stringify(s)};`);
    return `${JSON.stringify(s)}: { ${list.map((n, j) => `${JSON.stringify(n)}: e${i}_${j}`).join(", ")} }`;
  });
  lines.push(`${REGISTRY} = { ${entries.join(", ")} };`);
  try {
    const out = await build({
      absWorkingDir: installDir,
      stdin: { contents: lines.join("\n"), resolveDir: installDir, loader: "js", sourcefile: "mayfly-npm-entry.js" },
      bundle: true,
      format: "iife",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      target: "es2023",
      write: false,
      metafile: true,
      logLevel: "silent",
      define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
      plugins: [confine],
    });
    return { text: out.outputFiles[0]!.text, meta: out.metafile };
  } catch (e) {
    const first = (e as { errors?: { text: string }[] }).errors?.[0];
    throw new PackageBundleError(`The worker's npm dependencies could not be bundled: ${first?.text ?? (e as Error).message}`);
  }
}

/** The module the worker imports for `spec`: each export read from the script's registry. */
function facadeSource(spec: string, exports: readonly string[]): string {
  const lines = [`const m = ${REGISTRY}[${JSON.stringify(spec)}];`];
  const names = exports.map((name, i) => {
    lines.push(`const x${i} = m[${JSON.stringify(name)}];`);
    return `x${i} as ${JSON.stringify(name)}`;
  });
  if (names.length) lines.push(`export { ${names.join(", ")} };`);
  return lines.join("\n");
}

/** Fails naming the import chain from the worker's import to the first Node built-in found. */
function assertNoBuiltins(meta: Metafile): void {
  const parent = new Map<string, string>();
  const entries: [string, string][] = [];
  for (const out of Object.values(meta.outputs)) if (out.entryPoint) entries.push([out.entryPoint, out.entryPoint]);
  const queue = entries.map(([e]) => e);
  const seen = new Set(queue);
  while (queue.length) {
    const file = queue.shift()!;
    for (const imp of meta.inputs[file]?.imports ?? []) {
      if (imp.external && BUILTINS.has(imp.path)) {
        const chain = [imp.path];
        for (let f: string | undefined = file; f !== undefined; f = parent.get(f)) chain.unshift(display(f));
        throw new NodeBuiltinImportError(chain, packageOfSpecifier(display(chain[0]!)));
      }
      if (imp.external || seen.has(imp.path)) continue;
      seen.add(imp.path);
      parent.set(imp.path, file);
      queue.push(imp.path);
    }
  }
}

/** `node_modules/evil-pkg/lib/x.js` → `evil-pkg/lib/x.js`: the path as a package's reader knows it. */
function display(path: string): string {
  const i = path.lastIndexOf("node_modules/");
  return i < 0 ? path : path.slice(i + "node_modules/".length);
}
