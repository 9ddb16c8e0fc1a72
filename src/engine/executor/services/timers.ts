import type { Service } from "./index.ts";

/** The longest a single timer may wait; the run's wall limit ends it long before in practice. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Pending host tasks per isolate: each holds a Node timer in the executor, so their number is capped. */
export const MAX_PENDING_TASKS = 10_000;

/**
 * Timers for the guest: `sleep` settles after the delay unless cancelled. The guest's setTimeout and
 * setInterval are built on it; cancelling every ticket at the end of a run is what guarantees that no
 * timer fires after the run ends.
 */
export const timers: Service = {
  sync: {
    cancel(state, ticket: number) {
      state.cancels.get(ticket)?.();
      state.cancels.delete(ticket);
    },
  },
  async: {
    sleep(state, ticket, ms: number) {
      if (state.cancels.size >= MAX_PENDING_TASKS) {
        return Promise.reject(Object.assign(new Error(`Too many pending timers (at most ${MAX_PENDING_TASKS}).`), { name: "RangeError" }));
      }
      const delay = Math.min(Math.max(0, Number(ms) || 0), MAX_DELAY_MS);
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        state.cancels.set(ticket, () => clearTimeout(timer));
      });
    },
  },
};
