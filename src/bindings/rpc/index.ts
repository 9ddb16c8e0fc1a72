/**
 * The rpc binding: any host object (or function) placed in env through rpc(target) becomes a stub in
 * the worker. Calls cross by structured clone and return promises; a host error reaches the guest as
 * its name and message only (no host stack, no host paths); each call has a timeout.
 */
import { BINDING, callMethod, type Bindable, type Capability } from "../capability.ts";

export interface RpcOptions {
  /** Milliseconds a single call may take before the guest gets a TimeoutError (default 30 s). */
  timeoutMs?: number;
}

export class RpcBinding implements Bindable {
  readonly target: object | ((...args: any[]) => unknown);
  readonly timeoutMs: number;

  constructor(target: object | ((...args: any[]) => unknown), options: RpcOptions = {}) {
    if (target === null || (typeof target !== "object" && typeof target !== "function")) {
      throw new TypeError("rpc() takes an object or a function.");
    }
    this.target = target;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  [BINDING](): Capability {
    const { target, timeoutMs } = this;
    return {
      kind: "rpc",
      call: (method, args) => withTimeout(
        // A function binding is called directly ("call"); an object's methods by name.
        typeof target === "function" && method === "call" ? Promise.resolve().then(() => target(...args)) : callMethod(target, method, args, "rpc binding"),
        timeoutMs,
        method,
      ),
    };
  }
}

/** Wraps a host object or function as an env binding: `env: { USERS: rpc(usersService) }`. */
export function rpc(target: object | ((...args: any[]) => unknown), options?: RpcOptions): RpcBinding {
  return new RpcBinding(target, options);
}

function withTimeout<T>(work: Promise<T>, ms: number, method: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`RPC call ${method}() timed out after ${ms} ms.`), { name: "TimeoutError" })), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
