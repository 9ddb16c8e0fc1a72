import { capabilityCalls } from "../capability-calls.ts";
import type { Service } from "./index.ts";

/** Key in a ServiceState's store under which the executor records which worker instance it serves. */
export const INSTANCE_ID = "instanceId";

/** Calls to the worker's capabilities (bindings in env, globalOutbound), answered by the host. */
export const capabilities: Service = {
  async: {
    call(state, _ticket, capId: number, method: string, args: unknown[]) {
      const instanceId = state.store.get(INSTANCE_ID);
      if (typeof instanceId !== "number") return Promise.reject(Object.assign(new Error("No bindings in this isolate."), { name: "TypeError" }));
      return capabilityCalls.request(instanceId, Number(capId), String(method), Array.isArray(args) ? args : []);
    },
  },
};
