/**
 * The guest runtime: evaluated once in every fresh isolate (ahead of time, in the pool), it returns the
 * executor's private handle. Nothing here is reachable from guest code except the Web APIs it installs.
 */
import { installFrozenDate, setClock } from "./clock.ts";
import { installConsole } from "./console.ts";
import { installCloudflareWorkers } from "./cloudflare-workers.ts";
import { dispatch, setEnv, setMain } from "./dispatch.ts";
import { installFetchApi } from "./fetch-api.ts";
import { compileWasm, harden } from "./hardening.ts";
import { setHooks, type HostHooks } from "./hooks.ts";

export interface StartOptions {
  flags: string[];
  env: Record<string, unknown>;
  now: number;
}

const g = globalThis;
installConsole(g);
installFetchApi(g);

/** Blobs (`{ data }`, `{ wasm }` modules) handed over before instantiation, read once by their module. */
const BLOBS_KEY = "mayfly.blobs";

export const runtime = {
  /** Binds the run's hooks and env, then removes ambient authority. Called once, before guest code. */
  start(log: HostHooks["log"], reserve: HostHooks["reserve"], opts: StartOptions): void {
    setHooks({ log, reserve });
    setEnv(opts.env);
    setClock(opts.now);
    installFrozenDate(g);
    installCloudflareWorkers(opts.env);
    harden(g, { allowEval: opts.flags.includes("allow_eval") });
  },
  /** Makes a `{ data }` or `{ wasm }` module's value available to its synthesized module source. */
  putBlob(key: string, type: "data" | "wasm", bytes: Uint8Array): void {
    const store = ((g as Record<symbol, Record<string, unknown>>)[Symbol.for(BLOBS_KEY)] ??= {});
    store[key] = type === "wasm" ? compileWasm(bytes) : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  },
  setMain,
  dispatch,
};
