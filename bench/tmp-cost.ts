import ivm from "isolated-vm";
import { buildRuntimeScript } from "../src/runtime/index.ts";
const code = buildRuntimeScript();
const G = "__mayfly_runtime";
const snap = ivm.Isolate.createSnapshot([{ code: `globalThis.${G} = ${code};\n${G}.prepare();`, filename: "r" }], `${G}.warmUp();`);
console.log("snapshot bytes", snap.copy().byteLength);
const ok = new ivm.Callback(() => true);
const N = 100;
const t: Record<string, number> = {};
const m = (k: string, f: () => any) => { const a = performance.now(); const r = f(); t[k] = (t[k] ?? 0) + performance.now() - a; return r; };
for (let i = 0; i < N; i++) {
  const iso = m("isolate", () => new ivm.Isolate({ memoryLimit: 128, snapshot: snap }));
  const ctx = m("context", () => iso.createContextSync());
  const api = m("get", () => { const a = ctx.global.getSync(G, { reference: true }); ctx.global.deleteSync(G); return a; }) as any;
  m("warmUp", () => api.getSync("warmUp", { reference: true }).applySync(undefined, []));
  m("bind", () => api.getSync("bind", { reference: true }).applySync(undefined, [ok, ok, ok, ok], { result: { reference: true } }));
  m("dispose", () => iso.dispose());
}
for (const [k, v] of Object.entries(t)) console.log(k, (v / N).toFixed(3));
