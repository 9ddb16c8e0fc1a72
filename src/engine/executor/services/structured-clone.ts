import { deserialize, serialize } from "node:v8";
import type { Service } from "./index.ts";

/**
 * structuredClone for the guest. The value already crossed by copy (V8's serializer, the same
 * algorithm), so cloning it once more here gives the HTML structured clone semantics: what cannot be
 * cloned fails, as DataCloneError.
 */
export const structuredCloneService: Service = {
  sync: {
    clone(_state, value: unknown) {
      try {
        return deserialize(serialize(value));
      } catch (e) {
        const err = new Error((e as Error).message);
        err.name = "DataCloneError";
        throw err;
      }
    },
  },
};
