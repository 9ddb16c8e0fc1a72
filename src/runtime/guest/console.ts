import { host } from "./hooks.ts";

const LEVELS = ["debug", "info", "log", "warn", "error", "trace"] as const;

/** Formats console arguments roughly as Node and workerd do: strings raw, the rest inspected as JSON. */
function format(args: unknown[]): string {
  return args.map(formatOne).join(" ");
}

function formatOne(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Error) return v.stack ?? `${v.name}: ${v.message}`;
  if (typeof v === "function") return `[Function: ${v.name || "anonymous"}]`;
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "symbol" || v === undefined) return String(v);
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

export function installConsole(g: typeof globalThis): void {
  const console: Record<string, (...args: unknown[]) => void> = {};
  for (const level of LEVELS) {
    console[level] = (...args: unknown[]) => {
      host().log(level, format(args));
    };
  }
  console.dir = console.log!;
  Object.defineProperty(g, "console", { value: console, writable: true, configurable: true });
}
