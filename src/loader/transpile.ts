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

/**
 * Transpiled sources by their TypeScript text: the same code loaded again (a named worker, a playground
 * re-run, Code Mode's wrapper) skips esbuild. Bounded by entries and bytes, least recently used first out.
 */
const cache = new Map<string, string>();
let cachedBytes = 0;
const MAX_ENTRIES = 256;
const MAX_BYTES = 16 * 1024 * 1024;

function transpileOne(m: NormalizedModule): NormalizedModule {
  const key = `${m.name}\0${m.content as string}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return { ...m, content: hit };
  }
  const out = transpileUncached(m);
  cache.set(key, out.content as string);
  cachedBytes += key.length + (out.content as string).length;
  for (const [k, v] of cache) {
    if (cache.size <= MAX_ENTRIES && cachedBytes <= MAX_BYTES) break;
    cache.delete(k);
    cachedBytes -= k.length + v.length;
  }
  return out;
}

function transpileUncached(m: NormalizedModule): NormalizedModule {
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
