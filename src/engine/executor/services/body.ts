import { bodies } from "../body-streams.ts";
import type { Service } from "./index.ts";

/** Streamed request/response bodies (see body-streams.ts); the isolate's state is its ownership token. */
export const body: Service = {
  sync: {
    end(state, callId: number) {
      bodies.end(state, callId);
    },
    abort(state, callId: number, name: string, message: string) {
      bodies.abort(state, callId, { name: String(name), message: String(message) });
    },
  },
  async: {
    read(state, _ticket, callId: number) {
      return bodies.read(state, callId);
    },
    write(state, _ticket, callId: number, data: Uint8Array) {
      if (!(data instanceof Uint8Array)) return Promise.reject(Object.assign(new Error("Response body chunks must be bytes."), { name: "TypeError" }));
      return bodies.write(state, callId, data);
    },
  },
};
