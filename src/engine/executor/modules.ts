import type { NormalizedModule } from "../../loader/worker-code.ts";
import { cjsModuleSource } from "./commonjs.ts";

const CLOUDFLARE_WORKERS_SOURCE = `
const m = globalThis[Symbol.for("mayfly.cloudflare:workers")];
export const WorkerEntrypoint = m.WorkerEntrypoint;
export const DurableObject = m.DurableObject;
export const WorkflowEntrypoint = m.WorkflowEntrypoint;
export const RpcTarget = m.RpcTarget;
export const env = m.env;
export default m;
`;

const AGENTS_SOURCE = `
const m = globalThis[Symbol.for("mayfly.cloudflare:workers")];
export const Agent = m.Agent;
`;

/** Built-in modules a worker may import by name, as on Cloudflare (mayfly:agents is mayfly's own). */
export const BUILTIN_MODULES: Record<string, string> = {
  "cloudflare:workers": CLOUDFLARE_WORKERS_SOURCE,
  "mayfly:agents": AGENTS_SOURCE,
};

/** Key under which a `{ data }`/`{ wasm }` module's value waits for its module (see runtime putBlob). */
export function blobKey(name: string): string {
  return `blob:${name}`;
}

/**
 * The ES module source for a module of any type. Non-JS modules become a module with one default
 * export, as in workerd; a CommonJS module exports its `module.exports` as default (see commonjs.ts).
 */
export function moduleSource(m: NormalizedModule): string {
  switch (m.type) {
    case "esm":
      return m.content as string;
    case "text":
      return `export default ${JSON.stringify(m.content)};`;
    case "json":
      return `export default (${m.content as string});`;
    case "data":
    case "wasm":
      return `const s = globalThis[Symbol.for("mayfly.blobs")]; const v = s[${JSON.stringify(blobKey(m.name))}]; delete s[${JSON.stringify(blobKey(m.name))}]; export default v;`;
    case "cjs":
      return cjsModuleSource(m);
    case "script":
      throw new Error(`"${m.name}" is run as a script before the worker's modules; it cannot be imported.`);
  }
}

/**
 * Resolves an import specifier against the importing module's name, as paths inside the worker's
 * module set. TypeScript's conventions are honoured: "./x.js" and "./x" also find "./x.ts".
 */
export function resolveSpecifier(specifier: string, referrer: string, names: Set<string>): string | undefined {
  if (specifier in BUILTIN_MODULES) return specifier;
  let path: string;
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    const parts = referrer.split("/").slice(0, -1);
    for (const seg of specifier.split("/")) {
      if (seg === "." || seg === "") continue;
      if (seg === "..") {
        if (parts.length === 0) return undefined;
        parts.pop();
      } else parts.push(seg);
    }
    path = parts.join("/");
  } else if (specifier.startsWith("/")) {
    path = specifier.slice(1);
  } else {
    path = specifier;
  }
  const candidates = [path, path.replace(/\.js$/, ".ts"), path.replace(/\.mjs$/, ".mts"), `${path}.ts`, `${path}.js`, `${path}.cjs`, `${path}.json`, `${path}/index.ts`, `${path}/index.js`];
  return candidates.find((c) => names.has(c));
}
