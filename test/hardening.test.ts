/**
 * Escape probes: untrusted code looks for anything of the host (Node globals, code generation, host
 * objects through stack frames, shared memory, a real clock, the network, Node modules) and for ways to
 * hurt the host or its co-tenants through what crosses the boundary (hostile RPC values and errors,
 * poisoned built-ins, forged replies). Each test asserts what the guest finds: nothing.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ExecutorCrashedError, MemoryLimitError, WorkerLoader, type RunReport, type WorkerCode, type WorkerStub } from "../src/index.ts";

let loader: WorkerLoader;
const reports: RunReport[] = [];

before(async () => {
  loader = new WorkerLoader({ executors: 1, onRun: (r) => reports.push(r) });
  await loader.ready();
  // The first run of a process compiles the whole request path; keep that cost out of the tests.
  assert.equal(await text(load(`export default { fetch() { return new Response("warm") } }`)), "warm");
});
after(() => loader.close());

function load(main: string, extra: Partial<WorkerCode> = {}): WorkerStub {
  return loader.load({ compatibilityDate: "2025-06-01", mainModule: "main.js", modules: { "main.js": main }, ...extra });
}

async function text(stub: WorkerStub): Promise<string> {
  const res = await stub.getEntrypoint().fetch("http://x/");
  return res.text();
}

function rpc(stub: WorkerStub, method: string, ...args: unknown[]): Promise<unknown> {
  return (stub.getEntrypoint("Probe") as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...args);
}

/** Guest-side helpers, available to every probe run through `guest()`. */
const PRELUDE = `
const attempt = (f) => { try { return "returned: " + String(f()); } catch (e) { return String(e?.name) + ": " + String(e?.message); } };
const attemptAsync = async (f) => { try { return "resolved: " + String(await f()); } catch (e) { return String(e?.name) + ": " + String(e?.message); } };
const spin = () => { let x = 0; for (let i = 0; i < 4e7; i++) x = (x + i) | 0; return x; };
`;

/** Runs `body` as an async function inside a fresh worker's fetch handler; returns its result (JSON). */
async function guest<T = Record<string, unknown>>(body: string, extra: Partial<WorkerCode> = {}): Promise<T> {
  const stub = load(`${PRELUDE}
export default { async fetch(request, env, ctx) {
  const result = await (async () => { ${body} })();
  return new Response(JSON.stringify(result));
} };`, extra);
  return JSON.parse(await text(stub)) as T;
}

async function assertLoaderStillWorks(): Promise<void> {
  assert.equal(await text(load(`export default { fetch() { return new Response("still alive") } }`)), "still alive");
}

const isRemote = (e: unknown): boolean => (e as { remote?: unknown })?.remote === true;

// ---------------------------------------------------------------------------------------------------
// Globals

const NODE_GLOBALS = ["process", "require", "module", "exports", "global", "Buffer", "setImmediate", "clearImmediate",
  "__dirname", "__filename", "ivm", "_ivm", "isolatedVm"];

test("globals: no Node globals (process, require, module, global, Buffer, setImmediate, ...) in the guest", async () => {
  const types = await guest<Record<string, string>>(`return {
    process: typeof process, require: typeof require, module: typeof module, exports: typeof exports,
    global: typeof global, Buffer: typeof Buffer, setImmediate: typeof setImmediate, clearImmediate: typeof clearImmediate,
    __dirname: typeof __dirname, __filename: typeof __filename, ivm: typeof ivm, _ivm: typeof _ivm, isolatedVm: typeof isolatedVm,
  };`);
  for (const name of NODE_GLOBALS) assert.equal(types[name], "undefined", `typeof ${name} in the guest`);
});

test("globals: globalThis has no host-ish keys and nothing naming ivm/isolated", async () => {
  const { names, symbols } = await guest<{ names: string[]; symbols: string[] }>(`return {
    names: Object.getOwnPropertyNames(globalThis),
    symbols: Object.getOwnPropertySymbols(globalThis).map((s) => String(s.description)),
  };`);
  assert.ok(names.includes("Response") && names.includes("console"), "sanity: the runtime's globals are listed");
  const deny = [...NODE_GLOBALS, "globalOutbound", "__mayflyRuntime", "SharedArrayBuffer", "Atomics", "Deno", "Bun"];
  for (const key of [...names, ...symbols]) {
    assert.ok(!deny.includes(key), `globalThis.${key} should not exist`);
    assert.ok(!/ivm|isolated/i.test(key), `globalThis key ${key} names the sandbox`);
  }
});

// ---------------------------------------------------------------------------------------------------
// Code generation

test("codegen: every Function-like constructor and eval throw EvalError", async () => {
  const results = await guest<Record<string, string>>(`
    const probes = {
      "this.constructor.constructor": () => this.constructor.constructor("return process")(),
      "({}).constructor.constructor": () => ({}).constructor.constructor("return this")(),
      "AsyncFunction": () => (async function () {}).constructor("return process")(),
      "async arrow": () => (async () => {}).constructor("return 1"),
      "GeneratorFunction": () => (function* () {}).constructor("yield 1")().next(),
      "AsyncGeneratorFunction": () => (async function* () {}).constructor("yield 1"),
      "eval": () => eval("1+1"),
      "indirect eval": () => (0, eval)("1"),
      "globalThis.eval": () => globalThis.eval("1"),
      "new Function": () => new Function("return 1"),
      "Function()": () => Function("return 1"),
      "Reflect.construct(Function)": () => Reflect.construct(Function, ["return 1"]),
      "bound Function": () => Function.prototype.bind.call(Function, null, "return 1")(),
      "class constructor": () => (class {}).constructor("return 1"),
      "console.log.constructor": () => console.log.constructor("return 1"),
      "fetch.constructor": () => fetch.constructor("return 1"),
      "Response.constructor": () => Response.constructor("return 1"),
      "ctx.waitUntil.constructor": () => ctx.waitUntil.constructor("return 1"),
      "Function.prototype descriptor": () => Object.getOwnPropertyDescriptor(Function.prototype, "constructor").value("return 1"),
    };
    return Object.fromEntries(Object.entries(probes).map(([k, f]) => [k, attempt(f)]));`);
  assert.ok(Object.keys(results).length >= 19);
  for (const [probe, outcome] of Object.entries(results)) assert.match(outcome, /^EvalError: /, probe);
});

test("codegen: the allow_eval flag enables eval, and still nothing of the host is reachable", async () => {
  const r = await guest(`return {
    eval: eval("1+1"),
    indirect: (0, eval)("typeof process"),
    fn: Function("return typeof process")(),
    require: new Function("return typeof require")(),
    ctorCtor: this.constructor.constructor("return typeof Buffer")(),
    globalIsGlobal: Function("return this")() === globalThis,
  };`, { compatibilityFlags: ["allow_eval"] });
  assert.deepEqual(r, { eval: 2, indirect: "undefined", fn: "undefined", require: "undefined", ctorCtor: "undefined", globalIsGlobal: true });
});

// ---------------------------------------------------------------------------------------------------
// Stack traces

test("stack: Error.prepareStackTrace call sites expose no function, receiver or host path", async () => {
  const stub = load(`
    const seen = [];
    const describe = (v) => v === undefined ? "undefined" : v === globalThis ? "globalThis" : typeof v;
    Error.prepareStackTrace = (error, frames) => {
      for (const f of frames) seen.push({
        fn: describe(f.getFunction()), this: describe(f.getThis()), typeName: String(f.getTypeName()),
        file: String(f.getFileName()), name: String(f.getFunctionName()), evalOrigin: String(f.getEvalOrigin()),
      });
      return "stack hidden";
    };
    function thrower() { throw new Error("from guest"); }
    let calls = 0;
    export default { async fetch(request, env, ctx) {
      if (calls++ === 0) {
        const triggers = [
          () => thrower(),
          () => new Headers([["bad name", "v"]]),
          () => new Response("", { status: 1 }),
          () => new Request("http://x/", { method: "GET", body: "x" }),
          () => [1].map(() => null.x),
          () => { const o = {}; Error.captureStackTrace(o); return o.stack; },
          () => Reflect.apply(Headers.prototype.get, {}, ["a"]),
        ];
        for (const t of triggers) { try { t(); } catch (e) { void e.stack; } }
        try { await fetch("https://example.com"); } catch (e) { void e.stack; }
        try { await request.text(); await request.text(); } catch (e) { void e.stack; }
        return 5; // not a Response: the runtime throws its own TypeError and reads its stack
      }
      let ctorCtor;
      try { ctorCtor = this.constructor.constructor("return process")(); } catch (e) { ctorCtor = e.name; }
      return new Response(JSON.stringify({ seen, process: typeof process, ctorCtor }));
    } };`);
  await assert.rejects(text(stub), (e: Error) => e.name === "TypeError" && /Incorrect type/.test(e.message) && isRemote(e));
  const r = JSON.parse(await text(stub)) as { seen: Record<string, string>[]; process: string; ctorCtor: string };
  assert.ok(r.seen.length >= 8, `frames were captured (${r.seen.length})`);
  for (const f of r.seen) {
    const where = JSON.stringify(f);
    assert.equal(f.fn, "undefined", `getFunction() exposes a function: ${where}`);
    assert.equal(f.this, "undefined", `getThis() exposes a receiver: ${where}`);
    assert.doesNotMatch(f.typeName!, /process|isolate|reference|callback|externalcopy|buffer|global/i, where);
    assert.doesNotMatch(f.file!, /^(\/|file:|node:)|node_modules|\\/, `host path in a frame: ${where}`);
    assert.equal(f.evalOrigin, "undefined", where);
  }
  assert.equal(r.process, "undefined");
  assert.equal(r.ctorCtor, "EvalError");
});

// ---------------------------------------------------------------------------------------------------
// Values and errors crossing to the host

test("rpc: a Proxy returned over RPC is refused cleanly and the worker keeps serving", async () => {
  const stub = load(`export class Probe {
    proxy() { return new Proxy({ a: 1 }, { get: (t, k) => Reflect.get(t, k), ownKeys: (t) => Reflect.ownKeys(t) }); }
    nested() { return { inner: [1, new Proxy([], {})] }; }
    ok() { return "ok"; }
  }`);
  for (const method of ["proxy", "nested"]) {
    await assert.rejects(rpc(stub, method), (e: Error) => e instanceof Error && /clone/i.test(e.message), method);
  }
  assert.equal(await rpc(stub, "ok"), "ok");
  await assertLoaderStillWorks();
});

test("rpc: functions, symbols, throwing getters and cycles in results give a copy or a clear error", async (t) => {
  const stub = load(`let getterRuns = 0;
  export class Probe {
    fn() { return { f: () => 1 }; }
    sym() { return Symbol("s"); }
    throwingGetter() { return { get a() { getterRuns++; throw new Error("boom"); } }; }
    cyclic() { const o = { n: 1, list: [] }; o.self = o; o.list.push(o); return o; }
    ok() { return { getterRuns }; }
  }`);
  await t.test("a function is refused with a clone error", async () => {
    await assert.rejects(rpc(stub, "fn"), (e: Error) => e instanceof Error && /could not be cloned/i.test(e.message));
  });
  await t.test("a symbol is refused with a clone error", async () => {
    await assert.rejects(rpc(stub, "sym"), (e: Error) => e instanceof Error && /could not be cloned/i.test(e.message));
  });
  await t.test("a cyclic object arrives as a cyclic copy", async () => {
    const o = (await rpc(stub, "cyclic")) as { n: number; self: unknown; list: unknown[] };
    assert.equal(o.n, 1);
    assert.equal(o.self, o);
    assert.equal(o.list[0], o);
  });
  await t.test("a throwing getter gives the guest's error or a clone error, not an opaque one", async () => {
    await assert.rejects(rpc(stub, "throwingGetter"), (e: Error) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /boom|clone|serializ/i, `unclear error: ${e.name}: ${e.message}`);
      return true;
    });
  });
  await t.test("the worker and the loader keep working", async () => {
    assert.ok(typeof ((await rpc(stub, "ok")) as { getterRuns: number }).getterRuns === "number");
    await assertLoaderStillWorks();
  });
});

test("rpc: a thrown error with hostile name/message/stack reaches the host as a clean remote error", async (t) => {
  const stub = load(`export class Probe {
    messageGetterThrows() { const e = new Error("x"); Object.defineProperty(e, "message", { get() { throw new Error("inner"); } }); throw e; }
    nameToStringThrows() { const e = new Error("x"); Object.defineProperty(e, "name", { get() { return { toString() { throw 5; } }; } }); throw e; }
    stackGetterThrows() { const e = new TypeError("m"); Object.defineProperty(e, "stack", { get() { throw 1; } }); throw e; }
    messageGetterThrowsFunction() { const e = new Error("x"); Object.defineProperty(e, "message", { get() { throw () => 1; } }); throw e; }
    proxyOfError() { throw new Proxy(new Error("p"), { get(t, k) { if (k === "stack") throw 1; return Reflect.get(t, k); } }); }
    proxyOfObject() { throw new Proxy({}, { get() { throw new Error("trap"); } }); }
    objectWithGetters() { throw { get name() { throw 1; }, get message() { throw 1; } }; }
    ok() { return "ok"; }
  }`);
  for (const method of ["messageGetterThrows", "nameToStringThrows", "stackGetterThrows", "messageGetterThrowsFunction",
    "proxyOfError", "proxyOfObject", "objectWithGetters"]) {
    await t.test(method, async () => {
      await assert.rejects(rpc(stub, method), (e: Error) => {
        assert.ok(e instanceof Error, "an Error instance");
        assert.equal(typeof e.name, "string");
        assert.equal(typeof e.message, "string");
        assert.ok(isRemote(e), `a guest exception should be remote, got ${e.name}: ${e.message}`);
        return true;
      });
      assert.equal(await rpc(stub, "ok"), "ok");
    });
  }
  await assertLoaderStillWorks();
});

test("rpc: a guest error named after an Object.prototype member keeps its name and stays an Error", async (t) => {
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"]) {
    await t.test(name, async () => {
      const stub = load(`export class Probe { run() { const e = new Error("m"); e.name = ${JSON.stringify(name)}; throw e; } }`);
      await assert.rejects(rpc(stub, "run"), (e: Error) => {
        assert.ok(e instanceof Error, `an Error instance, got ${Object.prototype.toString.call(e)}`);
        assert.equal(e.name, name);
        assert.equal(e.message, "m");
        assert.ok(isRemote(e));
        return true;
      });
    });
  }
});

test("rpc: Object.prototype members are not callable as RPC methods", async () => {
  const stub = load(`export class Probe { ok() { return "ok"; } }`);
  for (const method of ["constructor", "__proto__", "toString", "valueOf", "hasOwnProperty", "__defineGetter__", "__lookupGetter__", "isPrototypeOf"]) {
    await assert.rejects(rpc(stub, method), (e: Error) => e.name === "TypeError" && /does not implement/.test(e.message) && isRemote(e), method);
  }
  assert.equal(await rpc(stub, "ok"), "ok");
});

// ---------------------------------------------------------------------------------------------------
// Poisoned built-ins

test("poison: built-ins poisoned by one worker are pristine in the next", async () => {
  const a = load(`export default { async fetch() {
    // Built first: the runtime's own Headers use push(), so A could not build one afterwards.
    const poisoned = new Response("A poisoned"), notPoisoned = new Response("A not poisoned");
    Array.prototype.push = () => { throw 1; };
    Object.prototype.polluted = 1;
    JSON.parse = () => "evil";
    Promise.prototype.then = function () { throw new Error("poisoned then"); };
    Function.prototype.toString = () => "evil";
    globalThis.leftBehind = "A";
    return ({}).polluted === 1 && JSON.parse("1") === "evil" ? poisoned : notPoisoned;
  } }`);
  assert.equal(await text(a), "A poisoned", "worker A's own request still returns");
  const b = await guest(`return {
    polluted: ({}).polluted === undefined && !("polluted" in {}),
    parse: JSON.parse("1"),
    push: [].push(1),
    then: await Promise.resolve(7).then((x) => x * 2),
    thenNative: /\\[native code\\]/.test(Function.prototype.toString.call(Promise.prototype.then)),
    leftBehind: typeof globalThis.leftBehind,
  };`);
  assert.deepEqual(b, { polluted: true, parse: 1, push: 1, then: 14, thenNative: true, leftBehind: "undefined" });
});

test("poison: Object.prototype.then cannot forge the runtime's reply", async () => {
  // The handler returns a non-Response, so the runtime must answer with its TypeError. A `then` getter on
  // Object.prototype that fires only on the runtime's own reply object must not turn that into a success.
  const stub = load(`export default { async fetch() {
    Object.defineProperty(Object.prototype, "then", { configurable: true, get() {
      if (Object.hasOwn(this, "ok") && (Object.hasOwn(this, "error") || Object.hasOwn(this, "value"))) {
        delete Object.prototype.then;
        return (resolve) => resolve({ ok: true, value: { status: 200, statusText: "", headers: [["x-forged", "1"]], body: null } });
      }
      return undefined;
    } });
    return 5;
  } }`, { limits: { wallMs: 500 } });
  const res = await stub.getEntrypoint().fetch("http://x/").catch((e: Error) => e);
  assert.ok(res instanceof Error, `forged reply accepted: ${res instanceof Response ? `status ${res.status}, x-forged=${res.headers.get("x-forged")}` : ""}`);
  assert.equal(res.name, "TypeError");
  assert.match(res.message, /Incorrect type/);
});

// ---------------------------------------------------------------------------------------------------
// Shared memory and WebAssembly

const WASM_EMPTY = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** (module (memory (export "m") 1 1 shared)) */
const WASM_SHARED_MEMORY = [...WASM_EMPTY, 0x05, 0x04, 0x01, 0x03, 0x01, 0x01, 0x07, 0x05, 0x01, 0x01, 0x6d, 0x02, 0x00];

test("shared memory: SharedArrayBuffer and Atomics are absent; shared WebAssembly.Memory is refused", async () => {
  const r = await guest(`return {
    sab: typeof SharedArrayBuffer, atomics: typeof Atomics, inGlobal: "SharedArrayBuffer" in globalThis || "Atomics" in globalThis,
    sharedMemory: attempt(() => new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true })),
  };`);
  assert.equal(r.sab, "undefined");
  assert.equal(r.atomics, "undefined");
  assert.equal(r.inGlobal, false);
  assert.doesNotMatch(r.sharedMemory as string, /^returned/);
});

test("shared memory: a descriptor whose `shared` getter changes between reads gets no SharedArrayBuffer", async () => {
  const r = await guest(`
    let reads = 0;
    return attempt(() => {
      const m = new WebAssembly.Memory({ initial: 1, maximum: 2, get shared() { return reads++ > 0; } });
      return Object.prototype.toString.call(m.buffer);
    });`);
  assert.notEqual(r, "returned: [object SharedArrayBuffer]");
});

test("shared memory: a { wasm } module's own shared memory does not bring SharedArrayBuffer back", async () => {
  let stub: WorkerStub;
  try {
    stub = loader.load({
      compatibilityDate: "2025-06-01", mainModule: "main.js",
      modules: {
        "main.js": `import mod from "./shared.wasm";
          export default { fetch() {
            const buffer = new WebAssembly.Instance(mod).exports.m.buffer;
            return new Response(Object.prototype.toString.call(buffer) + " " + typeof buffer.constructor);
          } };`,
        "shared.wasm": { wasm: new Uint8Array(WASM_SHARED_MEMORY) },
      },
    });
  } catch {
    return; // refused at load(): fine
  }
  const outcome = await text(stub).catch((e: Error) => `refused: ${e.name}: ${e.message}`);
  assert.doesNotMatch(outcome, /^\[object SharedArrayBuffer\]/);
});

test("wasm: compiling Wasm from bytes is refused; a { wasm } module does not lead back to the compiler", async () => {
  const stub = loader.load({
    compatibilityDate: "2025-06-01", mainModule: "main.js",
    modules: {
      "main.js": `${PRELUDE}
        import mod from "./empty.wasm";
        export default { async fetch() {
          const bytes = new Uint8Array(${JSON.stringify(WASM_EMPTY)});
          const r = {
            module: attempt(() => new WebAssembly.Module(bytes)),
            compile: await attemptAsync(() => WebAssembly.compile(bytes)),
            compileBuffer: await attemptAsync(() => WebAssembly.compile(bytes.buffer)),
            instantiate: await attemptAsync(() => WebAssembly.instantiate(bytes)),
            compileStreaming: await attemptAsync(() => WebAssembly.compileStreaming(new Response(bytes))),
            instantiateStreaming: await attemptAsync(() => WebAssembly.instantiateStreaming(new Response(bytes))),
            viaModuleObject: attempt(() => new (Object.getPrototypeOf(mod).constructor)(bytes)),
            viaModuleConstructor: attempt(() => new mod.constructor(bytes)),
          };
          r.providedModuleWorks = (await WebAssembly.instantiate(mod)) instanceof WebAssembly.Instance;
          return new Response(JSON.stringify(r));
        } };`,
      "empty.wasm": { wasm: new Uint8Array(WASM_EMPTY) },
    },
  });
  const r = JSON.parse(await text(stub)) as Record<string, string | boolean>;
  assert.equal(r.providedModuleWorks, true);
  delete r.providedModuleWorks;
  for (const [probe, outcome] of Object.entries(r)) assert.match(outcome as string, /^CompileError: .*Wasm code generation disallowed/, probe);
});

// ---------------------------------------------------------------------------------------------------
// Clock

test("clock: Date.now() does not advance during a busy loop and new Date() agrees with it", async () => {
  const before = Date.now();
  const r = await guest<{ t0: number; t1: number; d0: number; d1: number; dateString: string; expected: string; x: number }>(`
    const t0 = Date.now(), d0 = new Date().getTime();
    const x = spin();
    const t1 = Date.now(), d1 = new Date().getTime();
    return { t0, t1, d0, d1, dateString: Date(), expected: new Date(t1).toString(), x };`);
  assert.ok(reports.at(-1)!.cpuMs >= 10, `the busy loop took ${reports.at(-1)!.cpuMs} ms of CPU`);
  assert.equal(r.t1, r.t0);
  assert.equal(r.d0, r.t0);
  assert.equal(r.d1, r.t0);
  assert.equal(r.dateString, r.expected);
  assert.ok(Math.abs(r.t0 - before) < 60_000, "the frozen clock is near real time");
});

test("clock: Intl.DateTimeFormat without a date reads the frozen clock too", async () => {
  const r = await guest<Record<string, string>>(`
    const f = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3 });
    const frozen = f.format(Date.now());
    const before = f.format();
    spin();
    return { frozen, before, after: f.format(), parts: f.formatToParts().map((p) => p.value).join("") };`);
  assert.equal(r.before, r.frozen, "format() before the loop");
  assert.equal(r.after, r.frozen, "format() after the loop");
  assert.equal(r.parts, r.frozen, "formatToParts() after the loop");
});

// ---------------------------------------------------------------------------------------------------
// Network and modules

test("network: global fetch() rejects with Cloudflare's message", async () => {
  const r = await guest<Record<string, string | boolean>>(`
    const p = fetch("https://example.com");
    return {
      isPromise: p instanceof Promise,
      url: await attemptAsync(() => p),
      request: await attemptAsync(() => fetch(new Request("https://example.com/x", { method: "POST", body: "b" }))),
      local: await attemptAsync(() => fetch("http://127.0.0.1:1/")),
    };`);
  assert.equal(r.isPromise, true);
  for (const k of ["url", "request", "local"]) assert.match(r[k] as string, /^Error: This worker is not permitted to access the internet via global functions like fetch\(\)/, k);
});

test("modules: dynamic import of Node built-ins rejects", async () => {
  const r = await guest<Record<string, string>>(`return {
    nodeFs: await attemptAsync(() => import("node:fs")),
    fs: await attemptAsync(() => import("fs")),
    childProcess: await attemptAsync(() => import("node:child_process")),
    file: await attemptAsync(() => import("file:///etc/passwd")),
  };`);
  for (const [k, v] of Object.entries(r)) assert.doesNotMatch(v, /^resolved/, k);
});

test("modules: a static import of a Node built-in fails at the first call, naming the module", async (t) => {
  for (const specifier of ["node:fs", "fs", "node:child_process", "../etc/passwd"]) {
    await t.test(specifier, async () => {
      const stub = load(`import x from ${JSON.stringify(specifier)}; export default { fetch() { return new Response(typeof x); } };`);
      await assert.rejects(text(stub), (e: Error) => e instanceof Error && isRemote(e) && e.message.includes(specifier) && /Failed to start Worker/.test(e.message));
    });
  }
  await assertLoaderStillWorks();
});

// ---------------------------------------------------------------------------------------------------
// Guards read their arguments once

test("guards: getters that change between reads do not slip memory past the accounting", async (t) => {
  const cases: Record<string, string> = {
    "ArrayBuffer maxByteLength": `let reads = 0;
      const b = new ArrayBuffer(1, { get maxByteLength() { return reads++ > 0 ? 256 * 1048576 : 1; } });
      b.resize(200 * 1048576);
      return b.byteLength;`,
    "WebAssembly.Memory maximum": `let reads = 0;
      const m = new WebAssembly.Memory({ initial: 1, get maximum() { return reads++ > 0 ? 4096 : 1; } });
      m.grow(3000);
      return m.buffer.byteLength;`,
  };
  for (const [name, body] of Object.entries(cases)) {
    await t.test(name, async () => {
      const stub = load(`export default { fetch() {
        try { const bytes = (() => { ${body} })(); return new Response("got " + bytes / 1048576 + " MB"); }
        catch (e) { return new Response("refused " + e.name); }
      } }`, { limits: { memoryMb: 16 } });
      const outcome = await text(stub).catch((e: Error) => e);
      stub.dispose(); // frees whatever it got, now
      if (outcome instanceof Error) assert.ok(outcome instanceof MemoryLimitError, `${outcome.name}: ${outcome.message}`);
      else assert.match(outcome, /^refused/, `a 16 MB worker ${outcome}`);
    });
  }
  await assertLoaderStillWorks();
});

// ---------------------------------------------------------------------------------------------------
// Executor robustness

test("rpc: a deeply nested result cannot take down the executor and its co-tenants", async () => {
  const coTenant = load(`export default { fetch() { let x = 0; for (let i = 0; i < 1e8; i++) x = (x + i) | 0; return new Response("co-tenant ok " + (x & 0)); } }`);
  const deep = load(`export class Probe { run() { let a = []; for (let i = 0; i < 2500; i++) a = [a]; return a; } }`);
  const coTenantRun = text(coTenant).catch((e: Error) => e);
  const outcome = await rpc(deep, "run").then(() => "copied", (e: Error) => e);
  if (outcome !== "copied") {
    assert.ok(outcome instanceof Error);
    assert.ok(!(outcome instanceof ExecutorCrashedError), `the executor died: ${outcome.message}`);
  }
  const other = await coTenantRun;
  assert.equal(other instanceof Error ? `${other.name}: ${other.message}` : other, "co-tenant ok 0");
  await assertLoaderStillWorks();
});
