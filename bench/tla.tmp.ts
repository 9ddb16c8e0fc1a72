import ivm from "isolated-vm";
const isolate = new ivm.Isolate({ memoryLimit: 32 });
const context = isolate.createContextSync();
const jail = context.global;
await jail.set("later", new ivm.Reference((f: ivm.Reference<Function>) => setTimeout(() => f.applyIgnored(undefined, []), 20)));
for (const src of ["export const x = 1;", "const p = new Promise((r) => later.apply(undefined, [r], { arguments: { reference: true } })); await p; export const x = 2;"]) {
  const m = isolate.compileModuleSync(src);
  m.instantiateSync(context, () => { throw new Error("no"); });
  const r = m.evaluateSync({ reference: true } as never) as unknown;
  console.log("result", typeof r, r && (r as any).typeof);
  if (r && (r as any).typeof === "object") {
    const ns = m.namespace;
    await context.global.set("__p", r as never);
    const done = await context.eval("__p.then(() => 'resolved', (e) => 'rejected ' + e)", { promise: true });
    console.log("awaited:", done, await ns.get("x"));
  }
}
