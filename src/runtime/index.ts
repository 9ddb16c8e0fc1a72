import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";

/**
 * The runtime's source is TypeScript under ./guest (JavaScript once built); it is bundled into one
 * classic script whose completion value is the runtime's setup API `{ prepare, warmUp, bind }` (see guest/index).
 * Built once per executor process (~tens of ms), then evaluated in each pooled isolate.
 */
export function buildRuntimeScript(): string {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const entry = fileURLToPath(new URL(`./guest/index${ext}`, import.meta.url));
  const out = buildSync({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "iife",
    globalName: "__mayflyRuntime",
    target: "es2023",
    platform: "neutral",
    minifySyntax: true,
    minifyWhitespace: true,
    // Bundling renames clashing classes (AbortController2, _Request); guest code sees real names.
    keepNames: true,
    legalComments: "none",
  });
  const code = out.outputFiles[0]!.text;
  // Wrapped in a function so the API is the script's value and never a global binding.
  return `(function () {\n${code}\nreturn { prepare: __mayflyRuntime.prepare, warmUp: __mayflyRuntime.warmUp, bind: __mayflyRuntime.bind };\n})()`;
}

export type { Invocation, Outcome, WireRequest, WireResponse, WireError } from "./guest/dispatch.ts";
