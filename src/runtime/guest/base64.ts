/**
 * `atob()` and `btoa()` (HTML §8.3 "Base64 utility methods"), over the Infra Standard's
 * "forgiving-base64 encode" and "forgiving-base64 decode". Failure is an
 * "InvalidCharacterError" DOMException.
 */
import { DOMException } from "./dom-exception.ts";
import { requireArgs } from "./events.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Code unit to 6-bit value, -1 for anything outside the alphabet (Infra's "base64 alphabet" table). */
const VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/** HTML btoa(data): throws if data has a code point above U+00FF; else forgiving-base64 encode. */
export function btoa(data: string): string {
  requireArgs(arguments.length, 1, "'btoa'");
  const s = `${data as unknown as string}`;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 0xff) {
      throw new DOMException("Failed to execute 'btoa': The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
    }
  }
  // Forgiving-base64 encode: RFC 4648 §4 base64 with padding, over the string's code units as bytes.
  let out = "";
  let chunk = "";
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
    chunk += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!;
    if (chunk.length >= 8192) {
      out += chunk;
      chunk = "";
    }
  }
  if (n - i === 1) {
    const v = s.charCodeAt(i) << 16;
    chunk += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + "==";
  } else if (n - i === 2) {
    const v = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8);
    chunk += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + "=";
  }
  return out + chunk;
}

function invalid(): DOMException {
  return new DOMException("Failed to execute 'atob': The string to be decoded is not correctly encoded.", "InvalidCharacterError");
}

/** HTML atob(data): forgiving-base64 decode; failure throws; the bytes come back as a binary string. */
export function atob(data: string): string {
  requireArgs(arguments.length, 1, "'atob'");
  // Step 1: remove all ASCII whitespace (TAB, LF, FF, CR, SPACE) from data.
  let s = `${data as unknown as string}`.replace(/[\t\n\f\r ]+/g, "");
  // Step 2: if its length divides by 4 with no remainder, remove one or two trailing "=".
  if (s.length % 4 === 0) {
    if (s.endsWith("==")) s = s.slice(0, -2);
    else if (s.endsWith("=")) s = s.slice(0, -1);
  }
  // Step 3: if its length divides by 4 leaving a remainder of 1, return failure.
  const n = s.length;
  if (n % 4 === 1) throw invalid();
  // Step 4 (any code point outside "+", "/", ASCII alphanumeric is failure) is checked while decoding.
  // Steps 5-8: accumulate 6 bits per code point; every 24 bits are three bytes.
  const bytes = new Uint8Array((n * 3) >> 2);
  let buffer = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? VALUES[c]! : -1;
    if (v < 0) throw invalid();
    buffer = (buffer << 6) | v;
    bits += 6;
    if (bits === 24) {
      bytes[j++] = buffer >> 16;
      bytes[j++] = (buffer >> 8) & 0xff;
      bytes[j++] = buffer & 0xff;
      buffer = 0;
      bits = 0;
    }
  }
  // Step 9: 12 leftover bits are one byte (drop 4 bits), 18 are two bytes (drop 2 bits).
  if (bits === 12) {
    bytes[j++] = buffer >> 4;
  } else if (bits === 18) {
    bytes[j++] = buffer >> 10;
    bytes[j++] = (buffer >> 2) & 0xff;
  }
  // atob step 3: the bytes as a string of code units U+0000 to U+00FF.
  let out = "";
  for (let k = 0; k < j; k += 8192) out += String.fromCharCode.apply(null, bytes.subarray(k, Math.min(j, k + 8192)) as unknown as number[]);
  return out;
}
