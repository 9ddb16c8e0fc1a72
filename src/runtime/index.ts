import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";
import type { LazyModuleName } from "./guest/lazy-modules.ts";

export interface RuntimeBuild {
  /** The runtime script evaluated (or snapshotted) in every isolate. */
  script: string;
  /** Sources of the lazy modules, served to isolates on first use (see guest/lazy-modules.ts). */
  lazyModules: Record<LazyModuleName, string>;
}

const LAZY_ENTRIES: Record<LazyModuleName, string> = {
  "web-streams": "web-streams",
  fflate: "fflate",
  urlpattern: "urlpattern",
};

/**
 * The runtime's source is TypeScript under ./guest (JavaScript once built), bundled into one classic
 * script whose completion value is the runtime's setup API `{ prepare, warmUp, bind, rehearse }` (see
 * guest/index), plus one script per lazy module. Built once per executor process.
 */
export function buildRuntime(): RuntimeBuild {
  const code = bundle("index", "__mayflyRuntime");
  // Wrapped in a function so the API is the script's value and never a global binding.
  const script = `(function () {\n${code}\nreturn { prepare: __mayflyRuntime.prepare, warmUp: __mayflyRuntime.warmUp, bind: __mayflyRuntime.bind, rehearse: __mayflyRuntime.rehearse };\n})()`;
  const lazyModules = {} as Record<LazyModuleName, string>;
  for (const [name, entry] of Object.entries(LAZY_ENTRIES) as [LazyModuleName, string][]) {
    // A function body returning the module's exports (compiled by lazy-modules.ts).
    lazyModules[name] = `${bundle(entry, "__mayflyModule")}\nreturn __mayflyModule;`;
  }
  return { script, lazyModules };
}

/** The runtime script alone (benchmarks, tests). */
export function buildRuntimeScript(): string {
  return buildRuntime().script;
}

function bundle(entry: string, globalName: string): string {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const out = buildSync({
    entryPoints: [fileURLToPath(new URL(`./guest/${entry}${ext}`, import.meta.url))],
    bundle: true,
    write: false,
    format: "iife",
    globalName,
    target: "es2023",
    platform: "neutral",
    minifySyntax: true,
    minifyWhitespace: true,
    // Bundling renames clashing classes (AbortController2, _Request); guest code sees real names.
    keepNames: true,
    legalComments: "none",
  });
  return out.outputFiles[0]!.text;
}

export type { Invocation, Outcome, WireRequest, WireResponse, WireError } from "./guest/dispatch.ts";
