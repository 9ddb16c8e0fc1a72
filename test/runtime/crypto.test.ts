/**
 * crypto.subtle inside the isolate (W3C Web Cryptography API; section numbers are those of the W3C
 * Recommendation / editor's draft: §13 CryptoKey, §14.3.x the SubtleCrypto methods, §18.4.4 "normalize
 * an algorithm", then the algorithm sections by name). Each test runs the crypto in a worker's fetch
 * handler and checks its JSON answer here, against known-answer vectors or Node's own crypto.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { constants, createCipheriv, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, sign as nodeSign, verify as nodeVerify, webcrypto } from "node:crypto";

import { MAX_INFLIGHT_BYTES, subtleService } from "../../src/engine/executor/services/subtle.ts";
import type { ServiceState } from "../../src/engine/executor/services/index.ts";
import { fetchText, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

/** Helpers every test worker has: hex in and out, ASCII bytes, and the name of what a promise rejects with. */
const PRELUDE = `
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => new Uint8Array((s.match(/../g) ?? []).map((h) => parseInt(h, 16)));
const ascii = (s) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const errorOf = async (p) => { try { await p; return "resolved" } catch (e) { return e.name } };
const subtle = crypto.subtle;
`;

function source(body: string): string {
  return `${PRELUDE}\nexport default { async fetch(request, env, ctx) { ${body} } }`;
}

async function run(body: string): Promise<any> {
  const stub = ctx.loader.load(worker(source(body)));
  const text = await fetchText(stub);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`worker answered: ${text}`);
  }
}

const sha = (alg: string, data: string | Uint8Array) => createHash(alg).update(data).digest("hex");
const b64url = (hex: string) => Buffer.from(hex, "hex").toString("base64url");

describe("digest (§14.3.5, SHA §'SHA' registration)", () => {
  test("known answers for 'abc' (FIPS 180-2 appendix examples) for SHA-1/256/384/512", async () => {
    const out = await run(`
      const r = {};
      for (const a of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) r[a] = hex(await subtle.digest(a, ascii("abc")));
      return Response.json(r);`);
    assert.equal(out["SHA-256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(out["SHA-1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert.equal(out["SHA-384"], "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    assert.equal(out["SHA-512"], "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  });

  test("every BufferSource is copied with its own offset and length; the result is an ArrayBuffer (§14.3.5 steps 2 and 9)", async () => {
    const out = await run(`
      const big = new Uint8Array(1 << 20).map((_, i) => i % 251);
      const backing = new Uint8Array([0, 0, 97, 98, 99, 0]);
      const views = [backing.subarray(2, 5), new DataView(backing.buffer, 2, 3), backing.buffer.slice(2, 5), new Uint16Array(backing.buffer, 2, 1)];
      const r = [];
      for (const v of views) r.push(hex(await subtle.digest("SHA-256", v)));
      const d = await subtle.digest({ name: "SHA-256" }, big);
      return Response.json({ r, big: hex(d), isBuffer: d instanceof ArrayBuffer, tag: Object.prototype.toString.call(d) });`);
    const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert.deepEqual(out.r, [abc, abc, abc, sha("sha256", "ab")]);
    assert.equal(out.big, sha("sha256", new Uint8Array(1 << 20).map((_, i) => i % 251)));
    assert.equal(out.isBuffer, true);
    assert.equal(out.tag, "[object ArrayBuffer]");
  });

  test("the data is copied when the method is called: later writes do not change the digest (§14.3.5 step 2)", async () => {
    const out = await run(`
      const data = ascii("abc"); const p = subtle.digest("SHA-256", data); data.fill(0);
      return Response.json(hex(await p));`);
    assert.equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("normalize an algorithm (§18.4.4) and Web IDL argument conversion", () => {
  test("names match ASCII case-insensitively and are canonicalized; hash may be a string or {name}", async () => {
    const out = await run(`
      const d = hex(await subtle.digest("sHa-256", ascii("abc")));
      const k = await subtle.importKey("raw", ascii("Jefe"), { name: "hmac", hash: "sha-256" }, true, ["sign"]);
      const k2 = await subtle.importKey("raw", ascii("Jefe"), { name: "HMAC", hash: { name: "Sha-256" } }, true, ["sign"]);
      const kelvin = await errorOf(subtle.importKey("raw", ascii("k"), "H\\u212ADF", false, ["deriveBits"]));
      return Response.json({ d, alg: k.algorithm, alg2: k2.algorithm, kelvin });`);
    assert.equal(out.d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.deepEqual(out.alg, { name: "HMAC", hash: { name: "SHA-256" }, length: 32 });
    assert.deepEqual(out.alg2, out.alg);
    assert.equal(out.kelvin, "NotSupportedError", "only ASCII letters fold (a KELVIN SIGN is not a K)");
  });

  test("unknown or unsupported algorithms are refused with NotSupportedError (§18.4.4 step 2.5)", async () => {
    const out = await run(`
      const aes = await subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt"]);
      return Response.json([
        await errorOf(subtle.digest("MD5", ascii("x"))),
        await errorOf(subtle.digest({ name: "SHA3-256" }, ascii("x"))),
        await errorOf(subtle.digest(256, ascii("x"))),
        await errorOf(subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 8192, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"])),
        await errorOf(subtle.importKey("raw", new Uint8Array(16), "ChaCha20-Poly1305", false, ["encrypt"])),
        await errorOf(subtle.encrypt({ name: "AES-OCB", iv: new Uint8Array(16) }, aes, ascii("x"))),
        await errorOf(subtle.generateKey({ name: "X448" }, false, ["deriveBits"])),
        await errorOf(subtle.generateKey({ name: "ECDSA", namedCurve: "secp256k1" }, false, ["sign"])),
        await errorOf(subtle.generateKey({ name: "HMAC", hash: "MD5" }, false, ["sign"])),
      ]);`);
    assert.deepEqual(out, Array(9).fill("NotSupportedError"));
  });

  test("wrong argument types reject with TypeError (Web IDL BufferSource, dictionaries, enums, sequences)", async () => {
    const out = await run(`
      const key = await subtle.importKey("raw", new Uint8Array(16), "AES-GCM", false, ["encrypt"]);
      return Response.json([
        await errorOf(subtle.digest("SHA-256", "abc")),
        await errorOf(subtle.digest("SHA-256", [1, 2, 3])),
        await errorOf(subtle.digest("SHA-256", null)),
        await errorOf(subtle.digest("SHA-256")),
        await errorOf(subtle.digest({}, ascii("x"))),
        await errorOf(subtle.digest({ name: Symbol("x") }, ascii("x"))),
        await errorOf(subtle.encrypt({ name: "AES-GCM" }, key, ascii("x"))),
        await errorOf(subtle.encrypt({ name: "AES-GCM", iv: [1, 2, 3] }, key, ascii("x"))),
        await errorOf(subtle.generateKey({ name: "AES-GCM", length: Infinity }, true, ["encrypt"])),
        await errorOf(subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["launch"])),
        await errorOf(subtle.generateKey({ name: "AES-GCM", length: 256 }, true, "encrypt")),
        await errorOf(subtle.importKey("pem", new Uint8Array(16), "AES-GCM", true, ["encrypt"])),
        await errorOf(subtle.importKey("jwk", new Uint8Array(16), "AES-GCM", true, ["encrypt"])),
        await errorOf(subtle.importKey("raw", { kty: "oct", k: "AAAA" }, "AES-GCM", true, ["encrypt"])),
        await errorOf(SubtleCrypto.prototype.digest.call({}, "SHA-256", ascii("x"))),
        await errorOf(SubtleCrypto.prototype.digest.call(Object.create(SubtleCrypto.prototype), "SHA-256", ascii("x"))),
      ]);`);
    assert.deepEqual(out, Array(16).fill("TypeError"));
  });

  test("methods reject rather than throw, even for bad arguments (Web IDL: operations returning promises)", async () => {
    const out = await run(`
      let threw = false; let p;
      try { p = subtle.digest("MD5") } catch { threw = true }
      return Response.json({ threw, isPromise: p instanceof Promise, name: await errorOf(p) });`);
    assert.deepEqual(out, { threw: false, isPromise: true, name: "TypeError" });
  });
});

describe("HMAC (§'HMAC', with sign §14.3.3 / verify §14.3.4)", () => {
  test("RFC 4231 test case 2 (HMAC-SHA-256, key 'Jefe'); verify true for it and false for other data", async () => {
    const out = await run(`
      const key = await subtle.importKey("raw", ascii("Jefe"), { name: "HMAC", hash: "SHA-256" }, true, ["sign", "verify"]);
      const data = ascii("what do ya want for nothing?");
      const mac = await subtle.sign("HMAC", key, data);
      return Response.json({
        mac: hex(mac),
        ok: await subtle.verify("HMAC", key, mac, data),
        bad: await subtle.verify("HMAC", key, mac, ascii("what do ya want for something?")),
        jwk: await subtle.exportKey("jwk", key),
        raw: hex(await subtle.exportKey("raw", key)),
      });`);
    assert.equal(out.mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert.equal(out.ok, true);
    assert.equal(out.bad, false);
    assert.equal(out.raw, Buffer.from("Jefe").toString("hex"));
    assert.deepEqual({ kty: out.jwk.kty, k: out.jwk.k, alg: out.jwk.alg, ext: out.jwk.ext }, { kty: "oct", k: "SmVmZQ", alg: "HS256", ext: true });
    assert.deepEqual([...out.jwk.key_ops].sort(), ["sign", "verify"]);
  });

  test("generateKey gives a key of the hash's block size; a JWK import signs as the raw key does (§'HMAC' generate/import/export)", async () => {
    const out = await run(`
      const g = await subtle.generateKey({ name: "HMAC", hash: "SHA-512" }, true, ["sign"]);
      const jwkKey = await subtle.importKey("jwk", { kty: "oct", k: "SmVmZQ", alg: "HS256" }, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const data = ascii("what do ya want for nothing?");
      return Response.json({ alg: g.algorithm, raw: (await subtle.exportKey("raw", g)).byteLength, mac: hex(await subtle.sign("HMAC", jwkKey, data)), type: g.type });`);
    assert.deepEqual(out.alg, { name: "HMAC", hash: { name: "SHA-512" }, length: 1024 });
    assert.equal(out.raw, 128);
    assert.equal(out.type, "secret");
    assert.equal(out.mac, createHmac("sha256", "Jefe").update("what do ya want for nothing?").digest("hex"));
  });
});

describe("AES-GCM (§'AES-GCM', encrypt §14.3.1 / decrypt §14.3.2)", () => {
  const keyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  const ivHex = "cafebabefacedbaddecaf888";

  test("encrypt matches Node's AES-256-GCM (ciphertext || 128-bit tag), decrypt round-trips; a tampered byte is an OperationError", async () => {
    const out = await run(`
      const key = await subtle.importKey("raw", unhex("${keyHex}"), "AES-GCM", true, ["encrypt", "decrypt"]);
      const params = { name: "AES-GCM", iv: unhex("${ivHex}"), additionalData: ascii("header") };
      const ct = new Uint8Array(await subtle.encrypt(params, key, ascii("attack at dawn")));
      const pt = await subtle.decrypt(params, key, ct);
      const tampered = ct.slice(); tampered[0] ^= 1;
      const badTag = ct.slice(); badTag[badTag.length - 1] ^= 1;
      return Response.json({
        ct: hex(ct), pt: String.fromCharCode(...new Uint8Array(pt)),
        tampered: await errorOf(subtle.decrypt(params, key, tampered)),
        badTag: await errorOf(subtle.decrypt(params, key, badTag)),
        wrongAad: await errorOf(subtle.decrypt({ ...params, additionalData: ascii("other") }, key, ct)),
        isDom: await subtle.decrypt(params, key, tampered).catch((e) => e instanceof DOMException),
      });`);
    const c = createCipheriv("aes-256-gcm", Buffer.from(keyHex, "hex"), Buffer.from(ivHex, "hex"));
    c.setAAD(Buffer.from("header"));
    const expected = Buffer.concat([c.update("attack at dawn"), c.final(), c.getAuthTag()]).toString("hex");
    assert.equal(out.ct, expected);
    assert.equal(out.pt, "attack at dawn");
    assert.equal(out.tampered, "OperationError");
    assert.equal(out.badTag, "OperationError");
    assert.equal(out.wrongAad, "OperationError");
    assert.equal(out.isDom, true);
  });

  test("generateKey, a shorter tag, and raw/jwk export and import round trips (A128GCM)", async () => {
    const out = await run(`
      const key = await subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt", "decrypt"]);
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await subtle.encrypt({ name: "AES-GCM", iv, tagLength: 96 }, key, ascii("hello"));
      const jwk = await subtle.exportKey("jwk", key);
      const raw = await subtle.exportKey("raw", key);
      const fromJwk = await subtle.importKey("jwk", jwk, "AES-GCM", false, ["decrypt"]);
      const fromRaw = await subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["decrypt"]);
      const dec = async (k) => String.fromCharCode(...new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv, tagLength: 96 }, k, ct)));
      return Response.json({ alg: key.algorithm, len: ct.byteLength, kty: jwk.kty, jalg: jwk.alg, raw: raw.byteLength, a: await dec(fromJwk), b: await dec(fromRaw),
        badLength: await errorOf(subtle.generateKey({ name: "AES-GCM", length: 100 }, true, ["encrypt"])) });`);
    assert.deepEqual(out, { alg: { name: "AES-GCM", length: 128 }, len: 5 + 12, kty: "oct", jalg: "A128GCM", raw: 16, a: "hello", b: "hello", badLength: "OperationError" });
  });
});

describe("ECDSA (§'ECDSA')", () => {
  test("a guest P-256 signature verifies in the host with Node's WebCrypto, from the exported jwk, spki and raw public key", async () => {
    const out = await run(`
      const { publicKey, privateKey } = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
      const data = ascii("hello mayfly");
      const sig = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, data);
      return Response.json({
        sig: hex(sig),
        jwk: await subtle.exportKey("jwk", publicKey),
        spki: hex(await subtle.exportKey("spki", publicKey)),
        raw: hex(await subtle.exportKey("raw", publicKey)),
        rawPublic: hex(await subtle.exportKey("raw-public", publicKey)),
        pkcs8: hex(await subtle.exportKey("pkcs8", privateKey)),
        self: await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, sig, data),
        types: [publicKey.type, privateKey.type], alg: publicKey.algorithm,
        usages: [publicKey.usages, privateKey.usages],
      });`);
    const subtle = webcrypto.subtle;
    const data = Buffer.from("hello mayfly");
    const sig = Buffer.from(out.sig, "hex");
    assert.equal(sig.length, 64, "IEEE P1363 r || s");
    const params = { name: "ECDSA", namedCurve: "P-256" };
    const fromJwk = await subtle.importKey("jwk", out.jwk, params, true, ["verify"]);
    const fromSpki = await subtle.importKey("spki", Buffer.from(out.spki, "hex"), params, true, ["verify"]);
    const fromRaw = await subtle.importKey("raw", Buffer.from(out.raw, "hex"), params, true, ["verify"]);
    for (const k of [fromJwk, fromSpki, fromRaw]) assert.equal(await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k, sig, data), true);
    assert.equal(await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, fromJwk, sig, Buffer.from("other")), false);
    assert.equal(out.rawPublic, out.raw);
    assert.equal(out.raw.length, 130);
    assert.equal(out.jwk.kty, "EC");
    assert.equal(out.jwk.crv, "P-256");
    assert.equal(out.jwk.d, undefined, "the public JWK has no private part");
    assert.equal(out.self, true);
    assert.deepEqual(out.types, ["public", "private"]);
    assert.deepEqual(out.alg, params);
    assert.deepEqual(out.usages, [["verify"], ["sign"]]);
    // And the exported private key signs in the host for the guest's public key.
    const priv = await subtle.importKey("pkcs8", Buffer.from(out.pkcs8, "hex"), params, false, ["sign"]);
    const hostSig = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, priv, Buffer.from("from host"));
    assert.equal(await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, fromSpki, hostSig, Buffer.from("from host")), true);
  });

  test("a host P-256 signature verifies in the guest after spki, jwk and raw imports; pkcs8/jwk private imports sign", async () => {
    const subtle = webcrypto.subtle;
    const pair = (await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const sig = Buffer.from(await subtle.sign({ name: "ECDSA", hash: "SHA-384" }, pair.privateKey, Buffer.from("msg"))).toString("hex");
    const spki = Buffer.from(await subtle.exportKey("spki", pair.publicKey)).toString("hex");
    const raw = Buffer.from(await subtle.exportKey("raw", pair.publicKey)).toString("hex");
    const jwk = await subtle.exportKey("jwk", pair.publicKey);
    const pkcs8 = Buffer.from(await subtle.exportKey("pkcs8", pair.privateKey)).toString("hex");
    const privJwk = await subtle.exportKey("jwk", pair.privateKey);
    const out = await run(`
      const p = { name: "ECDSA", namedCurve: "P-256" }; const s = { name: "ECDSA", hash: "SHA-384" };
      const keys = [
        await subtle.importKey("spki", unhex("${spki}"), p, true, ["verify"]),
        await subtle.importKey("jwk", ${JSON.stringify(jwk)}, p, true, ["verify"]),
        await subtle.importKey("raw", unhex("${raw}"), p, true, ["verify"]),
      ];
      const ok = []; for (const k of keys) ok.push(await subtle.verify(s, k, unhex("${sig}"), ascii("msg")));
      const priv = await subtle.importKey("pkcs8", unhex("${pkcs8}"), p, true, ["sign"]);
      const privJ = await subtle.importKey("jwk", ${JSON.stringify(privJwk)}, p, false, ["sign"]);
      const s1 = await subtle.sign(s, priv, ascii("again")); const s2 = await subtle.sign(s, privJ, ascii("again"));
      return Response.json({ ok, v1: await subtle.verify(s, keys[0], s1, ascii("again")), v2: await subtle.verify(s, keys[0], s2, ascii("again")),
        spki: hex(await subtle.exportKey("spki", keys[1])), pkcs8: hex(await subtle.exportKey("pkcs8", priv)),
        garbage: await errorOf(subtle.importKey("spki", new Uint8Array(10), p, true, ["verify"])),
        wrongCurve: await errorOf(subtle.importKey("spki", unhex("${spki}"), { name: "ECDSA", namedCurve: "P-384" }, true, ["verify"])) });`);
    assert.deepEqual(out.ok, [true, true, true]);
    assert.equal(out.v1, true);
    assert.equal(out.v2, true);
    assert.equal(out.spki, spki, "spki round trip (jwk in, spki out) gives the same encoding");
    assert.equal(out.pkcs8.length > 0, true);
    assert.equal(out.garbage, "DataError");
    assert.equal(out.wrongCurve, "DataError");
  });
});

describe("Ed25519 (§'Ed25519', Secure Curves in WebCrypto)", () => {
  // RFC 8032 §7.1, TEST 1: empty message.
  const secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
  const pub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
  const expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

  test("RFC 8032 test 1: pkcs8 and jwk private keys sign the empty message to the known signature; the raw public key verifies it", async () => {
    const out = await run(`
      const pkcs8 = unhex("302e020100300506032b657004220420${secret}");
      const priv = await subtle.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]);
      const privJwk = await subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: "${b64url(secret)}", x: "${b64url(pub)}" }, { name: "Ed25519" }, false, ["sign"]);
      const pubKey = await subtle.importKey("raw", unhex("${pub}"), "Ed25519", true, ["verify"]);
      const sig = await subtle.sign("Ed25519", priv, new Uint8Array(0));
      const sig2 = await subtle.sign({ name: "ed25519" }, privJwk, new Uint8Array(0));
      return Response.json({ sig: hex(sig), sig2: hex(sig2), ok: await subtle.verify("Ed25519", pubKey, sig, new Uint8Array(0)),
        bad: await subtle.verify("Ed25519", pubKey, sig, new Uint8Array(1)),
        raw: hex(await subtle.exportKey("raw", pubKey)), jwk: await subtle.exportKey("jwk", priv), pkcs8: hex(await subtle.exportKey("pkcs8", priv)),
        alg: priv.algorithm });`);
    assert.equal(out.sig, expected);
    assert.equal(out.sig2, expected);
    assert.equal(out.ok, true);
    assert.equal(out.bad, false);
    assert.equal(out.raw, pub);
    assert.equal(out.pkcs8, `302e020100300506032b657004220420${secret}`);
    assert.deepEqual({ kty: out.jwk.kty, crv: out.jwk.crv, d: out.jwk.d, x: out.jwk.x }, { kty: "OKP", crv: "Ed25519", d: b64url(secret), x: b64url(pub) });
    assert.deepEqual(out.alg, { name: "Ed25519" });
  });

  test("generateKey gives a pair whose signature the host verifies from the spki export", async () => {
    const out = await run(`
      const { publicKey, privateKey } = await subtle.generateKey("Ed25519", true, ["sign", "verify"]);
      const sig = await subtle.sign("Ed25519", privateKey, ascii("m"));
      return Response.json({ sig: hex(sig), spki: hex(await subtle.exportKey("spki", publicKey)) });`);
    const k = await webcrypto.subtle.importKey("spki", Buffer.from(out.spki, "hex"), "Ed25519", true, ["verify"]);
    assert.equal(await webcrypto.subtle.verify("Ed25519", k, Buffer.from(out.sig, "hex"), Buffer.from("m")), true);
  });
});

describe("RSASSA-PKCS1-v1_5 (§'RSASSA-PKCS1-v1_5')", () => {
  test("verifies a signature made in the host with Node's crypto, from spki and jwk imports; a pkcs8 import signs for the host", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const msg = "signed by the host";
    const sig = nodeSign("sha256", Buffer.from(msg), privateKey).toString("hex");
    const spki = publicKey.export({ format: "der", type: "spki" }).toString("hex");
    const jwk = publicKey.export({ format: "jwk" });
    const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" }).toString("hex");
    const out = await run(`
      const p = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
      const a = await subtle.importKey("spki", unhex("${spki}"), p, true, ["verify"]);
      const b = await subtle.importKey("jwk", ${JSON.stringify(jwk)}, p, false, ["verify"]);
      const priv = await subtle.importKey("pkcs8", unhex("${pkcs8}"), p, false, ["sign"]);
      const sig = unhex("${sig}");
      const tampered = sig.slice(); tampered[5] ^= 0x40;
      return Response.json({
        a: await subtle.verify("RSASSA-PKCS1-v1_5", a, sig, ascii("${msg}")),
        b: await subtle.verify("RSASSA-PKCS1-v1_5", b, sig, ascii("${msg}")),
        tampered: await subtle.verify("RSASSA-PKCS1-v1_5", a, tampered, ascii("${msg}")),
        other: await subtle.verify("RSASSA-PKCS1-v1_5", a, sig, ascii("something else")),
        guestSig: hex(await subtle.sign("RSASSA-PKCS1-v1_5", priv, ascii("signed by the guest"))),
        alg: a.algorithm, exponentIsBytes: a.algorithm.publicExponent instanceof Uint8Array, jwkOut: (await subtle.exportKey("jwk", a)).n,
      });`);
    assert.equal(out.a, true);
    assert.equal(out.b, true);
    assert.equal(out.tampered, false);
    assert.equal(out.other, false);
    assert.equal(nodeVerify("sha256", Buffer.from("signed by the guest"), publicKey, Buffer.from(out.guestSig, "hex")), true);
    assert.equal(out.alg.name, "RSASSA-PKCS1-v1_5");
    assert.equal(out.alg.modulusLength, 2048);
    assert.deepEqual(out.alg.hash, { name: "SHA-256" });
    assert.equal(out.exponentIsBytes, true);
    assert.equal(out.jwkOut, jwk.n);
  });
});

describe("RSA-PSS and RSA-OAEP (§'RSA-PSS', §'RSA-OAEP')", () => {
  test("RSA-PSS: a host signature verifies in the guest; a guest signature (generated key) verifies in the host", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const msg = "pss by the host";
    const pss = { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    const sig = nodeSign("sha256", Buffer.from(msg), pss).toString("hex");
    const out = await run(`
      const p = { name: "RSA-PSS", hash: "SHA-256" };
      const pub = await subtle.importKey("jwk", ${JSON.stringify(publicKey.export({ format: "jwk" }))}, p, false, ["verify"]);
      const ok = await subtle.verify({ name: "RSA-PSS", saltLength: 32 }, pub, unhex("${sig}"), ascii("${msg}"));
      const pair = await subtle.generateKey({ name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]);
      const guestSig = await subtle.sign({ name: "RSA-PSS", saltLength: 32 }, pair.privateKey, ascii("pss by the guest"));
      return Response.json({ ok, guestSig: hex(guestSig), spki: hex(await subtle.exportKey("spki", pair.publicKey)), alg: pair.publicKey.algorithm.name });`);
    assert.equal(out.ok, true);
    assert.equal(out.alg, "RSA-PSS");
    const guestKey = createPublicKey({ key: Buffer.from(out.spki, "hex"), format: "der", type: "spki" });
    assert.equal(nodeVerify("sha256", Buffer.from("pss by the guest"), { key: guestKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(out.guestSig, "hex")), true);
  });

  test("RSA-OAEP: the guest encrypts with a label, the host decrypts it; and the guest round-trips", async () => {
    const out = await run(`
      const pair = await subtle.generateKey({ name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["encrypt", "decrypt"]);
      const sealed = await subtle.encrypt({ name: "RSA-OAEP", label: ascii("ctx") }, pair.publicKey, ascii("secret message"));
      const opened = await subtle.decrypt({ name: "RSA-OAEP", label: ascii("ctx") }, pair.privateKey, sealed);
      const wrongLabel = await errorOf(subtle.decrypt({ name: "RSA-OAEP", label: ascii("other") }, pair.privateKey, sealed));
      return Response.json({ sealed: hex(sealed), opened: String.fromCharCode(...new Uint8Array(opened)), wrongLabel, pkcs8: hex(await subtle.exportKey("pkcs8", pair.privateKey)) });`);
    assert.equal(out.opened, "secret message");
    assert.equal(out.wrongLabel, "OperationError");
    const key = createPrivateKey({ key: Buffer.from(out.pkcs8, "hex"), format: "der", type: "pkcs8" });
    const plain = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: Buffer.from("ctx") }, Buffer.from(out.sealed, "hex"));
    assert.equal(plain.toString(), "secret message");
  });
});

describe("AES-CBC and AES-CTR (§'AES-CBC', §'AES-CTR')", () => {
  test("both match Node's AES-128 ciphers for the same key, iv/counter and data, and decrypt back", async () => {
    const keyHex = "000102030405060708090a0b0c0d0e0f";
    const ivHex = "f0e0d0c0b0a090807060504030201000";
    const data = "seventeen bytes!!";
    const cbc = createCipheriv("aes-128-cbc", Buffer.from(keyHex, "hex"), Buffer.from(ivHex, "hex"));
    const ctr = createCipheriv("aes-128-ctr", Buffer.from(keyHex, "hex"), Buffer.from(ivHex, "hex"));
    const out = await run(`
      const cbcKey = await subtle.importKey("raw", unhex("${keyHex}"), "AES-CBC", true, ["encrypt", "decrypt"]);
      const ctrKey = await subtle.importKey("raw", unhex("${keyHex}"), { name: "AES-CTR" }, false, ["encrypt", "decrypt"]);
      const cbc = await subtle.encrypt({ name: "AES-CBC", iv: unhex("${ivHex}") }, cbcKey, ascii("${data}"));
      const ctr = await subtle.encrypt({ name: "AES-CTR", counter: unhex("${ivHex}"), length: 64 }, ctrKey, ascii("${data}"));
      const back = await subtle.decrypt({ name: "AES-CBC", iv: unhex("${ivHex}") }, cbcKey, cbc);
      const generated = await subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt"]);
      return Response.json({ cbc: hex(cbc), ctr: hex(ctr), back: String.fromCharCode(...new Uint8Array(back)), jwk: (await subtle.exportKey("jwk", cbcKey)).alg, genLength: generated.algorithm.length });`);
    assert.equal(out.cbc, Buffer.concat([cbc.update(data), cbc.final()]).toString("hex"));
    assert.equal(out.ctr, Buffer.concat([ctr.update(data), ctr.final()]).toString("hex"));
    assert.equal(out.back, data);
    assert.equal(out.jwk, "A128CBC");
    assert.equal(out.genLength, 256);
  });
});

describe("ECDH and X25519 (§'ECDH', Secure Curves: X25519)", () => {
  test("both sides of a key agreement derive the same secret, which the host's WebCrypto derives too", async () => {
    const out = await run(`
      const derive = async (name, params) => {
        const a = await subtle.generateKey({ name, ...params }, true, ["deriveBits"]);
        const b = await subtle.generateKey({ name, ...params }, true, ["deriveBits"]);
        const ab = await subtle.deriveBits({ name, public: b.publicKey }, a.privateKey, 256);
        const ba = await subtle.deriveBits({ name, public: a.publicKey }, b.privateKey, 256);
        return { ab: hex(ab), ba: hex(ba), aPriv: await subtle.exportKey("pkcs8", a.privateKey), bPub: hex(await subtle.exportKey("spki", b.publicKey)) };
      };
      const ecdh = await derive("ECDH", { namedCurve: "P-256" });
      const x = await derive("X25519", {});
      const a = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveKey"]);
      const b = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveKey"]);
      const aes = await subtle.deriveKey({ name: "ECDH", public: b.publicKey }, a.privateKey, { name: "AES-GCM", length: 128 }, false, ["encrypt"]);
      const privateAsPublic = await errorOf(subtle.deriveBits({ name: "ECDH", public: a.privateKey }, b.privateKey, 256));
      return Response.json({ ecdh: { ...ecdh, aPriv: hex(ecdh.aPriv) }, x: { ab: x.ab, ba: x.ba }, aes: aes.algorithm, privateAsPublic });`);
    assert.equal(out.ecdh.ab, out.ecdh.ba);
    assert.equal(out.x.ab, out.x.ba);
    assert.match(out.ecdh.ab, /^[0-9a-f]{64}$/);
    assert.deepEqual(out.aes, { name: "AES-GCM", length: 128 });
    assert.equal(out.privateAsPublic, "InvalidAccessError");
    const p = { name: "ECDH", namedCurve: "P-256" };
    const priv = await webcrypto.subtle.importKey("pkcs8", Buffer.from(out.ecdh.aPriv, "hex"), p, false, ["deriveBits"]);
    const pub = await webcrypto.subtle.importKey("spki", Buffer.from(out.ecdh.bPub, "hex"), p, false, []);
    assert.equal(Buffer.from(await webcrypto.subtle.deriveBits({ name: "ECDH", public: pub }, priv, 256)).toString("hex"), out.ecdh.ab);
  });
});

describe("wrapKey and unwrapKey (§14.3.11, §14.3.12; AES-KW)", () => {
  test("RFC 3394 §4.1: a 128-bit key wrapped with a 128-bit KEK; unwrapped back into a working key; non-extractable keys are not wrapped", async () => {
    const out = await run(`
      const kek = await subtle.importKey("raw", unhex("000102030405060708090a0b0c0d0e0f"), "AES-KW", false, ["wrapKey", "unwrapKey"]);
      const key = await subtle.importKey("raw", unhex("00112233445566778899aabbccddeeff"), "AES-GCM", true, ["encrypt", "decrypt"]);
      const wrapped = await subtle.wrapKey("raw", key, kek, "AES-KW");
      const unwrapped = await subtle.unwrapKey("raw", wrapped, kek, "AES-KW", "AES-GCM", true, ["encrypt"]);
      const locked = await subtle.importKey("raw", new Uint8Array(16), "AES-GCM", false, ["encrypt"]);
      const rsa = await subtle.generateKey({ name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, false, ["wrapKey", "unwrapKey"]);
      const viaRsa = await subtle.unwrapKey("jwk", await subtle.wrapKey("jwk", key, rsa.publicKey, "RSA-OAEP"), rsa.privateKey, "RSA-OAEP", "AES-GCM", true, ["decrypt"]);
      return Response.json({
        wrapped: hex(wrapped), raw: hex(await subtle.exportKey("raw", unwrapped)), usages: unwrapped.usages,
        notExtractable: await errorOf(subtle.wrapKey("raw", locked, kek, "AES-KW")),
        wrongUsage: await errorOf(subtle.wrapKey("raw", key, key, { name: "AES-GCM", iv: new Uint8Array(12) })),
        viaRsa: hex(await subtle.exportKey("raw", viaRsa)),
      });`);
    assert.deepEqual(out, {
      wrapped: "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5", raw: "00112233445566778899aabbccddeeff", usages: ["encrypt"],
      notExtractable: "InvalidAccessError", wrongUsage: "InvalidAccessError", viaRsa: "00112233445566778899aabbccddeeff",
    });
  });
});

describe("PBKDF2 and HKDF (§'PBKDF2', §'HKDF', deriveBits §14.3.8 / deriveKey §14.3.7)", () => {
  test("RFC 6070 PBKDF2-HMAC-SHA1 (c=1, c=2) and RFC 5869 HKDF-SHA256 test case 1; deriveKey gives a working AES-GCM key", async () => {
    const out = await run(`
      const pw = await subtle.importKey("raw", ascii("password"), "PBKDF2", false, ["deriveBits"]);
      const p1 = hex(await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-1", salt: ascii("salt"), iterations: 1 }, pw, 160));
      const p2 = hex(await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-1", salt: ascii("salt"), iterations: 2 }, pw, 160));
      const ikm = await subtle.importKey("raw", new Uint8Array(22).fill(0x0b), "HKDF", false, ["deriveBits", "deriveKey"]);
      const hk = { name: "HKDF", hash: "SHA-256", salt: unhex("000102030405060708090a0b0c"), info: unhex("f0f1f2f3f4f5f6f7f8f9") };
      const okm = hex(await subtle.deriveBits(hk, ikm, 42 * 8));
      const aes = await subtle.deriveKey(hk, ikm, { name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
      const iv = new Uint8Array(12);
      const back = await subtle.decrypt({ name: "AES-GCM", iv }, aes, await subtle.encrypt({ name: "AES-GCM", iv }, aes, ascii("ok")));
      return Response.json({ p1, p2, okm, aesAlg: aes.algorithm, aesRaw: hex(await subtle.exportKey("raw", aes)), back: String.fromCharCode(...new Uint8Array(back)),
        exportBase: await errorOf(subtle.exportKey("raw", ikm)),
        tooMany: await errorOf(subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: ascii("s"), iterations: 1_000_000 }, pw, 256)),
        wrongUsage: await errorOf(subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt: ascii("s"), iterations: 1 }, pw, { name: "AES-GCM", length: 128 }, false, ["encrypt"])) });`);
    assert.equal(out.p1, "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    assert.equal(out.p2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    assert.equal(out.okm, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    assert.deepEqual(out.aesAlg, { name: "AES-GCM", length: 256 });
    assert.equal(out.aesRaw, out.okm.slice(0, 64), "deriveKey = deriveBits of the key's length, imported raw");
    assert.equal(out.back, "ok");
    assert.equal(out.exportBase, "NotSupportedError", "PBKDF2/HKDF keys support no export");
    assert.equal(out.tooMany, "NotSupportedError", "iterations above 100000 are refused, as on Workers");
    assert.equal(out.wrongUsage, "InvalidAccessError");
  });
});

describe("key checks and errors (§14.3.x key steps, §13 CryptoKey)", () => {
  test("wrong usage or wrong algorithm for the key is an InvalidAccessError; non-extractable export is an InvalidAccessError; empty usages a SyntaxError", async () => {
    const out = await run(`
      const verifyOnly = await subtle.importKey("raw", ascii("k"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
      const aes = await subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt"]);
      const { privateKey } = await subtle.generateKey("Ed25519", false, ["sign", "verify"]);
      const errs = {
        signWithVerifyKey: await errorOf(subtle.sign("HMAC", verifyOnly, ascii("x"))),
        algMismatch: await errorOf(subtle.sign("Ed25519", verifyOnly, ascii("x"))),
        decryptNotAllowed: await errorOf(subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, aes, new Uint8Array(32))),
        exportSecret: await errorOf(subtle.exportKey("raw", aes)),
        exportPrivate: await errorOf(subtle.exportKey("pkcs8", privateKey)),
        emptyUsages: await errorOf(subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, true, [])),
        badUsageForAlg: await errorOf(subtle.importKey("raw", new Uint8Array(16), "AES-GCM", true, ["sign"])),
        badFormat: await errorOf(subtle.exportKey("spki", await subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt"]))),
      };
      const e = await subtle.exportKey("raw", aes).catch((e) => e);
      return Response.json({ errs, dom: e instanceof DOMException, code: e.code, message: typeof e.message });`);
    assert.deepEqual(out.errs, {
      signWithVerifyKey: "InvalidAccessError",
      algMismatch: "InvalidAccessError",
      decryptNotAllowed: "InvalidAccessError",
      exportSecret: "InvalidAccessError",
      exportPrivate: "InvalidAccessError",
      emptyUsages: "SyntaxError",
      badUsageForAlg: "SyntaxError",
      badFormat: "NotSupportedError",
    });
    assert.deepEqual(out, { ...out, dom: true, code: 15, message: "string" });
  });

  test("host errors reach the guest as the WebCrypto DOMException, with no host stack or path", async () => {
    const out = await run(`
      const e = await subtle.importKey("spki", new Uint8Array(10), { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]).catch((e) => e);
      const s = await subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, true, []).catch((e) => e);
      return Response.json({ name: e.name, dom: e instanceof DOMException, msg: e.message, stack: String(e.stack),
        sName: s.name, sDom: s instanceof DOMException, sSyntax: s instanceof SyntaxError });`);
    assert.equal(out.name, "DataError");
    assert.equal(out.dom, true);
    assert.equal(out.sName, "SyntaxError");
    assert.equal(out.sDom, true, "WebCrypto's SyntaxError is a DOMException, not the JS SyntaxError");
    assert.equal(out.sSyntax, false);
    assert.doesNotMatch(`${out.msg}\n${out.stack}`, /node:internal|\/work\/|node_modules|\.ts:\d/);
  });
});

describe("CryptoKey handles cannot be forged or carried (§13 CryptoKey)", () => {
  test("new CryptoKey() and new SubtleCrypto() throw 'Illegal constructor'; plain objects and prototype-made keys are TypeErrors", async () => {
    const out = await run(`
      const ctor = (f) => { try { f(); return "constructed" } catch (e) { return e.name + ": " + e.message } };
      const fake = { type: "secret", extractable: true, algorithm: { name: "HMAC", hash: { name: "SHA-256" } }, usages: ["sign"], id: 1 };
      const real = await subtle.importKey("raw", ascii("k"), { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
      class Sub extends CryptoKey {}
      return Response.json({
        key: ctor(() => new CryptoKey()), keyArgs: ctor(() => new CryptoKey(1, fake)), sub: ctor(() => new Sub()), subtle: ctor(() => new SubtleCrypto()),
        plain: await errorOf(subtle.sign("HMAC", fake, ascii("x"))),
        proto: await errorOf(subtle.sign("HMAC", Object.create(CryptoKey.prototype), ascii("x"))),
        proxy: await errorOf(subtle.sign("HMAC", new Proxy(real, {}), ascii("x"))),
        getter: ctor(() => Object.getOwnPropertyDescriptor(CryptoKey.prototype, "type").get.call(fake)),
        ownKeys: Reflect.ownKeys(real).length, json: JSON.stringify(real),
        isKey: real instanceof CryptoKey, tag: Object.prototype.toString.call(real), subtleTag: Object.prototype.toString.call(crypto.subtle),
        sameSubtle: crypto.subtle === crypto.subtle,
      });`);
    assert.equal(out.key, "TypeError: Illegal constructor");
    assert.equal(out.keyArgs, "TypeError: Illegal constructor");
    assert.equal(out.sub, "TypeError: Illegal constructor");
    assert.equal(out.subtle, "TypeError: Illegal constructor");
    assert.equal(out.plain, "TypeError");
    assert.equal(out.proto, "TypeError");
    assert.equal(out.proxy, "TypeError");
    assert.equal(out.getter, "TypeError: Illegal invocation");
    assert.equal(out.ownKeys, 0, "no own property holds the key's id");
    assert.equal(out.json, "{}");
    assert.equal(out.isKey, true);
    assert.equal(out.tag, "[object CryptoKey]");
    assert.equal(out.subtleTag, "[object SubtleCrypto]");
    assert.equal(out.sameSubtle, true);
  });

  test("attributes are frozen and cached: algorithm and usages cannot be changed to widen what a key may do", async () => {
    const out = await run(`
      const k = await subtle.importKey("raw", ascii("k"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
      const tries = [];
      const attempt = (f) => { try { f(); tries.push("ok") } catch (e) { tries.push(e.name) } };
      attempt(() => { k.usages.push("sign") });
      attempt(() => { k.algorithm.name = "Ed25519" });
      attempt(() => { k.algorithm.hash.name = "SHA-1" });
      attempt(() => { k.extractable = true });
      return Response.json({ tries, frozen: [Object.isFrozen(k.algorithm), Object.isFrozen(k.algorithm.hash), Object.isFrozen(k.usages)],
        cached: k.algorithm === k.algorithm && k.usages === k.usages, usages: k.usages, extractable: k.extractable,
        sign: await errorOf(subtle.sign("HMAC", k, ascii("x"))), exp: await errorOf(subtle.exportKey("raw", k)) });`);
    assert.deepEqual(out.tries, ["TypeError", "TypeError", "TypeError", "TypeError"]);
    assert.deepEqual(out.frozen, [true, true, true]);
    assert.equal(out.cached, true);
    assert.deepEqual(out.usages, ["verify"]);
    assert.equal(out.extractable, false);
    assert.equal(out.sign, "InvalidAccessError");
    assert.equal(out.exp, "InvalidAccessError");
  });

  test("structuredClone of a CryptoKey either refuses (DataCloneError) or gives something that cannot sign", async () => {
    const out = await run(`
      const k = await subtle.importKey("raw", ascii("k"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      let clone, cloneError = null;
      try { clone = structuredClone(k) } catch (e) { cloneError = e.name }
      return Response.json({ cloneError, sign: cloneError ? null : await errorOf(subtle.sign("HMAC", clone, ascii("x"))) });`);
    if (out.cloneError !== null) assert.equal(out.cloneError, "DataCloneError");
    else assert.equal(out.sign, "TypeError");
  });

  test("keys are per isolate: two workers' keys (both the first key of their isolate) each sign with their own secret, across requests", async () => {
    const make = (secret: string) => worker(`${PRELUDE}
      let key;
      export default { async fetch() {
        key ??= await subtle.importKey("raw", ascii("${secret}"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
        return Response.json(hex(await subtle.sign("HMAC", key, ascii("same data"))));
      } }`);
    const a = ctx.loader.load(make("secret-a"));
    const b = ctx.loader.load(make("secret-b"));
    const mac = (s: string) => createHmac("sha256", s).update("same data").digest("hex");
    for (let i = 0; i < 2; i++) {
      assert.equal(JSON.parse(await fetchText(a)), mac("secret-a"));
      assert.equal(JSON.parse(await fetchText(b)), mac("secret-b"));
    }
  });

  test("many keys in one run: each stays bound to its own material", async () => {
    const out = await run(`
      const keys = await Promise.all(Array.from({ length: 200 }, (_, i) => subtle.importKey("raw", ascii("key" + i), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])));
      const macs = await Promise.all(keys.map((k) => subtle.sign("HMAC", k, ascii("d"))));
      return Response.json([hex(macs[0]), hex(macs[199])]);`);
    assert.deepEqual(out, [createHmac("sha256", "key0").update("d").digest("hex"), createHmac("sha256", "key199").update("d").digest("hex")]);
  });
});

describe("the subtle host service treats what reaches it as untrusted (defence in depth behind the guest runtime)", () => {
  const newState = (): ServiceState => ({ store: new Map(), cancels: new Map() });
  const call = (state: ServiceState, op: string, ...args: unknown[]) =>
    subtleService.async![op]!(state, 1, ...args).then((v) => ({ ok: v }), (e: Error) => ({ name: e.name, message: e.message }));
  const hmac = { name: "HMAC", hash: { name: "SHA-256" } };

  test("a key id names a key only in its own isolate's table", async () => {
    const a = newState();
    const b = newState();
    const desc = (await call(a, "importKey", "raw", new Uint8Array([1, 2, 3]), hmac, false, ["sign"])) as { ok: { id: number } };
    assert.equal(desc.ok.id, 1);
    assert.ok("ok" in (await call(a, "sign", { name: "HMAC" }, 1, new Uint8Array(1))));
    assert.deepEqual(await call(b, "sign", { name: "HMAC" }, 1, new Uint8Array(1)), { name: "TypeError", message: "The key is not a CryptoKey of this worker" });
    assert.equal((await call(a, "sign", { name: "HMAC" }, "1", new Uint8Array(1)) as { name: string }).name, "TypeError");
  });

  test("algorithms, members, formats and usages are checked again; only name and message come back", async () => {
    const s = newState();
    const cases: [string, unknown[], string][] = [
      ["digest", [{ name: "MD5" }, new Uint8Array(1)], "NotSupportedError"],
      ["digest", [{ name: "sha-256" }, new Uint8Array(1)], "NotSupportedError"], // the guest canonicalizes; the host wants exact names
      ["digest", [{ name: "SHA-256" }, "not bytes"], "TypeError"],
      ["digest", ["SHA-256", new Uint8Array(1)], "TypeError"],
      ["generateKey", [{ name: "RSA-PSS" }, true, ["sign"]], "TypeError"],
      ["generateKey", [{ name: "RSA-PSS", hash: { name: "SHA-256" }, modulusLength: 16384, publicExponent: new Uint8Array([1, 0, 1]) }, true, ["sign"]], "NotSupportedError"],
      ["deriveBits", [{ name: "ECDH", public: { kty: "EC" } }, 1, 256], "TypeError"],
      ["generateKey", [{ ...hmac, length: 2 ** 30 }, true, ["sign"]], "NotSupportedError"],
      ["generateKey", [{ name: "ECDSA", namedCurve: "P-192" }, true, ["sign"]], "NotSupportedError"],
      ["importKey", ["pem", new Uint8Array(4), hmac, true, ["sign"]], "TypeError"],
      ["importKey", ["raw", new Uint8Array(4), hmac, true, ["launch"]], "TypeError"],
      ["importKey", ["jwk", { kty: "oct", k: 5 }, { name: "AES-GCM" }, true, ["encrypt"]], "TypeError"],
      ["encrypt", [{ name: "AES-GCM", iv: [1, 2] }, 1, new Uint8Array(1)], "TypeError"],
      ["deriveBits", [{ name: "PBKDF2", hash: { name: "SHA-256" }, salt: new Uint8Array(1), iterations: 100_001 }, 1, 256], "NotSupportedError"],
    ];
    for (const [op, args, name] of cases) {
      const r = (await call(s, op, ...args)) as { name?: string; message?: string };
      assert.equal(r.name, name, `${op} ${JSON.stringify(args)}`);
      assert.deepEqual(Object.keys(r), ["name", "message"]);
    }
  });

  test("data in flight per isolate is capped (QuotaExceededError), and freed when the operations end", async () => {
    const s = newState();
    const chunk = new Uint8Array(MAX_INFLIGHT_BYTES / 8);
    const results = await Promise.all(Array.from({ length: 9 }, () => call(s, "digest", { name: "SHA-256" }, chunk)));
    assert.equal(results.filter((r) => "ok" in r).length, 8);
    assert.equal((results[8] as { name: string }).name, "QuotaExceededError");
    assert.ok("ok" in (await call(s, "digest", { name: "SHA-256" }, chunk)));
  });

  test("a cancelled task (the run ended) never settles and leaves no key behind", async () => {
    const s = newState();
    let settled = false;
    void subtleService.async!.generateKey!(s, 7, { name: "AES-GCM", length: 128 }, true, ["encrypt"]).then(() => (settled = true), () => (settled = true));
    s.cancels.get(7)!();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false);
    assert.equal((s.store.get("subtle") as { keys: Map<number, unknown> }).keys.size, 0);
  });
});
