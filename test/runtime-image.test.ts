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

    test("nothing of the snapshot's rehearsal (a request run while it was built) reaches a worker", async () => {
      const l = new WorkerLoader({ executors: 1, snapshot });
      try {
        // The rehearsal bound inert hooks, an env { TEXT }, a main module and blocked eval, in V8's
        // throwaway context: none of it may show in the context a worker gets.
        const stub = l.load(worker(`export default { fetch(r, env) {
          console.log("seen");
          return Response.json({ env: Object.keys(env), evaluated: eval("6 * 7") }) } }`, { env: { OWN: true }, compatibilityFlags: ["allow_eval"] }));
        const res = await stub.getEntrypoint().fetch("http://w/");
        assert.deepEqual(await res.json(), { env: ["OWN"], evaluated: 42 });
        const rpc = l.load(worker(`export default { fetch() { return new Response("x") } }`));
        await assert.rejects(() => (rpc.getEntrypoint() as unknown as { missing(): Promise<unknown> }).missing(), /missing/);
      } finally {
        await l.close();
      }
    });
  });
}
