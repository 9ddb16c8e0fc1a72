import { webcrypto } from "node:crypto";
import type { Service, ServiceState } from "./index.ts";

/**
 * crypto.subtle for the guest (WebCrypto §14), done by Node's WebCrypto in the executor.
 *
 * The guest runtime (runtime/guest/subtle.ts) converts and normalizes the arguments; everything that
 * arrives here is still treated as untrusted: each algorithm dictionary is checked against the list
 * of algorithms mayfly offers and rebuilt member by member before Node sees it. CryptoKeys never
 * leave the executor: they stay in this isolate's key table and the guest holds a number that names
 * one only in its own isolate. Results cross as copies (ArrayBuffer, plain JsonWebKey, boolean, key
 * descriptors); failures as a WebCrypto error name and a message.
 */

const subtle = webcrypto.subtle;
type Key = webcrypto.CryptoKey;
type Dict = Record<string, unknown>;

/** Live keys one isolate may hold; the guest releases collected keys (FinalizationRegistry). */
export const MAX_KEYS = 10_000;
/** Workers' own cap on PBKDF2 iterations: the work runs on the executor's threads, outside the CPU limit. */
export const MAX_PBKDF2_ITERATIONS = 100_000;
/** Caps on requested lengths (bits), for the same reason and for the memory a length implies. */
/**
 * Bytes an isolate may have in flight in pending operations. Every call copies its data into the
 * executor, so without a cap one buffer passed to many concurrent calls would take executor memory
 * far beyond the isolate's own heap limit.
 */
export const MAX_INFLIGHT_BYTES = 128 * 1024 * 1024;
const MAX_HMAC_KEY_BITS = 65_536;
/** RSA key generation runs on the executor's threads, outside the CPU limit: moduli are capped. */
const MAX_RSA_MODULUS_BITS = 4096;
const MAX_DERIVED_BITS = 131_072;

interface KeyTable {
  keys: Map<number, Key>;
  next: number;
  /** Bytes of data held by this isolate's pending operations. */
  inflight: number;
}

/** What the guest gets for a key: its id in this isolate's table and the CryptoKey's attributes. */
export interface KeyDescriptor {
  id: number;
  type: string;
  extractable: boolean;
  algorithm: Dict;
  usages: string[];
}

function fail(name: string, message: string): never {
  const err = new Error(message);
  err.name = name;
  throw err;
}

const own = (o: Dict, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

// ---- algorithm dictionaries (WebCrypto §18.4 "registered algorithms", restricted to mayfly's list) ----

const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
const CURVES = ["P-256", "P-384", "P-521"];

function dict(v: unknown, what: string): Dict {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail("TypeError", `${what} must be an object`);
  return v as Dict;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail("TypeError", `${what} must be a BufferSource`);
  return v;
}

function hash(v: unknown): { name: string } {
  const name = own(dict(v, "hash"), "name");
  if (typeof name !== "string") fail("TypeError", "hash.name must be a string");
  if (!HASHES.includes(name)) fail("NotSupportedError", `Unrecognized hash algorithm: ${name}`);
  return { name };
}

function integer(v: unknown, max: number, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) fail("TypeError", `${what} must be an integer between 0 and ${max}`);
  return v;
}

type Clean = (a: Dict) => Dict;

const none: Clean = () => ({});
const withHash: Clean = (a) => ({ hash: hash(own(a, "hash")) });
const hmacParams: Clean = (a) => {
  const out: Dict = withHash(a);
  const length = own(a, "length");
  if (length !== undefined) {
    out.length = integer(length, 2 ** 32 - 1, "length");
    if ((out.length as number) > MAX_HMAC_KEY_BITS) fail("NotSupportedError", `HMAC keys longer than ${MAX_HMAC_KEY_BITS} bits are not supported`);
  }
  return out;
};
const aesLength: Clean = (a) => ({ length: integer(own(a, "length"), 0xffff, "length") });
const curve: Clean = (a) => {
  const namedCurve = own(a, "namedCurve");
  if (typeof namedCurve !== "string") fail("TypeError", "namedCurve must be a string");
  if (!CURVES.includes(namedCurve)) fail("NotSupportedError", `Unrecognized namedCurve: ${namedCurve}`);
  return { namedCurve };
};
const aesGcm: Clean = (a) => {
  const out: Dict = { iv: bytes(own(a, "iv"), "iv") };
  const additionalData = own(a, "additionalData");
  if (additionalData !== undefined) out.additionalData = bytes(additionalData, "additionalData");
  const tagLength = own(a, "tagLength");
  if (tagLength !== undefined) out.tagLength = integer(tagLength, 255, "tagLength");
  return out;
};
const pbkdf2: Clean = (a) => {
  const iterations = integer(own(a, "iterations"), 2 ** 32 - 1, "iterations");
  if (iterations > MAX_PBKDF2_ITERATIONS) fail("NotSupportedError", `PBKDF2 iteration counts above ${MAX_PBKDF2_ITERATIONS} are not supported (requested ${iterations})`);
  return { hash: hash(own(a, "hash")), iterations, salt: bytes(own(a, "salt"), "salt") };
};
const hkdf: Clean = (a) => ({ hash: hash(own(a, "hash")), info: bytes(own(a, "info"), "info"), salt: bytes(own(a, "salt"), "salt") });
const rsaKeyGen: Clean = (a) => {
  const modulusLength = integer(own(a, "modulusLength"), 2 ** 32 - 1, "modulusLength");
  if (modulusLength < 1024 || modulusLength > MAX_RSA_MODULUS_BITS || modulusLength % 8 !== 0) {
    fail("NotSupportedError", `RSA moduli of 1024 to ${MAX_RSA_MODULUS_BITS} bits (a multiple of 8) are supported, not ${modulusLength}`);
  }
  const publicExponent = bytes(own(a, "publicExponent"), "publicExponent");
  return { hash: hash(own(a, "hash")), modulusLength, publicExponent };
};
const rsaPss: Clean = (a) => ({ saltLength: integer(own(a, "saltLength"), 2 ** 32 - 1, "saltLength") });
const rsaOaep: Clean = (a) => {
  const label = own(a, "label");
  return label === undefined ? {} : { label: bytes(label, "label") };
};
const aesCbc: Clean = (a) => ({ iv: bytes(own(a, "iv"), "iv") });
const aesCtr: Clean = (a) => ({ counter: bytes(own(a, "counter"), "counter"), length: integer(own(a, "length"), 255, "length") });
/** ECDH and X25519 deriveBits: `public` names a key of this isolate's table (resolved by the operation). */
const keyAgreement: Clean = (a) => {
  const pub = own(a, "public");
  if (typeof pub !== "number") fail("TypeError", "public must be a CryptoKey");
  return { public: pub };
};

const SIGNATURES: Record<string, Clean> = { HMAC: none, ECDSA: withHash, Ed25519: none, "RSASSA-PKCS1-v1_5": none, "RSA-PSS": rsaPss };
const CIPHERS: Record<string, Clean> = { "AES-GCM": aesGcm, "AES-CBC": aesCbc, "AES-CTR": aesCtr, "RSA-OAEP": rsaOaep };
const AES_KEYS = { "AES-GCM": aesLength, "AES-CBC": aesLength, "AES-CTR": aesLength, "AES-KW": aesLength };
/** wrapKey/unwrapKey: any cipher, and AES-KW (which only wraps). */
const WRAPPERS: Record<string, Clean> = { ...CIPHERS, "AES-KW": none };

/** Per operation, the algorithms mayfly supports and how their parameters are checked. */
const ALGORITHMS: Record<string, Record<string, Clean>> = {
  digest: Object.fromEntries(HASHES.map((h) => [h, none])),
  sign: SIGNATURES,
  verify: SIGNATURES,
  encrypt: CIPHERS,
  decrypt: CIPHERS,
  generateKey: {
    HMAC: hmacParams, ...AES_KEYS, ECDSA: curve, ECDH: curve, Ed25519: none, X25519: none,
    "RSASSA-PKCS1-v1_5": rsaKeyGen, "RSA-PSS": rsaKeyGen, "RSA-OAEP": rsaKeyGen,
  },
  wrapKey: WRAPPERS,
  unwrapKey: WRAPPERS,
  importKey: {
    HMAC: hmacParams, "AES-GCM": none, "AES-CBC": none, "AES-CTR": none, "AES-KW": none, ECDSA: curve, ECDH: curve, Ed25519: none, X25519: none,
    "RSASSA-PKCS1-v1_5": withHash, "RSA-PSS": withHash, "RSA-OAEP": withHash, PBKDF2: none, HKDF: none,
  },
  deriveBits: { PBKDF2: pbkdf2, HKDF: hkdf, ECDH: keyAgreement, X25519: keyAgreement },
  "get key length": { HMAC: hmacParams, ...AES_KEYS },
};

/** A fresh algorithm dictionary for `op`, or NotSupportedError for an algorithm mayfly does not offer. */
function algorithm(op: string, v: unknown): Dict {
  const a = dict(v, "algorithm");
  const name = own(a, "name");
  if (typeof name !== "string") fail("TypeError", "algorithm.name must be a string");
  const table = ALGORITHMS[op]!;
  if (!Object.hasOwn(table, name)) fail("NotSupportedError", `Unrecognized or unsupported algorithm for ${op}: ${name}`);
  return { name, ...table[name]!(a) };
}

const FORMATS = ["raw", "spki", "pkcs8", "jwk", "raw-public", "raw-private", "raw-seed", "raw-secret"];
const USAGES = ["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"];

function format(v: unknown): string {
  if (typeof v !== "string" || !FORMATS.includes(v)) fail("TypeError", `Invalid key format: ${String(v)}`);
  return v;
}

function usages(v: unknown): string[] {
  if (!Array.isArray(v)) fail("TypeError", "keyUsages must be a sequence");
  return v.map((u) => {
    if (typeof u !== "string" || !USAGES.includes(u)) fail("TypeError", `Invalid key usage: ${String(u)}`);
    return u;
  });
}

const JWK_STRINGS = ["alg", "crv", "d", "dp", "dq", "e", "k", "kty", "n", "p", "q", "qi", "use", "x", "y"];

/** A JsonWebKey dictionary rebuilt from its known members (§18.2.2 JsonWebKey); unknown members dropped. */
function jwk(v: unknown): Dict {
  const src = dict(v, "keyData");
  const out: Dict = {};
  for (const k of JWK_STRINGS) {
    const s = own(src, k);
    if (s === undefined) continue;
    if (typeof s !== "string") fail("TypeError", `JsonWebKey.${k} must be a string`);
    out[k] = s;
  }
  const ext = own(src, "ext");
  if (ext !== undefined) out.ext = Boolean(ext);
  const ops = own(src, "key_ops");
  if (ops !== undefined) {
    if (!Array.isArray(ops) || !ops.every((o) => typeof o === "string")) fail("TypeError", "JsonWebKey.key_ops must be a sequence of strings");
    out.key_ops = [...ops];
  }
  const oth = own(src, "oth");
  if (oth !== undefined) {
    if (!Array.isArray(oth)) fail("TypeError", "JsonWebKey.oth must be a sequence");
    out.oth = oth.map((p) => {
      const d = dict(p, "JsonWebKey.oth[]");
      const r: Dict = {};
      for (const k of ["d", "r", "t"]) if (typeof own(d, k) === "string") r[k] = own(d, k);
      return r;
    });
  }
  return out;
}

// ---- the key table ----

function table(state: ServiceState): KeyTable {
  let t = state.store.get("subtle") as KeyTable | undefined;
  if (!t) {
    t = { keys: new Map(), next: 1, inflight: 0 };
    state.store.set("subtle", t);
  }
  return t;
}

function key(state: ServiceState, id: unknown): Key {
  const k = typeof id === "number" ? table(state).keys.get(id) : undefined;
  if (!k) fail("TypeError", "The key is not a CryptoKey of this worker");
  return k;
}

/** The key's algorithm as a plain copy (KeyAlgorithm and its subtypes, §13). */
function copyAlgorithm(a: Dict): Dict {
  const out: Dict = { name: String(a.name) };
  const h = a.hash as Dict | undefined;
  if (h && typeof h === "object") out.hash = { name: String(h.name) };
  if (typeof a.length === "number") out.length = a.length;
  if (typeof a.namedCurve === "string") out.namedCurve = a.namedCurve;
  if (typeof a.modulusLength === "number") out.modulusLength = a.modulusLength;
  if (a.publicExponent instanceof Uint8Array) out.publicExponent = new Uint8Array(a.publicExponent);
  return out;
}

function add(t: KeyTable, k: Key): KeyDescriptor {
  const id = t.next++;
  t.keys.set(id, k);
  return { id, type: k.type, extractable: k.extractable, algorithm: copyAlgorithm(k.algorithm as unknown as Dict), usages: [...k.usages] };
}

function describe(state: ServiceState, result: Key | webcrypto.CryptoKeyPair): KeyDescriptor | { publicKey: KeyDescriptor; privateKey: KeyDescriptor } {
  const t = table(state);
  const pair = "publicKey" in result;
  if (t.keys.size + (pair ? 2 : 1) > MAX_KEYS) fail("QuotaExceededError", `A worker may hold at most ${MAX_KEYS} CryptoKeys at once`);
  if (!pair) return add(t, result as Key);
  const { publicKey, privateKey } = result as webcrypto.CryptoKeyPair;
  return { publicKey: add(t, publicKey), privateKey: add(t, privateKey) };
}

// ---- results and errors ----

/** Errors a WebCrypto method may reject with; anything else from Node becomes an OperationError. */
const ERROR_NAMES = ["TypeError", "RangeError", "SyntaxError", "NotSupportedError", "OperationError", "DataError", "InvalidAccessError", "InvalidStateError", "QuotaExceededError"];

function clean(e: unknown): Error {
  const err = e as { name?: unknown; message?: unknown };
  const name = typeof err?.name === "string" && ERROR_NAMES.includes(err.name) ? err.name : "OperationError";
  const message = typeof err?.message === "string" ? err.message : "The operation failed for an operation-specific reason";
  const out = new Error(message);
  out.name = name;
  return out;
}

function buffer(v: unknown): ArrayBuffer {
  if (v instanceof ArrayBuffer) return v.slice(0);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
  return fail("OperationError", "Unexpected result");
}

function jwkOut(v: unknown): Dict {
  return jwk(v);
}

/**
 * Runs Node's operation and shapes its result. The task is cancellable like a timer: once the run is
 * over (cancelAll) its result is never delivered, so no guest code resumes outside a run, and a key
 * it would have made never enters the table.
 */
function run<T>(state: ServiceState, ticket: number, input: unknown[], work: () => Promise<T>, shape: (value: T) => unknown): Promise<unknown> {
  const t = table(state);
  const size = weight(input);
  if (t.inflight + size > MAX_INFLIGHT_BYTES) fail("QuotaExceededError", `A worker may have at most ${MAX_INFLIGHT_BYTES} bytes of data in pending crypto operations`);
  t.inflight += size;
  let done = false;
  const finish = () => {
    if (!done) t.inflight -= size;
    done = true;
  };
  return new Promise((resolve, reject) => {
    let cancelled = false;
    state.cancels.set(ticket, () => {
      cancelled = true;
    });
    let started: Promise<T>;
    try {
      started = work();
    } catch (e) {
      finish();
      reject(clean(e));
      return;
    }
    started.then(
      (value) => {
        finish();
        if (cancelled) return;
        try {
          resolve(shape(value));
        } catch (e) {
          reject(clean(e));
        }
      },
      (e) => {
        finish();
        if (!cancelled) reject(clean(e));
      },
    );
  });
}

/** Roughly the bytes the arguments hold: buffers and strings, at top level and one dictionary level down. */
function weight(values: unknown[]): number {
  const of = (v: unknown) => (v instanceof Uint8Array ? v.byteLength : typeof v === "string" ? v.length : 0);
  let n = 0;
  for (const v of values) {
    n += of(v);
    if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) for (const m of Object.values(v)) n += of(m);
  }
  return n;
}

/** A key agreement's `public` member, from its number to this isolate's key. */
function withPublicKey(state: ServiceState, a: Dict): Dict {
  return typeof a.public === "number" ? { ...a, public: key(state, a.public) } : a;
}

/** Validation failures are reported as the same cleaned envelope as Node's own. */
function checked<A extends unknown[]>(op: (state: ServiceState, ticket: number, ...args: A) => Promise<unknown>) {
  return (state: ServiceState, ticket: number, ...args: A): Promise<unknown> => {
    try {
      return op(state, ticket, ...args);
    } catch (e) {
      return Promise.reject(clean(e));
    }
  };
}

export const subtleService: Service = {
  sync: {
    /** The guest's CryptoKey was garbage collected: forget the key. */
    release(state, id: unknown) {
      if (typeof id === "number") table(state).keys.delete(id);
    },
  },
  async: {
    digest: checked((state, ticket, alg: unknown, data: unknown) => {
      const a = algorithm("digest", alg);
      const d = bytes(data, "data");
      return run(state, ticket, [d], () => subtle.digest(a as unknown as webcrypto.AlgorithmIdentifier, d), buffer);
    }),

    importKey: checked((state, ticket, fmt: unknown, keyData: unknown, alg: unknown, extractable: unknown, keyUsages: unknown) => {
      const f = format(fmt);
      const a = algorithm("importKey", alg);
      const ex = Boolean(extractable);
      const us = usages(keyUsages) as webcrypto.KeyUsage[];
      const p = a as unknown as webcrypto.AlgorithmIdentifier;
      if (f === "jwk") {
        const data = jwk(keyData) as webcrypto.JsonWebKey;
        return run(state, ticket, [data], () => subtle.importKey("jwk", data, p, ex, us), (k) => describe(state, k));
      }
      const data = bytes(keyData, "keyData");
      return run(state, ticket, [data], () => subtle.importKey(f as "raw", data, p, ex, us), (k) => describe(state, k));
    }),

    exportKey: checked((state, ticket, fmt: unknown, id: unknown) => {
      const f = format(fmt);
      const k = key(state, id);
      return run(state, ticket, [], () => subtle.exportKey(f as "raw", k) as Promise<unknown>, (v) => (f === "jwk" ? jwkOut(v) : buffer(v)));
    }),

    generateKey: checked((state, ticket, alg: unknown, extractable: unknown, keyUsages: unknown) => {
      const a = algorithm("generateKey", alg) as unknown as webcrypto.AlgorithmIdentifier;
      const ex = Boolean(extractable);
      const us = usages(keyUsages) as webcrypto.KeyUsage[];
      return run(state, ticket, [], () => subtle.generateKey(a, ex, us) as Promise<Key | webcrypto.CryptoKeyPair>, (r) => describe(state, r));
    }),

    sign: checked((state, ticket, alg: unknown, id: unknown, data: unknown) => {
      const a = algorithm("sign", alg) as unknown as webcrypto.AlgorithmIdentifier;
      const k = key(state, id);
      const d = bytes(data, "data");
      return run(state, ticket, [d], () => subtle.sign(a, k, d), buffer);
    }),

    verify: checked((state, ticket, alg: unknown, id: unknown, signature: unknown, data: unknown) => {
      const a = algorithm("verify", alg) as unknown as webcrypto.AlgorithmIdentifier;
      const k = key(state, id);
      const s = bytes(signature, "signature");
      const d = bytes(data, "data");
      return run(state, ticket, [s, d], () => subtle.verify(a, k, s, d), (ok) => ok === true);
    }),

    encrypt: checked((state, ticket, alg: unknown, id: unknown, data: unknown) => {
      const a = algorithm("encrypt", alg) as unknown as webcrypto.AesGcmParams;
      const k = key(state, id);
      const d = bytes(data, "data");
      return run(state, ticket, [a, d], () => subtle.encrypt(a, k, d), buffer);
    }),

    decrypt: checked((state, ticket, alg: unknown, id: unknown, data: unknown) => {
      const a = algorithm("decrypt", alg) as unknown as webcrypto.AesGcmParams;
      const k = key(state, id);
      const d = bytes(data, "data");
      return run(state, ticket, [a, d], () => subtle.decrypt(a, k, d), buffer);
    }),

    deriveBits: checked((state, ticket, alg: unknown, id: unknown, length: unknown) => {
      const a = withPublicKey(state, algorithm("deriveBits", alg)) as unknown as webcrypto.Pbkdf2Params;
      const k = key(state, id);
      const l = length === null ? null : integer(length, 2 ** 32 - 1, "length");
      if (l !== null && l > MAX_DERIVED_BITS) fail("NotSupportedError", `Deriving more than ${MAX_DERIVED_BITS} bits is not supported`);
      return run(state, ticket, [a], () => subtle.deriveBits(a, k, l as number), buffer);
    }),

    wrapKey: checked((state, ticket, fmt: unknown, id: unknown, wrappingId: unknown, alg: unknown) => {
      const f = format(fmt);
      const k = key(state, id);
      const w = key(state, wrappingId);
      const a = algorithm("wrapKey", alg) as unknown as webcrypto.AlgorithmIdentifier;
      return run(state, ticket, [a], () => subtle.wrapKey(f as "raw", k, w, a), buffer);
    }),

    unwrapKey: checked((state, ticket, fmt: unknown, wrapped: unknown, unwrappingId: unknown, alg: unknown, keyAlg: unknown, extractable: unknown, keyUsages: unknown) => {
      const f = format(fmt);
      const data = bytes(wrapped, "wrappedKey");
      const u = key(state, unwrappingId);
      const a = algorithm("unwrapKey", alg) as unknown as webcrypto.AlgorithmIdentifier;
      const ka = algorithm("importKey", keyAlg) as unknown as webcrypto.AlgorithmIdentifier;
      const ex = Boolean(extractable);
      const us = usages(keyUsages) as webcrypto.KeyUsage[];
      return run(state, ticket, [data, a], () => subtle.unwrapKey(f as "raw", data, u, a, ka, ex, us), (k) => describe(state, k));
    }),

    deriveKey: checked((state, ticket, alg: unknown, id: unknown, derivedKeyType: unknown, extractable: unknown, keyUsages: unknown) => {
      const a = withPublicKey(state, algorithm("deriveBits", alg)) as unknown as webcrypto.Pbkdf2Params;
      const k = key(state, id);
      const t = algorithm("get key length", derivedKeyType) as unknown as webcrypto.HmacImportParams;
      const ex = Boolean(extractable);
      const us = usages(keyUsages) as webcrypto.KeyUsage[];
      return run(state, ticket, [a], () => subtle.deriveKey(a, k, t, ex, us), (r) => describe(state, r));
    }),
  },
};
