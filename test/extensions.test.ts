import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { Extensions, PluginHost, egress, execute, extensionTools, functionTools } from "../src/index.ts";
import { useLoader, useTempDir } from "./helpers.ts";

/**
 * Self-authored extensions: code running in Code Mode defines a tool, which later runs call as
 * ext.<name>.<tool>(), under the extension's own manifest and never with its creator's rights.
 */
const ctx = useLoader({ executors: 1 });
const dataDir = useTempDir("mayfly-extensions-");
let listener: Server;
let port = 0;
let connections = 0;
before(async () => {
  listener = createServer((_req, res) => res.end("from the network"));
  listener.on("connection", () => connections++);
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", () => r()));
  port = (listener.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => listener.close(() => r())));

let host: PluginHost;
let extensions: Extensions;
before(() => {
  // What extensions may be granted: a KV namespace of their own, nothing else (no network, no tools).
  host = new PluginHost({ loader: ctx.loader, dataDir, grants: { kv: true } });
  extensions = new Extensions({ host });
});
after(() => host.close());

/** The extension a model writes: a pure tool, and one that tries what its creator may do. */
const slugSource = () => `
interface Input { title: string }
export default {
  tools: {
    slug: {
      description: "A URL slug for a title",
      inputSchema: { type: "object", properties: { title: { type: "string" } }, required: ["title"], additionalProperties: false },
      run(input: Input): string { return input.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, ""); },
    },
    reach: {
      description: "Tries the network and the creator's tools",
      inputSchema: { type: "object" },
      async run(_input: object, env: Record<string, unknown>): Promise<object> {
        let net: string;
        try { net = await (await fetch("http://127.0.0.1:${port}/")).text(); } catch (e) { net = (e as Error).message; }
        return { net, env: Object.keys(env), secrets: typeof (globalThis as Record<string, unknown>).secrets };
      },
    },
  },
};`;

/** A Code Mode run whose code may create extensions, and which holds rights an extension must not inherit. */
function creatorRun(code: string) {
  const secrets = functionTools("secrets", { get: { inputSchema: z.object({}), execute: () => "creator-only" } });
  return execute(code, {
    loader: ctx.loader,
    tools: [...extensionTools(extensions), ...secrets],
    globalOutbound: egress({ allow: [{ origin: `http://127.0.0.1:${port}`, allowPrivateAddresses: true }] }),
    limits: { wallMs: 60_000 },
  });
}

async function laterRun(code: string) {
  const { tools, prelude } = await extensions.codeMode();
  return execute(code, { loader: ctx.loader, tools, prelude });
}

describe("extensions", () => {
  test("code in Code Mode defines a tool; a later run calls it as ext.<name>.<tool>()", async () => {
    const created = await creatorRun(`
      const info = await extensions.create({
        manifest: { name: "slugs", version: "1.0.0", publisher: "a model", permissions: { kv: ["STATE"] } },
        source: ${JSON.stringify(slugSource())},
      });
      return info;`);
    assert.equal(created.error, undefined, JSON.stringify(created.error));
    assert.deepEqual((created.result as { tools: { name: string }[] }).tools.map((t) => t.name), ["slug", "reach"]);
    const r = await laterRun(`return await ext.slugs.slug({ title: "Hello, Extensions!" })`);
    assert.deepEqual({ result: r.result, error: r.error }, { result: "hello-extensions", error: undefined });
    const bad = await laterRun(`try { await ext.slugs.slug({ name: 1 }); } catch (e) { return e.name; }`);
    assert.equal(bad.result, "ToolInputError");
  });

  test("it runs under its own manifest: not the creator's network, tools or bindings", async () => {
    const before = connections;
    const r = await laterRun(`return await ext.slugs.reach({})`);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    const out = r.result as { net: string; env: string[]; secrets: string };
    assert.match(out.net, /Egress denied \(allow-list\)/);
    assert.deepEqual(out.env, ["STATE"]);
    assert.equal(out.secrets, "undefined");
    assert.equal(connections, before, "the listener the creator may reach saw nothing from the extension");
  });

  test("a manifest asking for more than extensions are granted is refused to the creator; nothing is kept", async () => {
    const r = await creatorRun(`
      try {
        await extensions.create({ manifest: { name: "greedy", version: "1.0.0", publisher: "a model", permissions: { network: ["http://127.0.0.1:${port}"] } }, source: "export default { tools: {} }" });
        return "created";
      } catch (e) { return { name: e.name, message: e.message }; }`);
    assert.equal((r.result as { name: string }).name, "ManifestGrantError");
    assert.equal(host.get("greedy"), undefined);
  });

  test("the source is type-checked: a type error is a TypeCheckError with file:line:col, and nothing is kept", async () => {
    const source = `export default { tools: { twice: { inputSchema: { type: "object" }, run(input: { n: number }): string { return input.n * 2; } } } };`;
    const r = await creatorRun(`
      try { await extensions.create({ manifest: { name: "typo", version: "1.0.0", publisher: "a model" }, source: ${JSON.stringify(source)} }); return "created"; }
      catch (e) { return { name: e.name, message: e.message }; }`);
    const err = r.result as { name: string; message: string };
    assert.equal(err.name, "TypeCheckError");
    assert.match(err.message, /extension\.ts:1:\d+ TS2322/);
    assert.equal(host.get("typo"), undefined);
    const noTools = await creatorRun(`
      try { await extensions.create({ manifest: { name: "empty", version: "1.0.0", publisher: "a model" }, source: "export default {}" }); return "created"; }
      catch (e) { return e.name; }`);
    assert.equal(noTools.result, "ToolSourceError");
  });

  test("extensions are stored: a new host on the same dataDir offers them", async () => {
    const again = new PluginHost({ loader: ctx.loader, dataDir, grants: { kv: true } });
    try {
      const { tools, prelude } = await new Extensions({ host: again }).codeMode();
      const r = await execute(`return await ext.slugs.slug({ title: "Kept" })`, { loader: ctx.loader, tools, prelude });
      assert.equal(r.result, "kept");
    } finally {
      again.close();
    }
  });
});
