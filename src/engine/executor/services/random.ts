import { randomFillSync, randomUUID } from "node:crypto";
import type { Service } from "./index.ts";

/** Cryptographic randomness for crypto.getRandomValues / randomUUID (WebCrypto §10.1.1: at most 65536 bytes). */
export const random: Service = {
  sync: {
    bytes(_state, length: number) {
      if (!Number.isInteger(length) || length < 0 || length > 65536) {
        const err = new Error(`The ArrayBufferView's byte length (${length}) exceeds the number of bytes of entropy available via this API (65536)`);
        err.name = "QuotaExceededError";
        throw err;
      }
      return randomFillSync(new Uint8Array(length));
    },
    uuid() {
      return randomUUID();
    },
  },
};
