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
    const handler = plugin?.hooks?.[name];
    if (typeof handler !== "function") throw new TypeError("The plugin has no handler for the hook " + name + ".");
    return handler.call(plugin.hooks, payload, this.env, this.ctx);
  }
}
`;
  return { mainModule: ENTRY_MODULE, modules: { ...code.modules, [ENTRY_MODULE]: source } };
}
