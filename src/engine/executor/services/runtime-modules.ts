import type { LazyModuleName } from "../../../runtime/guest/lazy-modules.ts";
import type { Service } from "./index.ts";

let sources: Partial<Record<LazyModuleName, string>> = {};

/** Set once at executor start with the lazy modules built beside the runtime script. */
export function setRuntimeModules(modules: Record<LazyModuleName, string>): void {
  sources = modules;
}

/** Serves the runtime's lazy modules (guest/lazy-modules.ts): sources mayfly built, by fixed name only. */
export const runtimeModules: Service = {
  sync: {
    module(_state, name: string) {
      const source = Object.hasOwn(sources, name) ? sources[name as LazyModuleName] : undefined;
      if (source === undefined) throw Object.assign(new Error(`No runtime module named ${name}`), { name: "TypeError" });
      return source;
    },
  },
};
