/**
 * Self-authored extensions: code (often written by a model in Code Mode) that defines new tools. It is
 * type-checked (the loader's `typecheck: true`), stored, and offered to later Code Mode runs as
 * `ext.<name>.<tool>(input)`. An extension is a plugin of the PluginHost given here: it runs under its
 * own manifest, checked against that host's grants, never with the rights of the code that created it
 * (the creator's tools, network or bindings are not passed on).
 *
 *   export default { tools: { slug: { description, inputSchema: { type: "object", ... }, run(input, env) { ... } } } };
 */
import { z } from "zod";
import { ManifestError } from "../errors.ts";
import { ToolSourceError } from "../codemode/errors.ts";
import { functionTools } from "../codemode/sources/functions.ts";
import { isIdentifier, type JsonSchema, type Tool } from "../codemode/tool.ts";
import { parseManifest } from "../manifests/index.ts";
import type { PluginHost, PluginInfo } from "../plugins/index.ts";

export interface ExtensionTool {
  name: string;
  description?: string;
  inputSchema: JsonSchema;
}

export interface ExtensionInfo {
  name: string;
  version: string;
  description?: string;
  tools: ExtensionTool[];
}

/** The one module of an extension's code. */
const MAIN = "extension.ts";

export class Extensions {
  private readonly host: PluginHost;
  /** Tool declarations by name@version: read from the code once (an isolate each), not per run. */
  private readonly declared = new Map<string, ExtensionTool[]>();

  constructor(options: { host: PluginHost }) {
    this.host = options.host;
  }

  /**
   * Type-checks `source`, reads the tools it exports and stores it under `manifest` (enabled). Refused
   * with ManifestError, ManifestGrantError (the manifest asks for what the host does not grant),
   * PluginStateError (the name exists), TypeCheckError, or ToolSourceError (no usable tools); nothing
   * is kept then.
   */
  async create(input: { manifest: unknown; source: string }): Promise<ExtensionInfo> {
    const manifest = parseManifest(input.manifest);
    // ext.<name> is a property in the isolate, and ext_<name> a namespace: an identifier without "-".
    if (!/^[a-z][a-z0-9]*$/.test(manifest.name)) throw new ManifestError(`manifest.name: an extension's name is lower-case letters and digits (it becomes ext.${manifest.name})`, "name");
    if (typeof input.source !== "string") throw new TypeError("An extension's source is a string (TypeScript or JavaScript).");
    const info = this.host.install({ manifest, code: { mainModule: MAIN, modules: { [MAIN]: input.source } } });
    try {
      const tools = checkTools(manifest.name, await this.host.describeTools(manifest.name, { typecheck: true }));
      this.declared.set(`${info.name}@${info.version}`, tools);
      return describe(info, tools);
    } catch (e) {
      this.host.uninstall(manifest.name);
      throw e;
    }
  }

  /** Every enabled extension and its tools. */
  async list(): Promise<ExtensionInfo[]> {
    const out: ExtensionInfo[] = [];
    for (const p of this.host.list().filter((p) => p.enabled)) out.push(describe(p, await this.toolsOf(p)));
    return out;
  }

  /**
   * What a Code Mode run needs to call them: `tools` (one namespace `ext_<name>` per extension,
   * inputs validated against each tool's inputSchema on the host) and a `prelude` that makes them
   * `ext.<name>.<tool>()`. Pass both to execute().
   */
  async codeMode(): Promise<{ tools: Tool[]; prelude: string }> {
    const tools: Tool[] = [];
    const names: string[] = [];
    for (const ext of await this.list()) {
      if (!ext.tools.length) continue;
      names.push(ext.name);
      tools.push(...functionTools(`ext_${ext.name}`, Object.fromEntries(ext.tools.map((t) => [t.name, {
        description: t.description,
        inputSchema: t.inputSchema,
        execute: (toolInput: unknown) => this.host.callTool(ext.name, t.name, toolInput),
      }]))));
    }
    return { tools, prelude: `const ext = Object.freeze({ ${names.map((n) => `${n}: ext_${n}`).join(", ")} });` };
  }

  private async toolsOf(p: PluginInfo): Promise<ExtensionTool[]> {
    const key = `${p.name}@${p.version}`;
    let tools = this.declared.get(key);
    if (!tools) {
      tools = checkTools(p.name, await this.host.describeTools(p.name));
      this.declared.set(key, tools);
    }
    return tools;
  }
}

/** The Code Mode tools with which running code defines extensions: `extensions.create({ manifest, source })`, `extensions.list()`. */
export function extensionTools(extensions: Extensions): Tool[] {
  return functionTools("extensions", {
    create: {
      description: "Define a new tool for later runs. `source` is TypeScript: `export default { tools: { name: { description, inputSchema (JSON Schema of an object), run(input, env) { ... } } } }`; "
        + "`manifest` is a plugin manifest ({ name, version, publisher, permissions }) naming everything the tool may use. It is type-checked, then callable as ext.<name>.<tool>(input) in later runs.",
      inputSchema: z.object({ manifest: z.record(z.string(), z.unknown()), source: z.string() }),
      execute: (input: { manifest: unknown; source: string }) => extensions.create(input),
    },
    list: {
      description: "The extensions defined so far and their tools.",
      inputSchema: z.object({}),
      execute: () => extensions.list(),
    },
  });
}

function describe(p: Pick<PluginInfo, "name" | "version" | "description">, tools: ExtensionTool[]): ExtensionInfo {
  return { name: p.name, version: p.version, ...(p.description !== undefined ? { description: p.description } : {}), tools };
}

function checkTools(name: string, found: { name: string; description?: string; inputSchema: unknown; runnable: boolean }[]): ExtensionTool[] {
  if (!found.length) throw new ToolSourceError(`The extension ${name} exports no tools (export default { tools: { ... } }).`);
  return found.map((t) => {
    if (!isIdentifier(t.name)) throw new ToolSourceError(`The extension ${name}'s tool "${t.name}" is not a JavaScript identifier.`);
    if (!t.runnable) throw new ToolSourceError(`The extension ${name}'s tool ${t.name} has no run(input, env) function.`);
    const schema = t.inputSchema as JsonSchema | null;
    if (!schema || typeof schema !== "object" || Array.isArray(schema) || schema.type !== "object") throw new ToolSourceError(`The extension ${name}'s tool ${t.name} needs an inputSchema of type "object".`);
    return { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), inputSchema: schema };
  });
}
