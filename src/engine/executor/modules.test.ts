import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveSpecifier } from "./modules.ts";

const names = new Set(["main.ts", "lib/util.ts", "lib/index.js", "data.txt", "a/b/c.js"]);

test("relative specifiers resolve against the importing module's path", () => {
  assert.equal(resolveSpecifier("./lib/util.ts", "main.ts", names), "lib/util.ts");
  assert.equal(resolveSpecifier("../../main.ts", "a/b/c.js", names), "main.ts");
  assert.equal(resolveSpecifier("./data.txt", "main.ts", names), "data.txt");
});

test("TypeScript conventions: .js and extensionless specifiers find .ts modules, folders find index", () => {
  assert.equal(resolveSpecifier("./lib/util.js", "main.ts", names), "lib/util.ts");
  assert.equal(resolveSpecifier("./lib/util", "main.ts", names), "lib/util.ts");
  assert.equal(resolveSpecifier("./lib", "main.ts", names), "lib/index.js");
});

test("nothing outside the module set resolves; escaping the root fails", () => {
  assert.equal(resolveSpecifier("node:fs", "main.ts", names), undefined);
  assert.equal(resolveSpecifier("../main.ts", "main.ts", names), undefined);
  assert.equal(resolveSpecifier("cloudflare:workers", "main.ts", names), "cloudflare:workers");
});

test("CommonJS conventions: extensionless specifiers also find .cjs and .json", () => {
  const cjs = new Set(["m.cjs", "lib/util.cjs", "data.json"]);
  assert.equal(resolveSpecifier("./lib/util", "m.cjs", cjs), "lib/util.cjs");
  assert.equal(resolveSpecifier("./data", "m.cjs", cjs), "data.json");
});
