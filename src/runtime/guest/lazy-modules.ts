/**
 * Large libraries the runtime needs only sometimes (the streams polyfill, fflate, urlpattern-polyfill)
 * are not part of the runtime script: each is fetched from the executor and evaluated on first use in
 * an isolate. Every fresh isolate then carries ~150 KB less source and compiled code (less memory per
 * isolate, a smaller snapshot), and only workers that use streams pay for them.
 */
import { callHost } from "./host-calls.ts";

/** The modules built apart from the runtime script (see runtime/index.ts). */
export type LazyModuleName = "web-streams" | "fflate" | "urlpattern";

/**
 * Captured when the runtime script runs, before hardening hides the Function constructor from guest
 * code; it compiles only sources the executor itself built from mayfly's dependencies.
 */
const compile = Function;

const loaded = new Map<LazyModuleName, unknown>();

export function loadModule<T>(name: LazyModuleName): T {
  let exports = loaded.get(name);
  if (exports === undefined) {
    const source = callHost<string>("runtime", "module", name);
    exports = (compile(source) as () => unknown)();
    loaded.set(name, exports);
  }
  return exports as T;
}
