/**
 * Plugins in `mayfly serve`: the config's `plugins` section (grants, hook rules, the plugins to install
 * from files), a PluginHost over the server's loader, and the HTTP routes: each plugin's routes under
 * /p/<name>/, and for operators (permission `plugins`) the list with pending updates, approval, hooks
 * and the audit log as JSON lines.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Context } from "hono";
import { z } from "zod";
import type { Logger } from "pino";
import { bundleWorker } from "../bundler/index.ts";
import { ConfigError, LimitError, PluginNotFoundError } from "../errors.ts";
import { grantsSchema } from "../manifests/index.ts";
import { PluginHost, hookDefinitionSchema, type PluginInfo } from "../plugins/index.ts";
import type { WorkerLoader } from "../loader/worker-loader.ts";

export const pluginsConfigSchema = z.strictObject({
  /** Where the host's state and the plugins' stores live (default: the server's dataDir). */
  dataDir: z.string().optional(),
  /** What plugins may be granted; `${NAME}` in secrets is read from the environment. */
  grants: grantsSchema.optional(),
  hooks: z.record(z.string(), hookDefinitionSchema).optional(),
  hookTimeoutMs: z.number().int().positive().optional(),
  /** One warm isolate per plugin version instead of a fresh one per invocation. */
  warm: z.boolean().optional(),
  /**
   * Plugins installed at startup (name → its manifest file and main module, relative to the config
   * file). A higher version than the installed one is an update: if it asks for more it waits for
   * POST /v1/plugins/<name>/approve, and the installed version keeps serving.
   */
  install: z.record(z.string(), z.strictObject({ manifest: z.string().min(1), main: z.string().min(1) })).optional(),
});

export type PluginsConfig = z.infer<typeof pluginsConfigSchema>;

/** A PluginHost for the server, with the configured plugins installed (or updated); errors name the plugin. */
export function startPlugins(config: PluginsConfig, options: { loader: WorkerLoader; baseDir: string; dataDir: string; log?: Logger }): PluginHost {
  const host = new PluginHost({
    loader: options.loader,
    dataDir: config.dataDir ? resolve(options.baseDir, config.dataDir) : options.dataDir,
    grants: config.grants ?? {},
    hooks: config.hooks,
    hookTimeoutMs: config.hookTimeoutMs,
    warm: config.warm,
  });
  try {
    for (const [key, files] of Object.entries(config.install ?? {})) {
      const where = `plugins.install.${key}`;
      let manifest: unknown;
      let code: string;
      try {
        manifest = JSON.parse(readFileSync(resolve(options.baseDir, files.manifest), "utf8"));
        code = bundleWorker(resolve(options.baseDir, files.main)).code;
      } catch (e) {
        throw new ConfigError(`${where}: ${(e as Error).message}`);
      }
      const name = (manifest as { name?: unknown })?.name;
      if (name !== key) throw new ConfigError(`${where}: the manifest's name is ${JSON.stringify(name)}, not "${key}".`);
      try {
        const installed = host.get(key);
        if (!installed) {
          host.install({ manifest, code: { mainModule: `${key}.js`, modules: { [`${key}.js`]: code } } });
          options.log?.info({ plugin: key }, "plugin installed");
        } else if (installed.version !== (manifest as { version?: unknown }).version) {
          const r = host.update({ manifest, code: { mainModule: `${key}.js`, modules: { [`${key}.js`]: code } } });
          if (r.status === "pending-approval") options.log?.warn({ plugin: key, changes: r.diff.changes }, `plugin update to ${r.diff.to} waits for approval (POST /v1/plugins/${key}/approve)`);
          else options.log?.info({ plugin: key, version: r.diff.to }, "plugin updated");
        }
      } catch (e) {
        throw new ConfigError(`${where}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    host.close();
    throw e;
  }
  return host;
}

/** What GET /v1/plugins shows of a plugin. */
export function describePlugin(p: PluginInfo) {
  return { name: p.name, version: p.version, publisher: p.publisher, enabled: p.enabled, path: `/p/${p.name}/`, manifest: p.manifest, ...(p.pending ? { pending: p.pending } : {}) };
}

/** The handler for /p/:name and /p/:name/*: the plugin sees itself mounted at "/". */
export function servePlugin(host: PluginHost, log?: Logger) {
  return async (c: Context): Promise<Response> => {
    const name = c.req.param("name")!;
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(`/p/${name}`.length) || "/";
    const raw = c.req.raw;
    try {
      return await host.fetch(name, new Request(url, {
        method: raw.method, headers: raw.headers, body: raw.method === "GET" || raw.method === "HEAD" ? undefined : raw.body, duplex: "half",
      } as RequestInit));
    } catch (e) {
      const err = e as Error;
      if (err instanceof PluginNotFoundError) return c.json({ error: { name: "NotFound", message: err.message } }, 404);
      if (err instanceof LimitError) return c.json({ error: { name: err.name, message: err.message } }, 503);
      // As for named workers: the plugin's own error text stays in the server's log.
      log?.error({ plugin: name, error: { name: err.name, message: err.message } }, "plugin threw");
      return c.json({ error: { name: "PluginException", message: `The plugin threw ${err.name}; the details are in the server's log.` } }, 500);
    }
  };
}
