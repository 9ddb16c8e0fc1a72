import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";

/**
 * The runtime's source is TypeScript under ./guest (JavaScript once built); it is bundled into one
 * classic script whose completion value is the runtime's `init` (see guest/index), which returns the executor's private handle.
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
    legalComments: "none",
  });
  const code = out.outputFiles[0]!.text;
  // Wrapped in a function so the handle is the script's value and never a global binding.
  return `(function () {\n${code}\nreturn __mayflyRuntime.init;\n})()`;
}

export type { Invocation, Outcome, WireRequest, WireResponse, WireError } from "./guest/dispatch.ts";
