import { test } from "node:test";
import assert from "node:assert/strict";
import { PackageResolveError } from "../../errors.ts";
import { isAllowed, lockedEntries, nameOfPath, packageOfSpecifier, parseLockfile } from "./lockfile.ts";

test("allow matches names, whole scopes and *", () => {
  assert.equal(isAllowed("zod", undefined), true);
  assert.equal(isAllowed("zod", ["zod"]), true);
  assert.equal(isAllowed("zod-extra", ["zod"]), false);
  assert.equal(isAllowed("@acme/util", ["@acme/*"]), true);
  assert.equal(isAllowed("@acme-evil/util", ["@acme/*"]), false);
  assert.equal(isAllowed("anything", ["*"]), true);
  assert.equal(isAllowed("zod", []), false);
});

test("names from install paths and import specifiers", () => {
  assert.equal(nameOfPath("node_modules/a/node_modules/@s/b"), "@s/b");
  assert.equal(packageOfSpecifier("date-fns/format"), "date-fns");
  assert.equal(packageOfSpecifier("@s/b/x.js"), "@s/b");
});

test("a lockfile installs registry packages with exact versions and integrity only", () => {
  const lock = (entry: Record<string, unknown>, path = "node_modules/a") => parseLockfile({ packages: { "": {}, [path]: entry } });
  const ok = { version: "1.0.0", resolved: "https://r/a.tgz", integrity: "sha512-x" };
  assert.deepEqual(lockedEntries(lock(ok)).map(([p]) => p), ["node_modules/a"]);
  assert.deepEqual(lockedEntries(lock({ ...ok, dev: true })), [], "devDependencies are left out");
  for (const [entry, path, why] of [
    [{ ...ok, integrity: undefined }, "node_modules/a", /no integrity/],
    [{ ...ok, version: "^1.0.0" }, "node_modules/a", /no exact version/],
    [{ ...ok, link: true }, "node_modules/a", /link or an alias/],
    [{ ...ok, name: "b" }, "node_modules/a", /link or an alias/],
    [ok, "node_modules/../../etc", /not an install path/],
    [ok, "lib/a", /not an install path/],
  ] as const) {
    assert.throws(() => lockedEntries(lock(entry, path)), (e: Error) => e instanceof PackageResolveError && why.test(e.message), `${path} ${JSON.stringify(entry)}`);
  }
  assert.throws(() => parseLockfile("{not json"), PackageResolveError);
  assert.throws(() => parseLockfile({ lockfileVersion: 1, dependencies: {} }), /no "packages"/);
});
