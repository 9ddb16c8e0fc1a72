import { test } from "node:test";
import assert from "node:assert/strict";
import { ScriptsHeld, ScriptsSent } from "./script-transfer.ts";
import type { WorkerSpec } from "./protocol.ts";

const spec = (hash: string, content: string): WorkerSpec => ({
  mainModule: "main.js", env: {}, compatibilityFlags: [], limits: {} as WorkerSpec["limits"],
  modules: [{ name: "main.js", type: "esm", content: "export default {}" }, { name: "_npm/packages.js", type: "script", content, hash }],
});

test("a script crosses once; later specs carry its hash and the executor fills the source back in", () => {
  const sent = new ScriptsSent(), held = new ScriptsHeld();
  const first = sent.prepare(spec("a", "A".repeat(10)));
  assert.equal(first.spec.modules[1]!.content, "A".repeat(10));
  held.restore(first.spec);
  const second = sent.prepare(spec("a", "A".repeat(10)));
  assert.equal(second.spec.modules[1]!.content, "");
  assert.equal(held.restore(second.spec).modules[1]!.content, "A".repeat(10));
});

test("past the byte budget the least recently used script is forgotten on both sides, never the one being sent", () => {
  const sent = new ScriptsSent(), held = new ScriptsHeld();
  const big = (c: string) => c.repeat(40 * 1024 * 1024);
  held.restore(sent.prepare(spec("a", big("a"))).spec);
  const b = sent.prepare(spec("b", big("b")));
  assert.deepEqual(b.forget, ["a"]);
  held.forget(b.forget);
  held.restore(b.spec);
  assert.throws(() => held.restore({ ...spec("a", ""), modules: [spec("a", "").modules[1]!] }), /does not hold/);
  // "a" is sent whole again, and "b" (least recently used now) makes room.
  const again = sent.prepare(spec("a", big("a")));
  assert.equal(again.spec.modules[1]!.content.length, 40 * 1024 * 1024);
  assert.deepEqual(again.forget, ["b"]);
});
