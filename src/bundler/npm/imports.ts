import { parse } from "acorn";
import { transformSync } from "esbuild";
import type { NormalizedModule } from "../../loader/worker-code.ts";

/** What the worker takes from one package specifier: some named exports, or all of them ("*"). */
export type Taken = Set<string> | "*";

/**
 * Which exports of each package specifier the worker's modules import, so the bundle keeps only those
 * (esbuild drops the rest): `import { addDays } from "date-fns"` takes one function of ~250. A namespace
 * or side-effect import, `export * from`, a dynamic import or a require() takes everything. TypeScript
 * is stripped by esbuild first; acorn reads the module syntax. A module that does not parse takes
 * everything it names (the loader reports its syntax error as it always did).
 */
export function takenExports(modules: readonly NormalizedModule[], specifiers: readonly string[]): Map<string, Taken> {
  const wanted = new Set(specifiers);
  const taken = new Map<string, Taken>();
  const take = (spec: string, name: string | "*") => {
    if (!wanted.has(spec)) return;
    const prev = taken.get(spec);
    if (name === "*" || prev === "*") return void taken.set(spec, "*");
    taken.set(spec, (prev ?? new Set<string>()).add(name));
  };
  for (const m of modules) {
    if (m.type === "cjs") {
      for (const spec of specifiers) if ((m.content as string).includes(spec)) take(spec, "*");
      continue;
    }
    if (m.type !== "esm") continue;
    let program;
    try {
      const js = transformSync(m.content as string, { loader: /\.m?ts$/.test(m.name) ? "ts" : "js", format: "esm", target: "es2023" }).code;
      program = parse(js, { ecmaVersion: "latest", sourceType: "module" });
    } catch {
      for (const spec of specifiers) if ((m.content as string).includes(spec)) take(spec, "*");
      continue;
    }
    for (const node of program.body) {
      if (node.type === "ImportDeclaration") {
        const spec = String(node.source.value);
        if (node.specifiers.length === 0) take(spec, "*");
        for (const s of node.specifiers) {
          if (s.type === "ImportSpecifier") take(spec, s.imported.type === "Identifier" ? s.imported.name : String(s.imported.value));
          else if (s.type === "ImportDefaultSpecifier") take(spec, "default");
          else take(spec, "*");
        }
      } else if (node.type === "ExportNamedDeclaration" && node.source) {
        const spec = String(node.source.value);
        for (const s of node.specifiers) take(spec, s.local.type === "Identifier" ? s.local.name : String(s.local.value));
      } else if (node.type === "ExportAllDeclaration") {
        take(String(node.source.value), "*");
      }
    }
    // Dynamic imports anywhere in the module: whatever they name is taken whole.
    for (const spec of specifiers) if (new RegExp(`import\\s*\\(\\s*["'\`]${escape(spec)}["'\`]`).test(m.content as string)) take(spec, "*");
  }
  for (const spec of specifiers) if (!taken.has(spec)) taken.set(spec, "*");
  return taken;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
