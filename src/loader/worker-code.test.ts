import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeWorkerCode } from "./worker-code.ts";
import { InvalidWorkerCodeError } from "../errors.ts";

const base = { compatibilityDate: "2025-06-01", mainModule: "a.js" };

test("module types normalize to one typed entry each", () => {
  const { modules } = normalizeWorkerCode({
    ...base,
    modules: { "a.js": "x", "b.mjs": { js: "y" }, "c.cjs": { cjs: "z" }, "d.txt": { text: "t" }, "e.bin": { data: new ArrayBuffer(2) }, "f.json": { json: [1] } },
  });
  assert.deepEqual(modules.map((m) => [m.name, m.type]), [["a.js", "esm"], ["b.mjs", "esm"], ["c.cjs", "cjs"], ["d.txt", "text"], ["e.bin", "data"], ["f.json", "json"]]);
  assert.ok(modules[4]!.content instanceof Uint8Array);
  assert.equal(modules[5]!.content, "[1]");
});

test("data modules are copied, so later changes by the caller do not leak in", () => {
  const bytes = new Uint8Array([1, 2]);
  const { modules } = normalizeWorkerCode({ ...base, modules: { "a.js": "", "b.bin": { data: bytes } } });
  bytes[0] = 9;
  assert.deepEqual([...(modules[1]!.content as Uint8Array)], [1, 2]);
});

test("unknown limit names and non-serializable json are refused", () => {
  assert.throws(() => normalizeWorkerCode({ ...base, modules: { "a.js": "" }, limits: { cpu: 1 } }), InvalidWorkerCodeError);
  assert.throws(() => normalizeWorkerCode({ ...base, modules: { "a.js": "", "b.json": { json: { n: 1n } } } }), /cannot be serialized/);
  assert.throws(() => normalizeWorkerCode({ ...base, modules: { "a.js": "" }, globalOutbound: {} }), /globalOutbound/);
});
