import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  NodeBuiltinImportError, NpmNotEnabledError, PackageIntegrityError, PackageNotAllowedError, PackageResolveError, PackageBundleError,
  TypeCheckError, WorkerLoader, registryConfigFromEnvironment, type NpmOptions, type WorkerCode,
} from "../src/index.ts";
import { TestRegistry } from "./npm-registry.ts";
import { useTempDir } from "./helpers.ts";

const tmp = useTempDir("mayfly-npm-");
const execFileAsync = promisify(execFile);
const registry = new TestRegistry();
const marker = join(tmp, "postinstall-ran");
const loaders: WorkerLoader[] = [];

/** A loader granted npm from the test registry, with its own cache directory unless one is given. */
function npmLoader(npm: Partial<NpmOptions> = {}): WorkerLoader {
  const loader = new WorkerLoader({ executors: 1, poolSize: 1, npm: { registry: registry.url, cacheDir: mkdtempSync(join(tmp, "cache-")), ...npm } });
  loaders.push(loader);
  return loader;
}

function code(main: string, dependencies: Record<string, string>, extra: Partial<WorkerCode> = {}): WorkerCode {
  return { compatibilityDate: "2025-06-01", mainModule: "main.ts", modules: { "main.ts": main }, packageJson: { dependencies }, ...extra };
}

async function json(stub: ReturnType<WorkerLoader["load"]>): Promise<any> {
  const res = await stub.getEntrypoint().fetch("http://worker/");
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

before(async () => {
  await registry.start();
  // Real packages, packed from this repository's node_modules: zod (ESM), croner (ESM), and fflate,
  // whose `node` export imports worker_threads while its `browser` one does not.
  // date-fns and nanoid are the packages issue 11 names (nanoid's browser build uses crypto.getRandomValues).
  for (const name of ["zod", "croner", "fflate", "date-fns", "nanoid"]) await registry.publishDir(join(import.meta.dirname, "..", "node_modules", name));
  await registry.publishFiles({ name: "shout", version: "1.0.0", type: "module", main: "index.js" }, { "index.js": `export const shout = (s) => s.toUpperCase() + "!"; export const version = "1.0.0";` });
  await registry.publishFiles({ name: "shout", version: "1.1.0", type: "module", main: "index.js" }, { "index.js": `export const shout = (s) => s.toUpperCase() + "!!"; export const version = "1.1.0";` });
  await registry.publishFiles({ name: "greet", version: "2.0.0", type: "module", main: "index.js", dependencies: { shout: "^1.0.0" } }, {
    "index.js": `import { shout } from "shout"; export function greet(n) { return shout("hello " + n); }`,
  });
  await registry.publishFiles({ name: "old-shout-user", version: "1.0.0", type: "module", main: "index.js", dependencies: { shout: "1.0.0" } }, {
    "index.js": `export { version as oldShout } from "shout";`,
  });
  await registry.publishFiles({ name: "evil-pkg", version: "1.0.0", type: "module", main: "index.js" }, {
    "index.js": `export { read } from "./lib/x.js";`,
    "lib/x.js": `import { readFileSync } from "node:fs"; export const read = (p) => readFileSync(p, "utf8");`,
  });
  await registry.publishFiles({ name: "peeker", version: "1.0.0", type: "module", main: "index.js" }, {
    "index.js": `import secret from ${JSON.stringify(join(tmp, "host-secret.json"))}; export const leaked = secret;`,
  });
  writeFileSync(join(tmp, "host-secret.json"), JSON.stringify({ key: "s3cret" }));
  // Every lifecycle script npm would run on install writes the marker: none may run.
  const write = (what: string) => `node -e "require('fs').writeFileSync(${JSON.stringify(marker)}, '${what}')"`;
  await registry.publishFiles({
    name: "scripty", version: "1.0.0", type: "module", main: "index.js",
    scripts: { preinstall: write("preinstall"), install: write("install"), postinstall: write("postinstall"), prepare: write("prepare") },
  }, { "index.js": `export const ok = "scripty loaded";` });
  await registry.publishFiles({ name: "@acme/util", version: "0.1.0", type: "module", exports: { ".": "./index.js" } }, { "index.js": `export const acme = 42;` });
});

after(async () => {
  await Promise.all(loaders.map((l) => l.close()));
  await registry.stop();
});

describe("npm packages at load time", () => {
  test("zod, date-fns and nanoid, imported together, run in the worker", async () => {
    const loader = npmLoader();
    const stub = loader.load(code(`
      import { z } from "zod";
      import { addDays, formatISO } from "date-fns";
      import { nanoid } from "nanoid";
      const Body = z.object({ day: z.string() });
      export default {
        fetch() {
          const { day } = Body.parse({ day: "2026-12-07" });
          const id = nanoid(12);
          return Response.json({ next: formatISO(addDays(new Date(day + "T00:00:00Z"), 1), { representation: "date" }), idLength: id.length, idAlphabet: /^[A-Za-z0-9_-]+$/.test(id) });
        },
      };`, { zod: "^4.0.0", "date-fns": "^4.0.0", nanoid: "^6.0.0" }));
    assert.deepEqual(await json(stub), { next: "2026-12-08", idLength: 12, idAlphabet: true });
    const names = (await stub.npmReport())!.packages.map((p) => p.name).sort();
    assert.deepEqual(names, ["date-fns", "nanoid", "zod"]);
  });

  test("only the exports a worker imports are bundled; a namespace import takes the package whole", async () => {
    const loader = npmLoader();
    const named = loader.load(code(`import { addDays } from "date-fns";
      export default { fetch() { return Response.json(addDays(new Date(0), 2).getTime()) } };`, { "date-fns": "^4.0.0" }));
    const whole = loader.load(code(`import * as df from "date-fns";
      export default { fetch() { return Response.json([df.addDays(new Date(0), 2).getTime(), typeof df.formatISO, Object.keys(df).length > 200]) } };`, { "date-fns": "^4.0.0" }));
    assert.equal(await json(named), 2 * 86_400_000);
    assert.deepEqual(await json(whole), [2 * 86_400_000, "function", true]);
    const bytes = async (stub: ReturnType<WorkerLoader["load"]>) => (await stub.npmReport())!.packages.find((p) => p.name === "date-fns")!.bytes;
    const namedBytes = await bytes(named), wholeBytes = await bytes(whole);
    assert.ok(namedBytes < 20_000, `addDays alone: ${namedBytes} bytes`);
    assert.ok(wholeBytes > 10 * namedBytes, `all of date-fns: ${wholeBytes} bytes`);
  });

  test("a worker imports real npm packages from the registry, bundled on the host, and answers", async () => {
    const loader = npmLoader();
    const stub = loader.load(code(`
      import { z } from "zod";
      import { Cron } from "croner";
      import { gzipSync, gunzipSync, strToU8, strFromU8 } from "fflate";
      import { greet } from "greet";
      import { acme } from "@acme/util";
      const User = z.object({ name: z.string().min(2), age: z.number().int() });
      export default {
        fetch() {
          const ok = User.safeParse({ name: "Ada", age: 36 });
          const bad = User.safeParse({ name: "A", age: 1.5 });
          const next = new Cron("0 12 * * *", { timezone: "UTC" }).nextRun(new Date("2025-01-01T00:00:00Z"));
          const round = strFromU8(gunzipSync(gzipSync(strToU8("squeeze me"))));
          return Response.json({ ok: ok.success, issues: bad.success ? 0 : bad.error.issues.length, next: next?.toISOString(), round, greet: greet("ada"), acme });
        },
      };`, { zod: "^4.0.0", croner: "*", fflate: "^0.8.0", greet: "^2.0.0", "@acme/util": "0.1.0" }));
    assert.deepEqual(await json(stub), {
      ok: true, issues: 2, next: "2025-01-01T12:00:00.000Z", round: "squeeze me", greet: "HELLO ADA!!", acme: 42,
    });
    const report = (await stub.npmReport())!;
    assert.equal(report.cached, false);
    const byName = Object.fromEntries(report.packages.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(byName).sort(), ["@acme/util", "croner", "fflate", "greet", "shout", "zod"]);
    assert.equal(byName.shout!.version, "1.1.0", "the highest version in the range");
    assert.equal(byName.zod!.version, registry.packages.get("zod")!.keys().next().value);
    for (const p of report.packages) assert.ok(p.bytes > 0, `${p.name} contributed bytes`);
    assert.ok(report.bytes > 100_000);
    assert.ok(report.modules.includes("zod.js") && report.modules.includes("@acme/util.js"));
    // The lockfile to pin with: exact versions, the registry's tarball URL and its integrity.
    const locked = report.lockfile.packages["node_modules/shout"] as { version: string; resolved: string; integrity: string };
    assert.equal(locked.version, "1.1.0");
    assert.equal(locked.integrity, registry.packages.get("shout")!.get("1.1.0")!.integrity);
    assert.match(locked.resolved, /^http:\/\/127\.0\.0\.1:\d+\/shout\/-\/shout-1\.1\.0\.tgz$/);
  });

  test("a second load of the same code hits the disk cache: no registry request, not even from a new loader", async () => {
    const cacheDir = mkdtempSync(join(tmp, "shared-cache-"));
    const src = code(`import { greet } from "greet"; export default { fetch() { return Response.json(greet("x")) } };`, { greet: "^2.0.0" });
    const first = npmLoader({ cacheDir }).load(src);
    assert.equal(await json(first), "HELLO X!!");
    assert.equal((await first.npmReport())!.cached, false);
    const before = registry.requests.length;
    const again = npmLoader({ cacheDir }).load(src);
    assert.equal(await json(again), "HELLO X!!");
    assert.equal((await again.npmReport())!.cached, true);
    assert.deepEqual(registry.requests.slice(before), [], "no registry request the second time");
  });

  test("a lockfile is installed exactly, even where the range allows newer; the returned lockfile pins", async () => {
    const loader = npmLoader();
    const src = (lockfile?: unknown) => code(`import { greet } from "greet"; import { version } from "shout";
      export default { fetch() { return Response.json({ greet: greet("x"), version }) } };`, { greet: "^2.0.0", shout: "^1.0.0" }, lockfile ? { lockfile } : {});
    const floating = loader.load(src());
    assert.deepEqual(await json(floating), { greet: "HELLO X!!", version: "1.1.0" });
    const lock = structuredClone((await floating.npmReport())!.lockfile);
    const old = registry.packages.get("shout")!.get("1.0.0")!;
    lock.packages["node_modules/shout"] = { version: "1.0.0", resolved: `${registry.url}shout/-/shout-1.0.0.tgz`, integrity: old.integrity };
    const pinned = loader.load(src(JSON.stringify(lock)));
    assert.deepEqual(await json(pinned), { greet: "HELLO X!", version: "1.0.0" });
    assert.equal((await pinned.npmReport())!.packages.find((p) => p.name === "shout")!.version, "1.0.0");
  });

  test("two versions of one package: the root's is hoisted, the other nested under the package that needs it", async () => {
    const stub = npmLoader().load(code(`import { version } from "shout"; import { oldShout } from "old-shout-user";
      export default { fetch() { return Response.json({ version, oldShout }) } };`, { shout: "^1.1.0", "old-shout-user": "1.0.0" }));
    assert.deepEqual(await json(stub), { version: "1.1.0", oldShout: "1.0.0" });
    const lock = (await stub.npmReport())!.lockfile;
    assert.deepEqual(Object.keys(lock.packages).sort(), ["", "node_modules/old-shout-user", "node_modules/old-shout-user/node_modules/shout", "node_modules/shout"]);
  });

  test("a lockfile written by npm itself is installed as it is (devDependencies left out)", { timeout: 120_000 }, async () => {
    const project = mkdtempSync(join(tmp, "npm-project-"));
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "p", version: "1.0.0", dependencies: { greet: "^2.0.0", shout: "1.0.0" }, devDependencies: { scripty: "1.0.0" } }));
    // Asynchronously: the registry answering npm lives on this process's event loop.
    await execFileAsync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--registry", registry.url, "--cache", join(project, ".npm-cache")], { cwd: project, timeout: 100_000 });
    const lockfile = readFileSync(join(project, "package-lock.json"), "utf8");
    assert.match(lockfile, /"node_modules\/scripty"[^}]*"dev": true/);
    const stub = npmLoader({ allow: ["greet", "shout"] }).load(code(`import { greet } from "greet"; export default { fetch() { return Response.json(greet("npm")) } };`, { greet: "^2.0.0", shout: "1.0.0" }, { lockfile }));
    assert.equal(await json(stub), "HELLO NPM!", "greet uses the root shout@1.0.0 npm placed");
    assert.deepEqual((await stub.npmReport())!.packages.map((p) => `${p.name}@${p.version}`).sort(), ["greet@2.0.0", "shout@1.0.0"]);
  });

  test("a lockfile that does not satisfy package.json is refused", async () => {
    const loader = npmLoader();
    const lockfile = { lockfileVersion: 3, packages: { "": {}, "node_modules/shout": { version: "1.0.0", resolved: "", integrity: "sha512-x" } } };
    const stub = loader.load(code(`export default {}`, { shout: "^1.1.0" }, { lockfile }));
    await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof PackageResolveError && /shout@1\.0\.0.*\^1\.1\.0/.test(e.message));
  });

  test("a tampered tarball (integrity mismatch) is refused with PackageIntegrityError naming the package", async () => {
    const v = registry.packages.get("shout")!.get("1.1.0")!;
    registry.tampered.set("shout@1.1.0", Buffer.concat([v.tarball.subarray(0, -4), Buffer.from([1, 2, 3, 4])]));
    try {
      const stub = npmLoader().load(code(`import { shout } from "shout"; export default { fetch() { return new Response(shout("x")) } };`, { shout: "1.1.0" }));
      await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => {
        assert.ok(e instanceof PackageIntegrityError, `${e.name}: ${e.message}`);
        assert.equal(e.name, "PackageIntegrityError");
        assert.match(e.message, /shout@1\.1\.0/);
        assert.equal(e.package, "shout@1.1.0");
        return true;
      });
      await assert.rejects(stub.npmReport(), PackageIntegrityError);
    } finally {
      registry.tampered.delete("shout@1.1.0");
    }
  });

  test("a package that imports a Node built-in fails naming the import chain", async () => {
    const stub = npmLoader().load(code(`import { read } from "evil-pkg"; export default { fetch() { return new Response(read("/etc/passwd")) } };`, { "evil-pkg": "^1.0.0" }));
    await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => {
      assert.ok(e instanceof NodeBuiltinImportError, `${e.name}: ${e.message}`);
      assert.deepEqual(e.chain, ["evil-pkg/index.js", "evil-pkg/lib/x.js", "node:fs"]);
      assert.match(e.message, /evil-pkg\/index\.js -> evil-pkg\/lib\/x\.js -> node:fs/);
      return true;
    });
  });

  test("a package cannot bundle a host file from outside the installed tree", async () => {
    const stub = npmLoader().load(code(`import { leaked } from "peeker"; export default { fetch() { return Response.json(leaked) } };`, { peeker: "1.0.0" }));
    await assert.rejects(stub.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof PackageBundleError && /host-secret\.json/.test(e.message) && /outside the installed packages/.test(e.message));
  });

  test("allow: a dependency outside the list is refused before anything of it is fetched, transitive ones too", async () => {
    const loader = npmLoader({ allow: ["greet", "@acme/*"] });
    const before = registry.requests.length;
    const direct = loader.load(code(`import { z } from "zod"; export default {}`, { zod: "^4.0.0" }));
    await assert.rejects(direct.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof PackageNotAllowedError && /"zod"/.test(e.message) && /greet, @acme\/\*/.test(e.message));
    const transitive = loader.load(code(`import { greet } from "greet"; export default {}`, { greet: "^2.0.0" }));
    await assert.rejects(transitive.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof PackageNotAllowedError && /"shout" \(a dependency of greet@2\.0\.0\)/.test(e.message));
    assert.ok(!registry.requests.slice(before).some((p) => p.includes("zod") || p.includes("shout")), "nothing of a refused package was fetched");
    const scoped = loader.load(code(`import { acme } from "@acme/util"; export default { fetch() { return Response.json(acme) } };`, { "@acme/util": "*" }));
    assert.equal(await json(scoped), 42);
  });

  test("install scripts never run (preinstall, install, postinstall, prepare)", async () => {
    const stub = npmLoader().load(code(`import { ok } from "scripty"; export default { fetch() { return Response.json(ok) } };`, { scripty: "1.0.0" }));
    assert.equal(await json(stub), "scripty loaded");
    assert.equal(existsSync(marker), false, "no lifecycle script ran");
  });

  test("a packageJson on a loader without npm is refused synchronously", () => {
    const loader = new WorkerLoader({ executors: 1, poolSize: 1 });
    loaders.push(loader);
    assert.throws(() => loader.load(code(`export default {}`, { zod: "^4" })), (e: Error) => e instanceof NpmNotEnabledError && e.name === "NpmNotEnabledError" && /npm/.test(e.message));
  });

  test("typecheck sees the installed packages' own types", async () => {
    const loader = npmLoader();
    const main = (body: string) => code(`import { z } from "zod";\nconst User = z.object({ name: z.string() });\n${body}\nexport default { fetch() { return Response.json(u.name) } };`, { zod: "^4.0.0" }, { typecheck: true });
    const good = loader.load(main(`const u: { name: string } = User.parse({ name: "Ada" });`));
    assert.equal(await json(good), "Ada");
    const bad = loader.load(main(`const u: { name: number } = User.parse({ name: "Ada" });`));
    await assert.rejects(bad.getEntrypoint().fetch("http://w/"), (e: Error) => e instanceof TypeCheckError && /^main\.ts:3:7 TS2322/m.test(e.message));
  });

  test("an unreachable registry is a PackageResolveError within seconds", async () => {
    const started = Date.now();
    const loader = npmLoader({ registry: "http://127.0.0.1:9/" });
    await assert.rejects(loader.load(code(`export default {}`, { shout: "^1" })).npmReport(), (e: Error) => e instanceof PackageResolveError && /shout@\^1 could not be fetched: ECONNREFUSED/.test(e.message));
    assert.ok(Date.now() - started < 15_000);
  });

  test("unknown packages and git dependencies are resolve errors", async () => {
    const loader = npmLoader();
    await assert.rejects(loader.load(code(`export default {}`, { "no-such-pkg": "^1" })).npmReport(), (e: Error) => e instanceof PackageResolveError && /no-such-pkg/.test(e.message));
    await assert.rejects(loader.load(code(`export default {}`, { x: "github:a/b" })).npmReport(), (e: Error) => e instanceof PackageResolveError && /only registry/.test(e.message));
  });
});

describe("registry configuration, read at the front door", () => {
  test("npm_config_registry over the project's .npmrc over the user's", () => {
    const home = mkdtempSync(join(tmp, "home-"));
    const cwd = mkdtempSync(join(tmp, "proj-"));
    writeFileSync(join(home, ".npmrc"), "registry=https://user.example/\n@acme:registry=https://acme.example/\n");
    assert.equal(registryConfigFromEnvironment({ env: {}, home, cwd }).registry, "https://user.example/");
    writeFileSync(join(cwd, ".npmrc"), "registry=https://project.example/\n//project.example/:_authToken=${TOKEN}\n");
    const c = registryConfigFromEnvironment({ env: { TOKEN: "t0k" }, home, cwd });
    assert.equal(c.registry, "https://project.example/");
    assert.deepEqual(c.scopedRegistries, { "@acme": "https://acme.example/" });
    assert.deepEqual(c.registryAuth, { "//project.example/:_authToken": "t0k" });
    assert.equal(registryConfigFromEnvironment({ env: { npm_config_registry: "https://env.example/" }, home, cwd }).registry, "https://env.example/");
    mkdirSync(join(tmp, "empty"), { recursive: true });
    assert.equal(registryConfigFromEnvironment({ env: {}, home: join(tmp, "empty"), cwd: join(tmp, "empty") }).registry, "https://registry.npmjs.org/");
  });
});
