/**
 * The playground at "/": a static page, its stylesheet, and its script. The script (CodeMirror and
 * the page's code) is bundled with esbuild from the client sources the first time it is needed, so
 * users never run a build step; the bundle is then kept in memory.
 */
import { existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Hono } from "hono";
import { page } from "./page.ts";
import { style } from "./style.ts";

// The page loads only its own script and stylesheet; CodeMirror injects <style> elements, hence 'unsafe-inline' for styles.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let bundle: Promise<{ text: string; gzip: Uint8Array }> | undefined;

/** The client script, bundled (and gzipped: ~0.5 MB of CodeMirror) once. From src/ the entry is app.ts; from dist/ it is tsc's app.js. */
export function playgroundScript(): Promise<{ text: string; gzip: Uint8Array }> {
  bundle ??= (async () => {
    const ts = fileURLToPath(new URL("./client/app.ts", import.meta.url));
    const entry = existsSync(ts) ? ts : fileURLToPath(new URL("./client/app.js", import.meta.url));
    const out = await build({ entryPoints: [entry], bundle: true, write: false, format: "esm", platform: "browser", target: "es2022", minify: true, legalComments: "none", logLevel: "silent" });
    const text = out.outputFiles[0]!.text;
    return { text, gzip: new Uint8Array(gzipSync(text)) };
  })();
  bundle.catch(() => (bundle = undefined)); // a failed bundle is retried on the next request
  return bundle;
}

export function playground(): Hono {
  const app = new Hono();
  app.get("/", (c) => c.html(page, 200, { "content-security-policy": CSP }));
  app.get("/playground/style.css", (c) => c.body(style, 200, { "content-type": "text/css; charset=utf-8" }));
  app.get("/playground/app.js", async (c) => {
    const script = await playgroundScript();
    const headers = { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache", vary: "accept-encoding" };
    if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) return c.body(script.gzip as Uint8Array<ArrayBuffer>, 200, { ...headers, "content-encoding": "gzip" });
    return c.body(script.text, 200, headers);
  });
  return app;
}
