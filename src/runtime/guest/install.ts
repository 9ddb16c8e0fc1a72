/**
 * Defines Web API globals as Web IDL does: writable, configurable, not enumerable. A class's `name`
 * is set to its global's name too, since the bundler may rename a class whose name another module
 * also uses (the built class would otherwise be named e.g. "Blob2").
 */
export function defineGlobals(g: typeof globalThis, values: Record<string, unknown>): void {
  for (const name of Object.keys(values)) {
    const value = values[name];
    if (typeof value === "function" && value.name !== name) Object.defineProperty(value, "name", { value: name, configurable: true });
    Object.defineProperty(g, name, { value, writable: true, enumerable: false, configurable: true });
  }
}
