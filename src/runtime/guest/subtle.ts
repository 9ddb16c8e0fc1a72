/**
 * `crypto.subtle` (WebCrypto §14 SubtleCrypto) and `CryptoKey` (§13). The guest side does the Web IDL
 * argument conversions and "normalize an algorithm" (§18.4.4), and the checks a method makes on its key
 * before the operation; the cryptography is done by the executor's `subtle` host service, with Node's
 * WebCrypto. A CryptoKey here is a handle: its attributes are frozen copies, and the number that names
 * the real key in the executor sits in a module-private WeakMap, so it can be neither read nor forged.
 * That number means something only to this isolate's key table.
 *
 * Supported (the rest is refused with NotSupportedError, as §18.4.4 step 2 does for unknown algorithms):
 * digest SHA-1/256/384/512; HMAC; AES-GCM, AES-CBC, AES-CTR; ECDSA and ECDH (P-256, P-384, P-521);
 * Ed25519 and X25519; RSASSA-PKCS1-v1_5, RSA-PSS and RSA-OAEP (moduli up to 4096 bits generated);
 * wrapKey/unwrapKey with any of the ciphers or AES-KW;
 * PBKDF2 and HKDF (import, deriveBits, deriveKey).
 */
import { crypto } from "./crypto.ts";
import { DOMException } from "./dom-exception.ts";
import { callHost, startHostTask } from "./host-calls.ts";
import { copyBytes, isArrayBuffer } from "./buffer-source.ts";

type Dict = Record<string, unknown>;

// Captured before guest code runs, so a guest cannot redirect the handling of keys and buffers.
const apply = Reflect.apply;
const freeze = Object.freeze;
const defineProperty = Object.defineProperty;
const WeakMapCtor = WeakMap;
const weakMapGet = WeakMap.prototype.get;
const weakMapSet = WeakMap.prototype.set;
const isView = ArrayBuffer.isView;
const U8 = Uint8Array;
const FinalizationRegistryCtor = typeof FinalizationRegistry === "function" ? FinalizationRegistry : undefined;

function domError(message: string, name: string): Error {
  return new DOMException(message, name);
}

// ---------------------------------------------------------------------------------------------------
// Web IDL conversions

/** Web IDL DOMString: ToString, which throws a TypeError for a Symbol. */
function toDOMString(v: unknown): string {
  return `${v as string}`;
}

/** Web IDL ToNumber: throws a TypeError for a Symbol or a BigInt. */
function toNumber(v: unknown): number {
  return +(v as number);
}

/** Web IDL [EnforceRange] integer types (§3.2.4 ConvertToInt with EnforceRange). */
function enforceRange(v: unknown, max: number, what: string): number {
  const x = toNumber(v);
  if (!Number.isFinite(x)) throw new TypeError(`${what} is not a finite number.`);
  const n = Math.trunc(x) + 0;
  if (n < 0 || n > max) throw new TypeError(`${what} is outside the range [0, ${max}].`);
  return n;
}

/** Web IDL `unsigned long` without [EnforceRange]: modulo 2^32. */
function unsignedLong(v: unknown): number {
  const x = toNumber(v);
  if (!Number.isFinite(x) || x === 0) return 0;
  const n = Math.trunc(x) % 2 ** 32;
  return n < 0 ? n + 2 ** 32 : n;
}

/** Web IDL BufferSource, then "get a copy of the bytes held by the buffer source" (a detached one is empty). */
function bufferSource(v: unknown, what: string): Uint8Array {
  const bytes = copyBytes(v);
  if (!bytes) throw new TypeError(`${what} is not of type '(ArrayBuffer or ArrayBufferView)'.`);
  return bytes;
}

/** Web IDL `(object or DOMString)` (AlgorithmIdentifier): an object stays, anything else becomes a string. */
function algorithmIdentifier(v: unknown): object | string {
  return (typeof v === "object" && v !== null) || typeof v === "function" ? (v as object) : toDOMString(v);
}

const KEY_USAGES = ["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"];
const KEY_FORMATS = ["raw", "spki", "pkcs8", "jwk", "raw-public", "raw-private", "raw-seed", "raw-secret"];

/** Web IDL sequence<KeyUsage> (§3.2.26 + enumeration): an iterable of known usage strings. */
function toKeyUsages(v: unknown): string[] {
  if ((typeof v !== "object" || v === null) && typeof v !== "function") throw new TypeError("keyUsages is not a sequence.");
  const method = (v as { [Symbol.iterator]?: unknown })[Symbol.iterator];
  if (typeof method !== "function") throw new TypeError("keyUsages is not iterable.");
  const out: string[] = [];
  for (const u of { [Symbol.iterator]: () => apply(method, v, []) as Iterator<unknown> }) {
    const s = toDOMString(u);
    if (!KEY_USAGES.includes(s)) throw new TypeError(`'${s}' is not a valid enum value of type KeyUsage.`);
    out.push(s);
  }
  return out;
}

function keyFormat(v: unknown): string {
  const s = toDOMString(v);
  if (!KEY_FORMATS.includes(s)) throw new TypeError(`'${s}' is not a valid enum value of type KeyFormat.`);
  return s;
}

const JWK_STRINGS = ["alg", "crv", "d", "dp", "dq", "e", "k", "kty", "n", "p", "q", "qi", "use", "x", "y"];

/** Web IDL JsonWebKey dictionary (§18.2.2 / RFC 7517), members read in lexicographic order. */
function jsonWebKey(v: unknown): Dict {
  if (v !== undefined && v !== null && typeof v !== "object" && typeof v !== "function") throw new TypeError("keyData is not a JsonWebKey.");
  const src = (v ?? {}) as Dict;
  const out: Dict = {};
  const members = [...JWK_STRINGS, "ext", "key_ops", "oth"].sort();
  for (const k of members) {
    const m = src[k];
    if (m === undefined) continue;
    if (k === "ext") out.ext = !!m;
    else if (k === "key_ops") out.key_ops = sequence(m, "key_ops").map(toDOMString);
    else if (k === "oth") {
      out.oth = sequence(m, "oth").map((p) => {
        if (p !== undefined && p !== null && typeof p !== "object") throw new TypeError("oth is not a sequence of RsaOtherPrimesInfo.");
        const o = (p ?? {}) as Dict;
        const r: Dict = {};
        for (const f of ["d", "r", "t"]) if (o[f] !== undefined) r[f] = toDOMString(o[f]);
        return r;
      });
    } else out[k] = toDOMString(m);
  }
  return out;
}

function sequence(v: unknown, what: string): unknown[] {
  if ((typeof v !== "object" || v === null) && typeof v !== "function") throw new TypeError(`${what} is not a sequence.`);
  const method = (v as { [Symbol.iterator]?: unknown })[Symbol.iterator];
  if (typeof method !== "function") throw new TypeError(`${what} is not iterable.`);
  const out: unknown[] = [];
  for (const x of { [Symbol.iterator]: () => apply(method, v, []) as Iterator<unknown> }) out.push(x);
  return out;
}

function requireArgs(given: number, needed: number, method: string): void {
  if (given < needed) {
    throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': ${needed} arguments required, but only ${given} present.`);
  }
}

// ---------------------------------------------------------------------------------------------------
// §18.4.4 "normalize an algorithm", over the registered algorithms mayfly supports

/** A dictionary member: its name, its IDL type, whether it is required. Members in lexicographic order. */
type MemberType = "hash" | "bytes" | "string" | "octet" | "ushort" | "ulong" | "key";
type Member = readonly [name: string, type: MemberType, required: boolean];

const ALGORITHM: readonly Member[] = [];
const ECDSA_PARAMS: readonly Member[] = [["hash", "hash", true]];
const AES_GCM_PARAMS: readonly Member[] = [["additionalData", "bytes", false], ["iv", "bytes", true], ["tagLength", "octet", false]];
const HMAC_PARAMS: readonly Member[] = [["hash", "hash", true], ["length", "ulong", false]]; // HmacKeyGenParams, HmacImportParams
const AES_LENGTH: readonly Member[] = [["length", "ushort", true]]; // AesKeyGenParams, AesDerivedKeyParams
const EC_PARAMS: readonly Member[] = [["namedCurve", "string", true]]; // EcKeyGenParams, EcKeyImportParams
const RSA_HASHED_IMPORT: readonly Member[] = [["hash", "hash", true]];
const PBKDF2_PARAMS: readonly Member[] = [["hash", "hash", true], ["iterations", "ulong", true], ["salt", "bytes", true]];
const HKDF_PARAMS: readonly Member[] = [["hash", "hash", true], ["info", "bytes", true], ["salt", "bytes", true]];
const RSA_HASHED_KEYGEN: readonly Member[] = [["hash", "hash", true], ["modulusLength", "ulong", true], ["publicExponent", "bytes", true]];
const RSA_PSS_PARAMS: readonly Member[] = [["saltLength", "ulong", true]];
const RSA_OAEP_PARAMS: readonly Member[] = [["label", "bytes", false]];
const AES_CBC_PARAMS: readonly Member[] = [["iv", "bytes", true]];
const AES_CTR_PARAMS: readonly Member[] = [["counter", "bytes", true], ["length", "octet", true]];
const KEY_AGREEMENT: readonly Member[] = [["public", "key", true]]; // EcdhKeyDeriveParams, X25519's

const SIGNATURE_ALGORITHMS: Record<string, readonly Member[]> = { HMAC: ALGORITHM, ECDSA: ECDSA_PARAMS, Ed25519: ALGORITHM, "RSASSA-PKCS1-v1_5": ALGORITHM, "RSA-PSS": RSA_PSS_PARAMS };
const CIPHER_ALGORITHMS: Record<string, readonly Member[]> = { "AES-GCM": AES_GCM_PARAMS, "AES-CBC": AES_CBC_PARAMS, "AES-CTR": AES_CTR_PARAMS, "RSA-OAEP": RSA_OAEP_PARAMS };
const AES_KEYS: Record<string, readonly Member[]> = { "AES-GCM": AES_LENGTH, "AES-CBC": AES_LENGTH, "AES-CTR": AES_LENGTH, "AES-KW": AES_LENGTH };
const WRAP_ALGORITHMS: Record<string, readonly Member[]> = { ...CIPHER_ALGORITHMS, "AES-KW": ALGORITHM };

/** §18.4 "supportedAlgorithms": per operation, the algorithm names and their parameter dictionaries. */
const SUPPORTED: Record<string, Record<string, readonly Member[]>> = {
  digest: { "SHA-1": ALGORITHM, "SHA-256": ALGORITHM, "SHA-384": ALGORITHM, "SHA-512": ALGORITHM },
  sign: SIGNATURE_ALGORITHMS,
  verify: SIGNATURE_ALGORITHMS,
  encrypt: CIPHER_ALGORITHMS,
  decrypt: CIPHER_ALGORITHMS,
  generateKey: {
    HMAC: HMAC_PARAMS, ...AES_KEYS, ECDSA: EC_PARAMS, ECDH: EC_PARAMS, Ed25519: ALGORITHM, X25519: ALGORITHM,
    "RSASSA-PKCS1-v1_5": RSA_HASHED_KEYGEN, "RSA-PSS": RSA_HASHED_KEYGEN, "RSA-OAEP": RSA_HASHED_KEYGEN,
  },
  wrapKey: WRAP_ALGORITHMS,
  unwrapKey: WRAP_ALGORITHMS,
  importKey: {
    HMAC: HMAC_PARAMS, "AES-GCM": ALGORITHM, "AES-CBC": ALGORITHM, "AES-CTR": ALGORITHM, "AES-KW": ALGORITHM, ECDSA: EC_PARAMS, ECDH: EC_PARAMS,
    Ed25519: ALGORITHM, X25519: ALGORITHM, "RSASSA-PKCS1-v1_5": RSA_HASHED_IMPORT, "RSA-PSS": RSA_HASHED_IMPORT,
    "RSA-OAEP": RSA_HASHED_IMPORT, PBKDF2: ALGORITHM, HKDF: ALGORITHM,
  },
  deriveBits: { PBKDF2: PBKDF2_PARAMS, HKDF: HKDF_PARAMS, ECDH: KEY_AGREEMENT, X25519: KEY_AGREEMENT },
  "get key length": { HMAC: HMAC_PARAMS, ...AES_KEYS },
};

/** The algorithms whose keys support "export key" (PBKDF2 and HKDF keys do not). */
const EXPORTABLE = ["HMAC", "AES-GCM", "AES-CBC", "AES-CTR", "AES-KW", "ECDSA", "ECDH", "Ed25519", "X25519", "RSASSA-PKCS1-v1_5", "RSA-PSS", "RSA-OAEP"];

/** ASCII lowercase (Infra), not Unicode: "HMAC" must not match a KELVIN SIGN spelling of "hkdf". */
function asciiLower(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

/** §18.4.4 normalize an algorithm. Throws a TypeError or NotSupportedError (the caller rejects with it). */
function normalize(alg: unknown, op: string): Dict {
  // Step 1: a string is `{ name: alg }`.
  if (typeof alg === "string") return normalize({ name: alg }, op);
  const registered = SUPPORTED[op]!;
  // Step 2.2: convert to the IDL dictionary Algorithm (name is a required DOMString).
  const source = alg as Dict;
  const rawName = source.name;
  if (rawName === undefined) throw new TypeError("Algorithm: name is required.");
  const algName = toDOMString(rawName);
  // Steps 2.4-2.5: an ASCII case-insensitive match among the registered algorithms, or NotSupportedError.
  const lower = asciiLower(algName);
  let canonical: string | undefined;
  for (const k in registered) if (asciiLower(k) === lower) canonical = k;
  if (canonical === undefined) throw domError(`Unrecognized algorithm name: ${algName}`, "NotSupportedError");
  // Steps 2.6-2.10: convert to the desired type (members in order; BufferSources copied; hashes normalized).
  const normalized: Dict = { name: canonical };
  toDOMString(source.name); // the Algorithm member `name` is converted again, as part of the desired type
  for (const [member, type, required] of registered[canonical]!) {
    const v = source[member];
    if (v === undefined) {
      if (required) throw new TypeError(`${canonical}: '${member}' is required.`);
      continue;
    }
    normalized[member] = convertMember(v, type, member);
  }
  return normalized;
}

function convertMember(v: unknown, type: MemberType, member: string): unknown {
  switch (type) {
    case "hash":
      return normalize(algorithmIdentifier(v), "digest");
    case "bytes":
      return bufferSource(v, member);
    case "string":
      return toDOMString(v);
    case "octet":
      return enforceRange(v, 0xff, member);
    case "ushort":
      return enforceRange(v, 0xffff, member);
    case "ulong":
      return enforceRange(v, 0xffffffff, member);
    case "key": {
      // A key agreement's peer key: a public key of the same algorithm (§ ECDH/X25519 deriveBits step 2-4).
      const k = toCryptoKey(v, member);
      if (k.type !== "public") throw domError("The public member must be a public key.", "InvalidAccessError");
      return k.id;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// CryptoKey (§13)

interface KeyDescriptor {
  id: number;
  type: string;
  extractable: boolean;
  algorithm: Dict;
  usages: string[];
}

interface KeySlots {
  id: number;
  type: string;
  extractable: boolean;
  algorithm: Readonly<Dict>;
  usages: readonly string[];
}

/** The internal slots of each CryptoKey, out of the guest's reach. */
const slots: WeakMap<object, KeySlots> = new WeakMapCtor();
const CONSTRUCT = Symbol("CryptoKey");

function slotsOf(v: unknown): KeySlots | undefined {
  return (typeof v === "object" && v !== null) ? (apply(weakMapGet, slots, [v]) as KeySlots | undefined) : undefined;
}

function keySlots(v: unknown): KeySlots {
  const s = slotsOf(v);
  if (!s) throw new TypeError("Illegal invocation");
  return s;
}

/** Web IDL conversion to the CryptoKey interface type. */
function toCryptoKey(v: unknown, what: string): KeySlots {
  const s = slotsOf(v);
  if (!s) throw new TypeError(`${what} is not of type 'CryptoKey'.`);
  return s;
}

export class CryptoKey {
  constructor(...args: unknown[]) {
    if (args[0] !== CONSTRUCT) throw new TypeError("Illegal constructor");
    apply(weakMapSet, slots, [this, args[1]]);
  }

  /** §13.3: "secret", "private" or "public". */
  get type(): string {
    return keySlots(this).type;
  }

  get extractable(): boolean {
    return keySlots(this).extractable;
  }

  /** §13.3: the cached KeyAlgorithm object (the same one each time). */
  get algorithm(): object {
    return keySlots(this).algorithm;
  }

  /** §13.3: the cached usages array (the same one each time). */
  get usages(): readonly string[] {
    return keySlots(this).usages;
  }
}

let registry: FinalizationRegistry<number> | undefined;

/** Releases the executor's key once its CryptoKey is garbage collected. */
function release(id: number): void {
  try {
    callHost("subtle", "release", id);
  } catch {
    // The isolate's services are gone; so is the key.
  }
}

/** Deep-frozen copy of a KeyAlgorithm (a typed array member cannot be frozen and is copied instead). */
function frozenAlgorithm(a: Dict): Readonly<Dict> {
  const out: Dict = {};
  for (const k of Object.keys(a)) {
    const v = a[k];
    if (v instanceof U8) out[k] = new U8(v);
    else if (v !== null && typeof v === "object") out[k] = frozenAlgorithm(v as Dict);
    else out[k] = v;
  }
  return freeze(out);
}

function makeKey(d: KeyDescriptor): CryptoKey {
  const key = new CryptoKey(CONSTRUCT, {
    id: d.id,
    type: d.type,
    extractable: d.extractable,
    algorithm: frozenAlgorithm(d.algorithm),
    usages: freeze([...d.usages]),
  } satisfies KeySlots);
  if (FinalizationRegistryCtor) {
    registry ??= new FinalizationRegistryCtor(release);
    registry.register(key, d.id);
  }
  return key;
}

function makeKeys(r: unknown): CryptoKey | { publicKey: CryptoKey; privateKey: CryptoKey } {
  const d = r as KeyDescriptor | { publicKey: KeyDescriptor; privateKey: KeyDescriptor };
  // A CryptoKeyPair dictionary (§17): privateKey before publicKey, as the IDL conversion orders them.
  if ("publicKey" in d) return { privateKey: makeKey(d.privateKey), publicKey: makeKey(d.publicKey) };
  return makeKey(d);
}

/** Whether a value is a CryptoKey (for structuredClone, which cannot clone one: DataCloneError). */
export function isCryptoKey(v: unknown): boolean {
  return slotsOf(v) !== undefined;
}

// ---------------------------------------------------------------------------------------------------
// SubtleCrypto (§14)

/** A host failure as the WebCrypto error: TypeError/RangeError stay, the others are DOMExceptions. */
function webCryptoError(e: unknown): Error {
  const err = e as Error;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof DOMException) return err;
  return domError(`${err?.message ?? err}`, typeof err?.name === "string" && err.name !== "Error" ? err.name : "OperationError");
}

function hostTask<T>(op: string, ...args: unknown[]): Promise<T> {
  return startHostTask<T>("subtle", op, ...args).promise.then(undefined, (e: unknown) => {
    throw webCryptoError(e);
  });
}

/** Web IDL: an operation returning a promise rejects with what its steps (or argument conversions) throw. */
function promised<T>(steps: () => Promise<T>): Promise<T> {
  try {
    return steps();
  } catch (e) {
    return Promise.reject(e);
  }
}

function checkThis(v: unknown, method: string): void {
  if (!isSubtle(v)) throw new TypeError(`Failed to execute '${method}' on 'SubtleCrypto': Illegal invocation`);
}

/** The checks of §14.3.x shared by the key-using methods: algorithm name matches the key's, and the usage. */
function checkKey(key: KeySlots, algorithmName: unknown, usage: string): void {
  if (algorithmName !== key.algorithm.name) throw domError(`The key's algorithm is ${key.algorithm.name as string}, not ${algorithmName as string}.`, "InvalidAccessError");
  if (!key.usages.includes(usage)) throw domError(`The key does not permit the '${usage}' usage.`, "InvalidAccessError");
}

function cipher(self: unknown, op: "encrypt" | "decrypt" | "sign", argc: number, algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
  checkThis(self, op);
  requireArgs(argc, 3, op);
  const alg = algorithmIdentifier(algorithm);
  const k = toCryptoKey(key, "key");
  const bytes = bufferSource(data, "data");
  const normalized = normalize(alg, op);
  checkKey(k, normalized.name, op);
  return hostTask<ArrayBuffer>(op, normalized, k.id, bytes);
}

let constructing = false;

export class SubtleCrypto {
  #brand = true;

  constructor() {
    if (!constructing) throw new TypeError("Illegal constructor");
  }

  /** The Web IDL "implements" check (a real SubtleCrypto, not an object with its prototype). Removed from the class below. */
  static isSubtle(v: unknown): boolean {
    return typeof v === "object" && v !== null && #brand in v;
  }

  /** §14.3.5 digest(algorithm, data). */
  digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "digest");
      requireArgs(argc, 2, "digest");
      const alg = algorithmIdentifier(algorithm);
      const bytes = bufferSource(data, "data");
      const normalized = normalize(alg, "digest");
      return hostTask<ArrayBuffer>("digest", normalized, bytes);
    });
  }

  /** §14.3.1 encrypt(algorithm, key, data). */
  encrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => cipher(this, "encrypt", argc, algorithm, key, data));
  }

  /** §14.3.2 decrypt(algorithm, key, data). */
  decrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => cipher(this, "decrypt", argc, algorithm, key, data));
  }

  /** §14.3.3 sign(algorithm, key, data). */
  sign(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => cipher(this, "sign", argc, algorithm, key, data));
  }

  /** §14.3.4 verify(algorithm, key, signature, data). */
  verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "verify");
      requireArgs(argc, 4, "verify");
      const alg = algorithmIdentifier(algorithm);
      const k = toCryptoKey(key, "key");
      const sig = bufferSource(signature, "signature");
      const bytes = bufferSource(data, "data");
      const normalized = normalize(alg, "verify");
      checkKey(k, normalized.name, "verify");
      return hostTask<boolean>("verify", normalized, k.id, sig, bytes);
    });
  }

  /** §14.3.6 generateKey(algorithm, extractable, keyUsages). */
  generateKey(algorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey | { publicKey: CryptoKey; privateKey: CryptoKey }> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "generateKey");
      requireArgs(argc, 3, "generateKey");
      const alg = algorithmIdentifier(algorithm);
      const ex = !!extractable;
      const usages = toKeyUsages(keyUsages);
      const normalized = normalize(alg, "generateKey");
      return hostTask<unknown>("generateKey", normalized, ex, usages).then(makeKeys);
    });
  }

  /** §14.3.7 deriveKey(algorithm, baseKey, derivedKeyType, extractable, keyUsages). */
  deriveKey(algorithm: unknown, baseKey: unknown, derivedKeyType: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "deriveKey");
      requireArgs(argc, 5, "deriveKey");
      const alg = algorithmIdentifier(algorithm);
      const k = toCryptoKey(baseKey, "baseKey");
      const derivedType = algorithmIdentifier(derivedKeyType);
      const ex = !!extractable;
      const usages = toKeyUsages(keyUsages);
      const normalized = normalize(alg, "deriveBits");
      normalize(derivedType, "importKey");
      const lengthAlg = normalize(derivedType, "get key length");
      checkKey(k, normalized.name, "deriveKey");
      return hostTask<KeyDescriptor>("deriveKey", normalized, k.id, lengthAlg, ex, usages).then(makeKey);
    });
  }

  /** §14.3.8 deriveBits(algorithm, baseKey, length). */
  deriveBits(algorithm: unknown, baseKey: unknown, length?: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "deriveBits");
      requireArgs(argc, 2, "deriveBits");
      const alg = algorithmIdentifier(algorithm);
      const k = toCryptoKey(baseKey, "baseKey");
      const bits = length === undefined || length === null ? null : unsignedLong(length);
      const normalized = normalize(alg, "deriveBits");
      checkKey(k, normalized.name, "deriveBits");
      return hostTask<ArrayBuffer>("deriveBits", normalized, k.id, bits);
    });
  }

  /** §14.3.9 importKey(format, keyData, algorithm, extractable, keyUsages). */
  importKey(format: unknown, keyData: unknown, algorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "importKey");
      requireArgs(argc, 5, "importKey");
      const fmt = keyFormat(format);
      // (BufferSource or JsonWebKey): a buffer is a BufferSource, anything else the dictionary.
      const isBuffer = isView(keyData) || isArrayBuffer(keyData);
      const data = isBuffer ? bufferSource(keyData, "keyData") : jsonWebKey(keyData);
      const alg = algorithmIdentifier(algorithm);
      const ex = !!extractable;
      const usages = toKeyUsages(keyUsages);
      const normalized = normalize(alg, "importKey");
      if (fmt === "jwk" && isBuffer) throw new TypeError("keyData must be a JsonWebKey for the 'jwk' format.");
      if (fmt !== "jwk" && !isBuffer) throw new TypeError(`keyData must be a BufferSource for the '${fmt}' format.`);
      return hostTask<KeyDescriptor>("importKey", fmt, data, normalized, ex, usages).then(makeKey);
    });
  }

  /** §14.3.11 wrapKey(format, key, wrappingKey, wrapAlgorithm). */
  wrapKey(format: unknown, key: unknown, wrappingKey: unknown, wrapAlgorithm: unknown): Promise<ArrayBuffer> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "wrapKey");
      requireArgs(argc, 4, "wrapKey");
      const fmt = keyFormat(format);
      const k = toCryptoKey(key, "key");
      const w = toCryptoKey(wrappingKey, "wrappingKey");
      const normalized = normalize(algorithmIdentifier(wrapAlgorithm), "wrapKey");
      checkKey(w, normalized.name, "wrapKey");
      if (!EXPORTABLE.includes(k.algorithm.name as string)) throw domError(`${k.algorithm.name as string} keys cannot be exported.`, "NotSupportedError");
      if (!k.extractable) throw domError("The key is not extractable.", "InvalidAccessError");
      return hostTask<ArrayBuffer>("wrapKey", fmt, k.id, w.id, normalized);
    });
  }

  /** §14.3.12 unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, keyUsages). */
  unwrapKey(format: unknown, wrappedKey: unknown, unwrappingKey: unknown, unwrapAlgorithm: unknown, unwrappedKeyAlgorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "unwrapKey");
      requireArgs(argc, 7, "unwrapKey");
      const fmt = keyFormat(format);
      const wrapped = bufferSource(wrappedKey, "wrappedKey");
      const u = toCryptoKey(unwrappingKey, "unwrappingKey");
      const normalized = normalize(algorithmIdentifier(unwrapAlgorithm), "unwrapKey");
      const keyAlg = normalize(algorithmIdentifier(unwrappedKeyAlgorithm), "importKey");
      const ex = !!extractable;
      const usages = toKeyUsages(keyUsages);
      checkKey(u, normalized.name, "unwrapKey");
      return hostTask<KeyDescriptor>("unwrapKey", fmt, wrapped, u.id, normalized, keyAlg, ex, usages).then(makeKey);
    });
  }

  /** §14.3.10 exportKey(format, key). */
  exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | Dict> {
    const argc = arguments.length;
    return promised(() => {
      checkThis(this, "exportKey");
      requireArgs(argc, 2, "exportKey");
      const fmt = keyFormat(format);
      const k = toCryptoKey(key, "key");
      if (!EXPORTABLE.includes(k.algorithm.name as string)) throw domError(`${k.algorithm.name as string} keys cannot be exported.`, "NotSupportedError");
      if (!k.extractable) throw domError("The key is not extractable.", "InvalidAccessError");
      return hostTask<ArrayBuffer | Dict>("exportKey", fmt, k.id);
    });
  }
}

const isSubtle = SubtleCrypto.isSubtle;
delete (SubtleCrypto as { isSubtle?: unknown }).isSubtle;
for (const proto of [CryptoKey.prototype, SubtleCrypto.prototype]) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === "constructor") continue;
    defineProperty(proto, name, { ...Object.getOwnPropertyDescriptor(proto, name), enumerable: true });
  }
}
defineProperty(CryptoKey.prototype, Symbol.toStringTag, { value: "CryptoKey", configurable: true });
defineProperty(SubtleCrypto.prototype, Symbol.toStringTag, { value: "SubtleCrypto", configurable: true });

/** Adds `crypto.subtle` to the `crypto` global and the `CryptoKey` and `SubtleCrypto` interfaces. */
export function installSubtle(g: typeof globalThis): void {
  constructing = true;
  const subtle = new SubtleCrypto();
  constructing = false;
  defineProperty(crypto, "subtle", { get: () => subtle, enumerable: false, configurable: true });
  defineProperty(g, "CryptoKey", { value: CryptoKey, writable: true, configurable: true });
  defineProperty(g, "SubtleCrypto", { value: SubtleCrypto, writable: true, configurable: true });
}
