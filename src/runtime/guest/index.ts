/**
 * The guest runtime, made ready in every fresh isolate ahead of time (in the pool): `prepare()` installs
 * the Web APIs and removes ambient authority, `warmUp()` gets V8 to compile the request path, and
 * `bind()` attaches the executor's hooks and returns its private handle. The first two can run once into
 * a V8 snapshot. Nothing here is reachable from guest code except the Web APIs it installs.
 */
import { installFrozenDate, installPerformance, setTimeOrigin } from "./clock.ts";
import { installCrypto } from "./crypto.ts";
import { installSubtle } from "./subtle.ts";
import { installStructuredClone } from "./structured-clone.ts";
import { clearAllTimers, installTimers } from "./timers.ts";
import { installConsole } from "./console.ts";
import { installWebGlobals } from "./web-globals.ts";
import { installCloudflareWorkers } from "./cloudflare-workers.ts";
import { awaitOutcome, dispatch, drain, hasPendingWork, setEnv, setMain, waitUntil } from "./dispatch.ts";
import { setActor, type ActorStart } from "./actor.ts";
import { Request, Response } from "./fetch-api.ts";
import { installFetchApi } from "./fetch-api.ts";
import { installUrl } from "./url.ts";
import { compileWasm, disableCodeGeneration, guardWebAssembly, harden, removeSharedMemory } from "./hardening.ts";
import { setHooks, type HostHooks } from "./hooks.ts";
import { guardLargeBuilders } from "./memory-guards.ts";
import { settle } from "./host-calls.ts";
import { fetchThrough, materializeEnv } from "./capabilities.ts";

export interface StartOptions {
  flags: string[];
  env: Record<string, unknown>;
  now: number;
  /** The capability id of globalOutbound, if the worker has one. */
  outbound?: number;
  /** Set when this isolate hosts a durable actor. */
  actor?: ActorStart;
}

const g = globalThis;

/** Blobs (`{ data }`, `{ wasm }` modules) handed over before instantiation, read once by their module. */
const BLOBS_KEY = "mayfly.blobs";

/** Installs the Web APIs and removes ambient authority. Needs no hooks, so it can run into a snapshot. */
export function prepare(): void {
  installConsole(g);
  installWebGlobals(g);
  installFetchApi(g);
  installUrl(g);
  installFrozenDate(g);
  installPerformance(g);
  installTimers(g);
  installCrypto(g);
  installSubtle(g);
  installStructuredClone(g);
  harden(g);
  guardLargeBuilders();
}

/**
 * Attaches this isolate's hooks and returns the executor's handle. Shared memory and WebAssembly are
 * dealt with here rather than in prepare(): V8 adds them to each context it restores from a snapshot.
 */
export function bind(log: HostHooks["log"], reserve: HostHooks["reserve"], call: HostHooks["call"], start: HostHooks["start"]) {
  setHooks({ log, reserve, call, start });
  removeSharedMemory(g);
  guardWebAssembly(g);
  return handle;
}

/**
 * Runs the request path once on a handler of our own, so V8 compiles it here, ahead of time, and not
 * lazily during the first real request (which cost ~1.5 ms per fresh isolate). No guest code has run
 * yet, and the state it touches is reset by start().
 */
export function warmUp(): void {
  setMain({ default: { fetch: async (r: Request) => Response.json({ url: r.url, body: await r.text() }, { headers: { "x-warm": "1" } }) } });
  void dispatch({ kind: "fetch", entrypoint: null, props: undefined, request: { url: "http://warm.up/", method: "POST", headers: [["content-type", "text/plain"]], body: new Uint8Array([104, 105]) } }, 0, 0).then(() => awaitOutcome(0));
  void dispatch({ kind: "rpc", entrypoint: null, props: undefined, method: "missing", args: [] }, 0, -1).then(() => awaitOutcome(-1));
  setMain({});
}

/**
 * Only ever runs in the snapshot builder's throwaway context (never in one a worker gets): goes through
 * everything a request does (bind, start, a fetch and an RPC dispatch, endRun) with inert hooks, so V8
 * compiles those functions once, into the snapshot, instead of lazily in every fresh isolate.
 */
export function rehearse(): void {
  const inert = { ok: true, value: undefined };
  bind(() => true, () => true, () => inert, () => inert);
  handle.start({ flags: [], env: { TEXT: "x" }, now: 0 });
  warmUp();
  setMain({ default: { fetch: (r: Request) => (console.log(r.method, r.url), new Response(`text ${r.headers.get("content-type")}`)) } });
  void dispatch({ kind: "fetch", entrypoint: null, props: undefined, request: { url: "http://warm.up/a?b=c", method: "GET", headers: [["accept", "*/*"]], body: null } }, 0, 0).then(() => awaitOutcome(0));
  setMain({});
  hasPendingWork();
  clearAllTimers();
}

/** The executor's private handle on this isolate. */
const handle = {
  /** Binds the worker's env and flags. Called once, after the isolate is taken, before guest code. */
  start(opts: StartOptions): void {
    const env = materializeEnv(opts.env);
    setEnv(env);
    setTimeOrigin(opts.now);
    installCloudflareWorkers(env);
    setActor(opts.actor, waitUntil);
    const outbound = opts.outbound;
    if (outbound !== undefined) {
      // Every global fetch() goes to the gateway the host granted; none reaches a socket from here.
      Object.defineProperty(g, "fetch", {
        value: function fetch(input: unknown, init?: unknown) {
          return fetchThrough(outbound, input, init);
        },
        writable: true,
        configurable: true,
      });
    }
    if (!opts.flags.includes("allow_eval")) disableCodeGeneration(g);
  },
  /** Makes a `{ data }` or `{ wasm }` module's value available to its synthesized module source. */
  putBlob(key: string, type: "data" | "wasm", bytes: Uint8Array): void {
    const store = ((g as Record<symbol, Record<string, unknown>>)[Symbol.for(BLOBS_KEY)] ??= {});
    store[key] = type === "wasm" ? compileWasm(bytes) : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  },
  setMain,
  dispatch,
  awaitOutcome,
  settle,
  hasPendingWork,
  drain,
  /** The run is over (the executor has cancelled its host tasks): forget local timer state. */
  endRun: clearAllTimers,
};
