import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where packages come from: what npm itself would use on this machine. */
export interface RegistryConfig {
  /** The default registry (npm's default: https://registry.npmjs.org/). */
  registry: string;
  /** `@scope` → registry, from `@scope:registry=` lines. */
  scopedRegistries: Record<string, string>;
  /**
   * Per-registry settings npm-registry-fetch understands, keyed as in .npmrc
   * (`//registry.example.com/:_authToken`), so a private registry works as it does for npm.
   */
  registryAuth: Record<string, string>;
}

export const DEFAULT_REGISTRY = "https://registry.npmjs.org/";

export interface ConfigSources {
  env?: Record<string, string | undefined>;
  /** Project directory: its .npmrc is read (npm's "project" config). */
  cwd?: string;
  /** Home directory: its .npmrc is read (npm's "user" config). */
  home?: string;
}

/**
 * The registry configuration npm would use here: `npm_config_registry` (and `npm_config_@scope:registry`)
 * over the project's .npmrc over the user's, as npm orders them. Called at the front doors (the CLI,
 * the server) only: the library takes the result as options and never reads the environment itself.
 */
export function registryConfigFromEnvironment(sources: ConfigSources = {}): RegistryConfig {
  const env = sources.env ?? process.env;
  const layers = [
    readNpmrc(join(sources.home ?? homedir(), ".npmrc"), env),
    readNpmrc(join(sources.cwd ?? process.cwd(), ".npmrc"), env),
    fromEnv(env),
  ];
  const out: RegistryConfig = { registry: DEFAULT_REGISTRY, scopedRegistries: {}, registryAuth: {} };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (key === "registry") out.registry = value;
      else if (/^@[^:]+:registry$/.test(key)) out.scopedRegistries[key.slice(0, key.indexOf(":"))] = value;
      else if (key.startsWith("//")) out.registryAuth[key] = value;
    }
  }
  return out;
}

function fromEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || !/^npm_config_/i.test(k)) continue;
    const key = k.slice("npm_config_".length);
    if (key.toLowerCase() === "registry") out.registry = v;
    else if (/^@[^:]+:registry$/i.test(key)) out[key] = v;
  }
  return out;
}

/** The `key=value` lines of an .npmrc, `${VAR}` expanded as npm does; a missing file is empty. */
function readNpmrc(path: string, env: Record<string, string | undefined>): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (/^".*"$/.test(value)) value = value.slice(1, -1);
    out[key] = value.replace(/\$\{([^}]+)\}/g, (_, name: string) => env[name] ?? "");
  }
  return out;
}
