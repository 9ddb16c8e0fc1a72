import { capabilityCalls } from "../capability-calls.ts";
import type { Service } from "./index.ts";

/** Key in a ServiceState's store under which the executor records which worker instance it serves. */
export const INSTANCE_ID = "instanceId";
/** Keys for the run's subrequest budget (limits.subRequests) and what it has used. */
export const SUBREQUEST_LIMIT = "subRequestLimit";
export const SUBREQUESTS = "subRequests";

/** Calls to the worker's capabilities (bindings in env, globalOutbound), answered by the host. */
export const capabilities: Service = {
  async: {
    call(state, _ticket, capId: number, method: string, args: unknown[]) {
      const instanceId = state.store.get(INSTANCE_ID);
      if (typeof instanceId !== "number") return Promise.reject(Object.assign(new Error("No bindings in this isolate."), { name: "TypeError" }));
      if (method === "fetch") {
        // Every fetch through a binding or globalOutbound is a subrequest, as on Workers.
        const used = ((state.store.get(SUBREQUESTS) as number | undefined) ?? 0) + 1;
        const limit = (state.store.get(SUBREQUEST_LIMIT) as number | undefined) ?? Infinity;
        state.store.set(SUBREQUESTS, used);
        if (used > limit) {
          return Promise.reject(Object.assign(new Error(`Too many subrequests: this run may make at most ${limit}.`), { name: "EgressDeniedError" }));
        }
      }
      return capabilityCalls.request(instanceId, Number(capId), String(method), Array.isArray(args) ? args : []);
    },
  },
};
