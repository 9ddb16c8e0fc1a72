import { DataCloneError } from "../errors.ts";
import { asCapability, nestedCapabilityError, type CapabilityTable } from "../bindings/capability.ts";

/**
 * The env the worker receives: plain data is checked for cloning; each top-level binding (rpc(),
 * a fetcher, another worker's entrypoint) is entered in the worker's capability table and replaced
 * by its descriptor, which the runtime turns into a stub.
 */
export function bindEnv(env: Record<string, unknown>, table: CapabilityTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) {
    const cap = asCapability(value, `env.${key}`);
    if (cap) {
      out[key] = table.add(cap);
    } else {
      check(value, `env.${key}`, new Set());
      out[key] = value;
    }
  }
  return out;
}

/**
 * `env` crosses into the isolate by structured clone. Node's structuredClone silently turns a class
 * instance into a plain object and drops its methods; a worker author would then debug a binding that
 * "has no methods". So anything that would not arrive as itself is refused here, at load(), by path.
 */
const CLONEABLE_CLASSES: Function[] = [
  Date, RegExp, ArrayBuffer, DataView, Map, Set, Error, Boolean, Number, String, BigInt,
  Object.getPrototypeOf(Uint8Array) as Function,
];

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "function":
      if (asCapability(value, path)) throw nestedCapabilityError(path);
      throw new DataCloneError(`Could not serialize ${path}: a function cannot be cloned into a worker's env. Wrap host objects in a binding instead.`);
    case "symbol":
      throw new DataCloneError(`Could not serialize ${path}: a Symbol cannot be cloned.`);
    case "object": {
      if (value === null || seen.has(value)) return;
      seen.add(value);
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null || Array.isArray(value)) {
        for (const [k, v] of Object.entries(value)) check(v, `${path}.${k}`, seen);
        return;
      }
      if (asCapability(value, path)) throw nestedCapabilityError(path);
      if (!CLONEABLE_CLASSES.some((c) => value instanceof (c as new () => object))) {
        const name = (proto?.constructor as { name?: string } | undefined)?.name ?? "object";
        throw new DataCloneError(`Could not serialize ${path}: an instance of class ${name} cannot be cloned (only plain data crosses into a worker's env).`);
      }
      if (value instanceof Map) {
        for (const [k, v] of value) { check(k, `${path}<key>`, seen); check(v, `${path}.get(${String(k)})`, seen); }
      } else if (value instanceof Set) {
        for (const v of value) check(v, `${path}<item>`, seen);
      }
      return;
    }
    default:
      return;
  }
}
