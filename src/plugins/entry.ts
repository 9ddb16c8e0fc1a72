/**
 * The module every plugin runs behind: it imports the plugin's own main module and exposes its two
 * shapes to the host as one class entrypoint, `fetch` (its routes) and `hook(name, payload)`. A plugin
 * is written as
 *
 *   export default {
 *     hooks: { "content:beforeSave"(payload, env, ctx) { return { ...payload, title: payload.title.trim() } } },
 *     fetch(request, env, ctx) { return new Response("hi") },
 *   };
 *
 * A hook handler's return value (if not undefined) is the payload the next plugin in the chain gets.
 * A plugin may also export `tools` (what an extension is, see src/extensions):
 *
 *   tools: { slug: { description: "…", inputSchema: { type: "object", … }, run(input, env, ctx) { … } } }
 */
import type { PluginCode } from "../manifests/index.ts";
import { PluginStateError } from "../errors.ts";

export const ENTRY_MODULE = "__mayfly_plugin_entry.js";

export function withEntry(plugin: string, code: PluginCode): PluginCode {
  if (Object.hasOwn(code.modules, ENTRY_MODULE)) throw new PluginStateError(plugin, `A plugin module may not be named ${ENTRY_MODULE}.`);
  const main = JSON.stringify(`./${code.mainModule}`);
  const source = `import plugin from ${main};
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  async fetch(request) {
    if (typeof plugin?.fetch !== "function") return new Response("This plugin serves no routes.", { status: 404 });
    return plugin.fetch(request, this.env, this.ctx);
  }
  async hook(name, payload) {
    const handler = own(plugin?.hooks, name);
    if (typeof handler !== "function") throw new TypeError("The plugin has no handler for the hook " + name + ".");
    return handler.call(plugin.hooks, payload, this.env, this.ctx);
  }
  describe() {
    const tools = plugin?.tools && typeof plugin.tools === "object" ? plugin.tools : {};
    return Object.keys(tools).map((name) => ({
      name,
      description: typeof tools[name]?.description === "string" ? tools[name].description : undefined,
      inputSchema: tools[name]?.inputSchema ?? { type: "object" },
      runnable: typeof (typeof tools[name] === "function" ? tools[name] : tools[name]?.run) === "function",
    }));
  }
  async tool(name, input) {
    const tool = own(plugin?.tools, name);
    const run = typeof tool === "function" ? tool : tool?.run;
    if (typeof run !== "function") throw new TypeError("The plugin has no tool " + name + ".");
    return run.call(tool, input, this.env, this.ctx);
  }
}
// Only the plugin's own names: "constructor" or "toString" must not reach Object.prototype.
function own(object, name) {
  return object && typeof object === "object" && Object.hasOwn(object, name) ? object[name] : undefined;
}
`;
  return { mainModule: ENTRY_MODULE, modules: { ...code.modules, [ENTRY_MODULE]: source } };
}
