import { DataCloneError } from "../errors.ts";

/**
 * `env` crosses into the isolate by structured clone. Node's structuredClone silently turns a class
 * instance into a plain object and drops its methods; a worker author would then debug a binding that
 * "has no methods". So anything that would not arrive as itself is refused here, at load(), by path.
 */
export function assertCloneableEnv(env: Record<string, unknown> | undefined): void {
  if (!env) return;
  for (const [key, value] of Object.entries(env)) check(value, `env.${key}`, new Set());
}

const CLONEABLE_CLASSES: Function[] = [
  Date, RegExp, ArrayBuffer, DataView, Map, Set, Error, Boolean, Number, String, BigInt,
  Object.getPrototypeOf(Uint8Array) as Function,
];

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "function":
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
