import { test } from "node:test";
import assert from "node:assert/strict";
import { requiredSpecifiers } from "./commonjs.ts";

test("require() specifiers are the string literals passed to require", () => {
  assert.deepEqual(requiredSpecifiers(`const a = require("./a"); const b = require( './b.cjs' ); require(name); xrequire("./no"); require("./a")`), ["./a", "./b.cjs"]);
});
