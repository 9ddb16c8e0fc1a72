import ivm from "isolated-vm";

/** What a fresh isolate needs from the runtime: a context with the Web APIs and the executor's handle. */
export interface PreparedIsolate {
  isolate: ivm.Isolate;
  context: ivm.Context;
  handle: ivm.Reference<Record<string, unknown>>;
}

/** The executor's callbacks the runtime binds to (see runtime/guest/hooks.ts). */
export interface HookCallbacks {
  log: ivm.Callback;
  reserve: ivm.Callback;
  call: ivm.Callback;
  start: ivm.Callback;
  /**
   * V8 ran out of heap inside this isolate (one allocation larger than the room left, which the
   * near-heap-limit machinery never sees). isolated-vm then parks the isolate's thread for good
   * instead of aborting the process; the executor ends the run and is replaced once drained.
   */
  onCatastrophe: (message: string) => void;
}

export interface RuntimeImage {
  readonly kind: "snapshot" | "evaluate";
  /** `warm`: run the request path once so the first request is faster (~1.5 ms of CPU now, ~0.6 ms saved later). */
  create(memoryMb: number, hooks: HookCallbacks, warm?: boolean): PreparedIsolate;
}

const GLOBAL = "__mayfly_runtime";

/**
 * The runtime, prepared once and restored from a V8 snapshot into every isolate. The snapshot's
 * warm-up script rehearses a whole request (bind, start, fetch and RPC dispatch, endRun) in V8's
 * throwaway context, so the bytecode of everything a request runs is in the snapshot: without it each
 * fresh isolate compiled those functions again (~18% of an executor's CPU per request). Each isolate
 * then only runs bind() and, when the pool has slack, a warm-up of its inline caches.
 * isolated-vm calls snapshots unstable (deleting SharedArrayBuffer inside one made V8 abort while restoring), so the image is self-tested before use (see selectRuntimeImage), the
 * supervisor falls back to evaluation if an executor dies while starting, and the snapshot is only
 * ever built here, from our own code: none from outside is accepted.
 */
export class SnapshotImage implements RuntimeImage {
  readonly kind = "snapshot";
  private readonly snapshot: ivm.ExternalCopy<ArrayBuffer>;

  /** From the runtime's code, or from a blob `create()` made (here, or in a builder with the same V8 flags). */
  constructor(source: string | ivm.ExternalCopy<ArrayBuffer>) {
    this.snapshot = typeof source === "string" ? SnapshotImage.create(source) : source;
  }

  /**
   * The snapshot blob. `scripts` run after the runtime is prepared, and what they leave is part of
   * the image: a worker's npm bundle evaluated once instead of in every isolate (package-images.ts).
   */
  static create(runtimeCode: string, scripts: { code: string; filename: string }[] = [], warmUp = ""): ivm.ExternalCopy<ArrayBuffer> {
    return ivm.Isolate.createSnapshot(
      [{ code: `globalThis.${GLOBAL} = ${runtimeCode};\n${GLOBAL}.prepare();`, filename: "mayfly:runtime" }, ...scripts],
      `${GLOBAL}.rehearse();\n${warmUp}`,
    );
  }

  /** `mark(phase)` is called as each step ends (the benchmark's CPU breakdown; nothing else passes it). */
  create(memoryMb: number, hooks: HookCallbacks, warm = true, mark: (phase: string) => void = () => {}): PreparedIsolate {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb, snapshot: this.snapshot, onCatastrophicError: hooks.onCatastrophe });
    mark("isolate from snapshot");
    const context = isolate.createContextSync();
    mark("context from snapshot");
    const api = context.global.getSync(GLOBAL, { reference: true }) as ivm.Reference<Record<string, unknown>>;
    // Guest code must never find the setup API: it leaves the global object before anything else runs.
    context.global.deleteSync(GLOBAL);
    if (warm) call(api, "warmUp");
    mark("warm-up of the request path");
    const handle = bindHooks(api, hooks);
    mark("binding the executor's hooks");
    return { isolate, context, handle };
  }
}

/** Calls one of the runtime's setup functions. warmUp runs the request path once so this isolate's
 * inline caches are warm before the first real request (without it, that request took ~0.6 ms longer). */
function call(api: ivm.Reference<Record<string, unknown>>, name: "prepare" | "warmUp"): void {
  const fn = api.getSync(name, { reference: true }) as ivm.Reference<Function>;
  fn.applySync(undefined, []);
  fn.release();
}

/** The fallback: evaluate the runtime in each isolate (with V8's code cache), then prepare and warm it. */
export class EvaluatedImage implements RuntimeImage {
  readonly kind = "evaluate";
  private readonly code: string;
  private cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined;

  constructor(runtimeCode: string) {
    this.code = runtimeCode;
  }

  create(memoryMb: number, hooks: HookCallbacks, warm = true): PreparedIsolate {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: hooks.onCatastrophe });
    const context = isolate.createContextSync();
    const script = isolate.compileScriptSync(this.code, {
      filename: "mayfly:runtime",
      ...(this.cachedData ? { cachedData: this.cachedData } : { produceCachedData: true }),
    });
    const produced = (script as { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData;
    if (!this.cachedData && produced) this.cachedData = produced;
    const api = script.runSync(context, { reference: true }) as ivm.Reference<Record<string, unknown>>;
    script.release();
    call(api, "prepare");
    if (warm) call(api, "warmUp");
    return { isolate, context, handle: bindHooks(api, hooks) };
  }
}

function bindHooks(api: ivm.Reference<Record<string, unknown>>, hooks: HookCallbacks): ivm.Reference<Record<string, unknown>> {
  const bind = api.getSync("bind", { reference: true }) as ivm.Reference<Function>;
  const handle = bind.applySync(undefined, [hooks.log, hooks.reserve, hooks.call, hooks.start], { result: { reference: true } }) as ivm.Reference<Record<string, unknown>>;
  bind.release();
  api.release();
  return handle;
}

/**
 * Uses the snapshot when it restores a runtime that works (a request dispatched through a restored
 * isolate answers correctly, WebAssembly present and guarded), otherwise evaluates the runtime per isolate.
 */
export async function selectRuntimeImage(runtimeCode: string, preferSnapshot: boolean): Promise<{ image: RuntimeImage; fallbackReason?: string }> {
  const evaluated = new EvaluatedImage(runtimeCode);
  if (!preferSnapshot) return { image: evaluated, fallbackReason: "snapshot disabled by configuration" };
  try {
    const image = new SnapshotImage(runtimeCode);
    await selfTest(image);
    return { image };
  } catch (e) {
    return { image: evaluated, fallbackReason: `snapshot self-test failed: ${(e as Error)?.message ?? e}` };
  }
}

async function selfTest(image: RuntimeImage): Promise<void> {
  const lines: string[] = [];
  const log = new ivm.Callback((level: string, message: string) => (lines.push(`${level}:${message}`), true));
  const reserve = new ivm.Callback(() => true);
  const none = new ivm.Callback(() => ({ ok: false, error: { name: "Error", message: "no services in the self-test" } }));
  const { isolate, context, handle } = image.create(32, { log, reserve, call: none, start: none, onCatastrophe: () => {} });
  try {
    const probe = context.evalSync(`JSON.stringify([typeof globalThis.${GLOBAL}, typeof WebAssembly.Module, typeof SharedArrayBuffer, typeof Response, typeof Date.now(), (() => { try { new WebAssembly.Module(new Uint8Array(8)); return "compiled"; } catch (e) { return e.name; } })()])`);
    const expected = JSON.stringify(["undefined", "function", "undefined", "function", "number", "CompileError"]);
    if (probe !== expected) throw new Error(`restored runtime is not as built: ${probe}`);
    const setMain = handle.getSync("setMain", { reference: true }) as ivm.Reference<Function>;
    setMain.applySync(undefined, [context.evalSync(`({ default: { fetch: (r) => { console.log("t"); return new Response("ok " + r.url) } } })`, { reference: true }).derefInto()]);
    const dispatch = handle.getSync("dispatch", { reference: true }) as ivm.Reference<Function>;
    const inv = new ivm.ExternalCopy({ kind: "fetch", entrypoint: null, props: undefined, request: { url: "http://self.test/", method: "GET", headers: [], body: null } }).copyInto();
    const out = await dispatch.apply(undefined, [inv, 0], { result: { promise: true, copy: true } }) as { ok: boolean; value?: { status: number; body: Uint8Array } };
    const body = out.ok && out.value?.body ? Buffer.from(out.value.body).toString() : JSON.stringify(out);
    if (body !== "ok http://self.test/" || lines.join() !== "log:t") throw new Error(`restored runtime answered ${body} / ${lines.join()}`);
  } finally {
    isolate.dispose();
  }
}
