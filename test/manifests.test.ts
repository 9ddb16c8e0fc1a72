import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  EgressGateway, ManifestError, ManifestGrantError, diffManifests, formatManifestDiff, manifestJsonSchema, manifestToWorkerCode, parseManifest,
  type PluginManifestInput,
} from "../src/index.ts";
import { useTempDir } from "./helpers.ts";

const dataDir = useTempDir("mayfly-manifests-");
const code = { mainModule: "p.js", modules: { "p.js": "export default {}" } };

function manifest(extra: Partial<PluginManifestInput> = {}): PluginManifestInput {
  return { name: "demo", version: "1.0.0", publisher: "Acme", ...extra };
}

describe("manifest schema", () => {
  test("the published JSON Schema is the one generated from the zod schema (run `npm run schemas` after changing it)", () => {
    const file = JSON.parse(readFileSync(new URL("../schemas/plugin-manifest.schema.json", import.meta.url), "utf8"));
    assert.deepEqual(file, JSON.parse(JSON.stringify(manifestJsonSchema())));
    assert.equal(file.type, "object");
    assert.deepEqual(file.required.sort(), ["name", "publisher", "version"]);
  });

  test("a malformed manifest is a ManifestError naming the field", () => {
    const cases: [unknown, string][] = [
      [{ ...manifest(), version: "one" }, "version"],
      [{ ...manifest(), name: "Has Spaces" }, "name"],
      [manifest({ permissions: { network: ["ftp://x.test"] } }), "permissions.network.0"],
      [manifest({ permissions: { network: ["https://API.example.test"] } }), "permissions.network.0"],
      [manifest({ permissions: { workspace: "write" as never } }), "permissions.workspace"],
      [manifest({ permissions: { tools: ["nodot"] } }), "permissions.tools.0"],
      [manifest({ permissions: { network: ["https://a.test"], secrets: [{ name: "TOKEN", origin: "https://b.test", header: "authorization" }] } }), "permissions.secrets.0.origin"],
      [{ ...manifest(), extra: 1 }, ""],
    ];
    for (const [input, field] of cases) {
      assert.throws(() => parseManifest(input), (e: unknown) => e instanceof ManifestError && e.name === "ManifestError" && e.field === field, JSON.stringify(input));
    }
  });
});

describe("manifestToWorkerCode", () => {
  const grants = {
    network: [{ origin: "https://*.example.test", allowPrivateAddresses: true }], workspace: "read-write" as const, kv: true, sql: true, blob: true,
    secrets: { TOKEN: "s3cret" }, limits: { cpuMs: 100 },
  };

  test("binds exactly what the manifest names: no network means a gateway with no rule, nothing more in env", async () => {
    const bare = manifestToWorkerCode(parseManifest(manifest()), code, grants, { dataDir });
    assert.ok(bare.globalOutbound instanceof EgressGateway);
    await assert.rejects((bare.globalOutbound as EgressGateway).fetch(new Request("https://api.example.test/")), { name: "EgressDeniedError" });
    assert.deepEqual(bare.env, {});
    assert.deepEqual(bare.limits, { cpuMs: 100 }, "a limit left out is the grant's ceiling, not the loader's higher default");
    const full = manifestToWorkerCode(parseManifest(manifest({
      permissions: { network: ["https://api.example.test"], workspace: "read", kv: ["CACHE"], sql: ["DB"], blob: ["FILES"], secrets: [{ name: "TOKEN", origin: "https://api.example.test", header: "Authorization", prefix: "Bearer " }] },
      limits: { cpuMs: 50 },
    })), code, grants, { dataDir });
    assert.deepEqual(Object.keys(full.env!).sort(), ["CACHE", "DB", "FILES", "WORKSPACE"]);
    assert.ok(full.globalOutbound instanceof EgressGateway);
    assert.deepEqual(full.limits, { cpuMs: 50 });
    assert.deepEqual(manifestToWorkerCode(parseManifest(manifest({ limits: { wallMs: 10 } })), code, {}).limits, { wallMs: 10 });
  });

  test("anything not granted is a ManifestGrantError naming the permission, at build time", () => {
    const cases: [Partial<PluginManifestInput>, string][] = [
      [{ permissions: { network: ["https://evil.test"] } }, "network"],
      [{ permissions: { network: ["https://*.test"] } }, "network"],
      [{ permissions: { network: ["http://api.example.test"] } }, "network"],
      [{ permissions: { secrets: [{ name: "OTHER", origin: "https://api.example.test", header: "x-key" }], network: ["https://api.example.test"] } }, "secrets"],
      [{ permissions: { tools: ["content.get"] } }, "tools"],
      [{ limits: { cpuMs: 500 } }, "limits.cpuMs"],
    ];
    for (const [extra, permission] of cases) {
      assert.throws(() => manifestToWorkerCode(parseManifest(manifest(extra)), code, grants, { dataDir }),
        (e: unknown) => e instanceof ManifestGrantError && e.permission === permission, JSON.stringify(extra));
    }
    const narrow = { network: [{ origin: "https://api.example.test", methods: ["GET"] }] };
    assert.throws(() => manifestToWorkerCode(parseManifest(manifest({ permissions: { network: [{ origin: "https://api.example.test", methods: ["GET", "POST"] }] } })), code, narrow),
      (e: unknown) => e instanceof ManifestGrantError && e.permission === "network");
    assert.throws(() => manifestToWorkerCode(parseManifest(manifest({ permissions: { workspace: "read-write" } })), code, { workspace: "read" }),
      (e: unknown) => e instanceof ManifestGrantError && e.permission === "workspace");
    assert.throws(() => manifestToWorkerCode(parseManifest(manifest({ permissions: { kv: ["CACHE"] } })), code, {}),
      (e: unknown) => e instanceof ManifestGrantError && e.permission === "kv");
  });
});

describe("diffManifests", () => {
  const base = manifest({
    permissions: { network: [{ origin: "https://api.example.test", methods: ["GET"] }], workspace: "read", kv: ["CACHE"], tools: ["content.get"] },
    limits: { cpuMs: 50 },
    hooks: { "content:beforeSave": true },
  });
  const v2 = (permissions: object, extra: Partial<PluginManifestInput> = {}) =>
    ({ ...base, version: "2.0.0", permissions: { ...base.permissions, ...permissions }, ...extra }) as PluginManifestInput;
  const cases: { name: string; next: PluginManifestInput; changes: [string, string, string][]; widens: boolean }[] = [
    { name: "nothing", next: v2({}), changes: [], widens: false },
    { name: "a new origin", next: v2({ network: [{ origin: "https://api.example.test", methods: ["GET"] }, "https://cdn.example.test"] }), changes: [["added", "network", "https://cdn.example.test"]], widens: true },
    { name: "a wider method set", next: v2({ network: [{ origin: "https://api.example.test", methods: ["GET", "POST"] }] }), changes: [["widened", "network", "https://api.example.test"]], widens: true },
    { name: "every method", next: v2({ network: ["https://api.example.test"] }), changes: [["widened", "network", "https://api.example.test"]], widens: true },
    { name: "a wildcard over the old origin", next: v2({ network: [{ origin: "https://*.example.test", methods: ["GET"] }] }), changes: [["added", "network", "https://*.example.test"]], widens: true },
    { name: "an origin removed", next: v2({ network: [] }), changes: [["removed", "network", "https://api.example.test"]], widens: false },
    { name: "read to read-write", next: v2({ workspace: "read-write" }), changes: [["widened", "workspace", "workspace"]], widens: true },
    { name: "read to none", next: v2({ workspace: "none" }), changes: [["narrowed", "workspace", "workspace"]], widens: false },
    { name: "a new store", next: v2({ kv: ["CACHE", "SESSIONS"], sql: ["DB"] }), changes: [["added", "kv", "SESSIONS"], ["added", "sql", "DB"]], widens: true },
    { name: "a new tool, one dropped", next: v2({ tools: ["content.put"] }), changes: [["added", "tools", "content.put"], ["removed", "tools", "content.get"]], widens: true },
    {
      name: "a new secret", next: v2({ network: [{ origin: "https://api.example.test", methods: ["GET"] }], secrets: [{ name: "TOKEN", origin: "https://api.example.test", header: "authorization" }] }),
      changes: [["added", "secrets", "TOKEN → https://api.example.test (authorization)"]], widens: true,
    },
    { name: "a raised limit", next: v2({}, { limits: { cpuMs: 500 } }), changes: [["widened", "limits.cpuMs", "limits.cpuMs"]], widens: true },
    { name: "a lowered limit", next: v2({}, { limits: { cpuMs: 10 } }), changes: [["narrowed", "limits.cpuMs", "limits.cpuMs"]], widens: false },
    { name: "a limit left to the host's default", next: v2({}, { limits: {} }), changes: [["widened", "limits.cpuMs", "limits.cpuMs"]], widens: true },
    { name: "a new hook", next: v2({}, { hooks: { "content:beforeSave": true, "content:afterDelete": { priority: 5 } } }), changes: [["added", "hooks", "content:afterDelete"]], widens: true },
    { name: "a new route", next: v2({}, { routes: ["/feed.xml"] }), changes: [["added", "routes", "/feed.xml"]], widens: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = diffManifests(parseManifest(base), parseManifest(c.next));
      assert.deepEqual(d.changes.map((x) => [x.kind, x.permission, x.target]), c.changes);
      assert.equal(d.widens, c.widens);
      assert.equal(d.from, "1.0.0");
      assert.equal(d.to, "2.0.0");
    });
  }

  test("the printable form names each change with its before and after", () => {
    const d = diffManifests(parseManifest(base), parseManifest(v2({ workspace: "read-write", network: [{ origin: "https://api.example.test", methods: ["GET", "POST"] }] })));
    const text = formatManifestDiff(d);
    assert.match(text, /^demo 1\.0\.0 → 2\.0\.0: asks for more \(needs approval\)$/m);
    assert.match(text, /^↑ widened {2}network https:\/\/api\.example\.test: GET → GET, POST$/m);
    assert.match(text, /^↑ widened {2}workspace: read → read-write$/m);
  });
});
