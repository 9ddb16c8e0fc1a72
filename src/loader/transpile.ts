import { transformSync } from "esbuild";
import { InvalidWorkerCodeError } from "../errors.ts";
import type { NormalizedModule } from "./worker-code.ts";

const TS_MODULE = /\.(ts|mts)$/;

/**
 * TypeScript modules are accepted directly (workerd rejects them): esbuild strips the types and
 * leaves the module otherwise as written, imports included. Type errors are not checked, as with
 * Node's and Deno's type stripping; syntax errors are reported with their position.
 */
export function transpileModules(modules: NormalizedModule[]): NormalizedModule[] {
  return modules.map((m) => (m.type === "esm" && TS_MODULE.test(m.name) ? transpileOne(m) : m));
}

function transpileOne(m: NormalizedModule): NormalizedModule {
  try {
    const out = transformSync(m.content as string, {
      loader: "ts",
      format: "esm",
      target: "es2023",
      sourcefile: m.name,
      // Keep every import, even one used only as a type, as a module graph author expects.
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: false } },
    });
    return { ...m, content: out.code };
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { line: number; column: number } }[] }).errors;
    const first = errors?.[0];
    const where = first?.location ? `:${first.location.line}:${first.location.column}` : "";
    throw new InvalidWorkerCodeError(`TypeScript module "${m.name}${where}" could not be transpiled: ${first?.text ?? (e as Error).message}`);
  }
}
