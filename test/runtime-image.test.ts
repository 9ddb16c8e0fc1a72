import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkerLoader } from "../src/index.ts";
import { fetchText, worker } from "./helpers.ts";

/** The same checks against both ways an executor prepares isolates (Hono-style: one suite, each implementation). */
for (const snapshot of [true, false]) {
  describe(`runtime prepared by ${snapshot ? "snapshot" : "evaluation"}`, () => {
    test("executors report the image they use, and workers behave the same", async () => {
      const l = new WorkerLoader({ executors: 1, snapshot });
      try {
        await l.ready();
        assert.deepEqual(l.engine.stats().executors.map((e) => e.runtime), [snapshot ? "snapshot" : "evaluate"]);
        const stub = l.load(worker(`export default { async fetch(r, env) {
          console.log("x");
          return Response.json({
            globals: [typeof process, typeof SharedArrayBuffer, typeof __mayfly_runtime, typeof WebAssembly.Memory],
            evalBlocked: (() => { try { eval("1"); return false } catch (e) { return e instanceof EvalError } })(),
            body: await r.text(), env: env.A, clockFrozen: Date.now() === new Date().getTime(),
          }) } }`, { env: { A: 1 } }));
        const res = await stub.getEntrypoint().fetch("http://w/", { method: "POST", body: "b" });
        assert.deepEqual(await res.json(), { globals: ["undefined", "undefined", "undefined", "function"], evalBlocked: true, body: "b", env: 1, clockFrozen: true });
        assert.equal(await fetchText(l.load(worker(`export default { fetch() { return new Response("again") } }`))), "again");
      } finally {
        await l.close();
      }
    });
  });
}
