/**
 * CommonJS modules, as Node runs them: each `{ cjs }` module's body becomes a factory registered
 * before the module graph is evaluated, and runs on its first require() (or import), once; cycles see
 * the partly filled `module.exports`, as in Node. require() specifiers are found statically (string
 * literals) and resolved on the host, like a bundler does; a computed require() fails with a clear error.
 */
import type { NormalizedModule } from "../../loader/worker-code.ts";

const REGISTRY = `globalThis[Symbol.for("mayfly.cjs")]`;

/** Creates the worker's registry (guest code; one per isolate, created by the first definition). */
const REGISTRY_SOURCE = `(() => {
  const factories = new Map(), values = new Map(), cache = new Map();
  const load = (name) => {
    const cached = cache.get(name);
    if (cached) return cached.exports;
    if (values.has(name)) return values.get(name);
    const def = factories.get(name);
    const module = { id: name, filename: name, loaded: false, exports: {} };
    cache.set(name, module);
    const require = (spec) => {
      const target = def.requires[spec];
      if (target === undefined) {
        const e = new Error("Cannot find module '" + spec + "' (required from " + name + "). Only the worker's own modules can be required, by a string literal.");
        e.code = "MODULE_NOT_FOUND";
        throw e;
      }
      if (target.esm) throw new Error("require() of the ES module '" + spec + "' from " + name + " is not supported; use import.");
      return load(target.name);
    };
    def.factory.call(module.exports, module, module.exports, require, name, name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : ".");
    module.loaded = true;
    return module.exports;
  };
  return { factories, values, load };
})()`;

/** `require("x")` / `require('x')` with a literal: what a CommonJS module may require. */
const REQUIRE_CALL = /\brequire\s*\(\s*(["'])((?:(?!\1)[^\\\n])+)\1\s*\)/g;

export function requiredSpecifiers(source: string): string[] {
  return [...new Set([...source.matchAll(REQUIRE_CALL)].map((m) => m[2]!))];
}

/**
 * The script that registers one CommonJS module's factory (run before the graph is instantiated).
 * `resolve` maps a specifier to a module name (or undefined); `typeOf` gives that module's type.
 */
export function cjsDefinition(m: NormalizedModule, resolve: (spec: string) => string | undefined, typeOf: (name: string) => NormalizedModule["type"] | undefined): string {
  const requires: Record<string, { name: string; esm?: true }> = {};
  for (const spec of requiredSpecifiers(m.content as string)) {
    const name = resolve(spec);
    if (name === undefined) continue;
    requires[spec] = typeOf(name) === "esm" ? { name, esm: true } : { name };
  }
  return `(${REGISTRY} ??= ${REGISTRY_SOURCE}).factories.set(${JSON.stringify(m.name)}, { requires: ${JSON.stringify(requires)}, factory: function (module, exports, require, __filename, __dirname) {\n${m.content as string}\n} });`;
}

/** A json or text module's value, for require() from CommonJS (registered like a factory). */
export function cjsValueDefinition(m: NormalizedModule): string {
  const value = m.type === "json" ? `(${m.content as string})` : JSON.stringify(m.content);
  return `(${REGISTRY} ??= ${REGISTRY_SOURCE}).values.set(${JSON.stringify(m.name)}, ${value});`;
}

/** The ES module standing for a CommonJS module: importing it runs the factory (once). */
export function cjsModuleSource(m: NormalizedModule): string {
  return `export default ${REGISTRY}.load(${JSON.stringify(m.name)});`;
}
