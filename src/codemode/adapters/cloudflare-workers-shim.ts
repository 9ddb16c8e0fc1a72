/**
 * `@cloudflare/codemode` imports `cloudflare:workers`, a module only workerd has, so Node refuses
 * to load it. This registers (with Node's module hooks) a stand-in with the classes it extends:
 * enough for createCodeTool() with a MayflyExecutor. Call once before importing the package.
 */
import { registerHooks } from "node:module";

const SHIM = "export class RpcTarget {}\nexport class WorkerEntrypoint { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }\nexport class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }\nexport const env = {};\n";
let installed = false;

export function installCloudflareWorkersShim(): void {
  if (installed) return;
  installed = true;
  registerHooks({
    resolve: (specifier, context, next) =>
      specifier === "cloudflare:workers" ? { url: `data:text/javascript,${encodeURIComponent(SHIM)}`, shortCircuit: true } : next(specifier, context),
  });
}
