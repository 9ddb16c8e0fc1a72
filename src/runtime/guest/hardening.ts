import { host } from "./hooks.ts";

/** Cloudflare's own words, so code (and people) that match on them keep working. */
export const NO_GLOBAL_OUTBOUND =
  "This worker is not permitted to access the internet via global functions like fetch(). " +
  "It must use capabilities (such as bindings in the 'env' object) instead.";

const NO_CODEGEN = "Code generation from strings disallowed for this context";

/** Kept by harden() before it deletes the global, to recognize shared buffers Wasm could still hand out. */
let SharedArrayBufferPrototype: object | undefined;
const NO_WASM_CODEGEN = "Wasm code generation disallowed by embedder";

/**
 * Removes every ambient authority and side channel a bare V8 context carries. Runs before guest code.
 * Code generation is disabled separately (per worker), since a compatibility flag may allow it.
 */
export function harden(g: typeof globalThis): void {
  guardArrayBuffers(g);
  Object.defineProperty(g, "fetch", {
    value: function fetch() {
      return Promise.reject(new Error(NO_GLOBAL_OUTBOUND));
    },
    writable: true,
    configurable: true,
  });
}

/**
 * Shared memory enables high-resolution timers (Spectre) and cross-run channels; Workers omit it.
 * Done per isolate, not in prepare(): V8 re-adds these globals while bootstrapping a context restored
 * from a snapshot, and aborts if they were deleted in the snapshot.
 */
export function removeSharedMemory(g: typeof globalThis): void {
  SharedArrayBufferPrototype ??= (g as { SharedArrayBuffer?: { prototype: object } }).SharedArrayBuffer?.prototype;
  delete (g as Record<string, unknown>).SharedArrayBuffer;
  delete (g as Record<string, unknown>).Atomics;
}

/**
 * eval and every Function-like constructor (plain, async, generator, async generator) are replaced by
 * stand-ins that throw EvalError, so `x.constructor.constructor("...")` reaches nothing. `instanceof`
 * keeps working because the stand-ins share the original prototypes.
 */
export function disableCodeGeneration(g: typeof globalThis): void {
  const prototypes = [
    Function.prototype,
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function* () {}),
  ];
  for (const proto of prototypes) {
    const original = proto.constructor as Function;
    const standIn = function () {
      throw new EvalError(NO_CODEGEN);
    };
    Object.defineProperties(standIn, {
      prototype: { value: proto },
      name: { value: original.name },
    });
    Object.defineProperty(proto, "constructor", { value: standIn, writable: false, configurable: false });
    if (proto === Function.prototype) Object.defineProperty(g, "Function", { value: standIn, writable: true, configurable: true });
  }
  Object.defineProperty(g, "eval", {
    value: function eval_() {
      throw new EvalError(NO_CODEGEN);
    },
    writable: true,
    configurable: true,
  });
}

/**
 * V8's heap limit does not count a resizable ArrayBuffer's reservation, which can grow to gigabytes
 * after the check. Its whole `maxByteLength` is charged up front against the run's memory budget.
 */
function guardArrayBuffers(g: typeof globalThis): void {
  const Original = ArrayBuffer;
  const Guarded = function (this: unknown, length: number, options?: { maxByteLength?: number }) {
    if (!new.target) throw new TypeError("Constructor ArrayBuffer requires 'new'");
    // Read the option once and pass on the copy: a getter must not show the check one value and V8 another.
    const max = options == null ? undefined : options.maxByteLength;
    if (max === undefined) return Reflect.construct(Original, [length], new.target);
    const maxByteLength = Number(max);
    if (!host().reserve(maxByteLength, "resizable ArrayBuffer")) {
      throw new RangeError("Array buffer allocation failed: memory limit exceeded");
    }
    return Reflect.construct(Original, [length, { maxByteLength }], new.target);
  } as unknown as ArrayBufferConstructor;
  Object.setPrototypeOf(Guarded, Original);
  Object.defineProperties(Guarded, {
    prototype: { value: Original.prototype },
    name: { value: "ArrayBuffer" },
  });
  Object.defineProperty(Original.prototype, "constructor", { value: Guarded, writable: true, configurable: true });
  Object.defineProperty(g, "ArrayBuffer", { value: Guarded, writable: true, configurable: true });
  // transfer() may carry a resizable buffer's reservation over to a new buffer of a larger size.
  const transfer = Original.prototype.transfer;
  if (transfer) {
    Object.defineProperty(Original.prototype, "transfer", {
      value: function (this: ArrayBuffer, newLength?: number) {
        if (this.resizable && !host().reserve(this.maxByteLength, "resizable ArrayBuffer")) {
          throw new RangeError("Array buffer allocation failed: memory limit exceeded");
        }
        return transfer.call(this, newLength);
      },
      writable: true,
      configurable: true,
    });
  }
}

const WASM_PAGE = 65536;

/**
 * Wasm memory lives outside the JS heap, so it is charged explicitly: a Memory's maximum (or its
 * initial size when growth is capped per process by --wasm-max-mem-pages) when created, and an
 * instance's own memory when instantiated. Compiling Wasm from bytes at run time is refused, as on
 * Workers: Wasm arrives as a `{ wasm }` module, compiled by mayfly before guest code runs.
 */
export function guardWebAssembly(g: typeof globalThis): void {
  const W = (g as { WebAssembly?: typeof WebAssembly }).WebAssembly;
  if (!W) return;
  const { Memory, Instance, Module } = W;
  OriginalModule = Module;
  const GuardedMemory = function (this: unknown, desc: WebAssembly.MemoryDescriptor) {
    if (!new.target) throw new TypeError("WebAssembly.Memory must be invoked with 'new'");
    if (desc == null || typeof desc !== "object") throw new TypeError("WebAssembly.Memory(): Argument 0 must be a memory descriptor");
    // One read of each field, checked and passed on as a copy (no getter gets a second say).
    const shared = desc.shared;
    if (shared) throw new TypeError("Shared WebAssembly.Memory is not available");
    const initial = desc.initial;
    const maximum = desc.maximum;
    const copy: WebAssembly.MemoryDescriptor = maximum === undefined ? { initial } : { initial, maximum };
    const pages = Number(maximum ?? initial ?? 0);
    if (!host().reserve(pages * WASM_PAGE, "WebAssembly.Memory")) throw new RangeError("WebAssembly.Memory(): could not allocate memory");
    return Reflect.construct(Memory, [copy], new.target);
  };
  GuardedMemory.prototype = Memory.prototype;
  const chargeInstance = (instance: WebAssembly.Instance) => {
    for (const value of Object.values(instance.exports)) {
      if (!(value instanceof Memory)) continue;
      // A module's own shared memory would hand out a SharedArrayBuffer, which Workers do not offer.
      if (SharedArrayBufferPrototype && Object.getPrototypeOf(value.buffer) === SharedArrayBufferPrototype) {
        throw new WebAssembly.LinkError("WebAssembly.Instance(): shared memory is not available");
      }
      if (!host().reserve(value.buffer.byteLength, "WebAssembly instance memory")) {
        throw new RangeError("WebAssembly.Instance(): could not allocate memory");
      }
    }
    return instance;
  };
  const GuardedInstance = function (this: unknown, module: WebAssembly.Module, imports?: WebAssembly.Imports) {
    if (!new.target) throw new TypeError("WebAssembly.Instance must be invoked with 'new'");
    return chargeInstance(Reflect.construct(Instance, [module, imports], new.target));
  };
  GuardedInstance.prototype = Instance.prototype;
  const refuseBytes = () => {
    throw new W.CompileError(NO_WASM_CODEGEN);
  };
  const GuardedModule = function () {
    refuseBytes();
  };
  GuardedModule.prototype = Module.prototype;
  for (const key of ["exports", "imports", "customSections"] as const) {
    (GuardedModule as unknown as Record<string, unknown>)[key] = Module[key];
  }
  Object.defineProperty(Memory.prototype, "constructor", { value: GuardedMemory, configurable: true, writable: true });
  Object.defineProperty(Instance.prototype, "constructor", { value: GuardedInstance, configurable: true, writable: true });
  Object.defineProperty(Module.prototype, "constructor", { value: GuardedModule, configurable: true, writable: true });
  W.Memory = GuardedMemory as unknown as typeof Memory;
  W.Instance = GuardedInstance as unknown as typeof Instance;
  W.Module = GuardedModule as unknown as typeof Module;
  W.compile = async () => refuseBytes();
  W.validate = () => refuseBytes();
  W.compileStreaming = async () => refuseBytes();
  W.instantiateStreaming = async () => refuseBytes();
  W.instantiate = async function (source: unknown, imports?: WebAssembly.Imports) {
    if (!(source instanceof Module)) refuseBytes();
    return chargeInstance(new Instance(source as WebAssembly.Module, imports));
  } as typeof WebAssembly.instantiate;
}

/** The original Wasm compiler, kept by guardWebAssembly before it hides it from guest code. */
let OriginalModule: typeof WebAssembly.Module | undefined;

/** Compiles a `{ wasm }` module's bytes (mayfly's own step, before any guest code runs). */
export function compileWasm(bytes: Uint8Array): WebAssembly.Module {
  if (!OriginalModule) throw new Error("WebAssembly is not available in this isolate");
  return new OriginalModule(bytes as Uint8Array<ArrayBuffer>);
}
