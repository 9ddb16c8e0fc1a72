/**
 * UTF-8 without TextEncoder (a bare V8 context has none). encodeURIComponent/escape do the byte work
 * in C++; lone surrogates become U+FFFD first, as the Encoding Standard's encoder requires.
 */
export function utf8Encode(s: string): Uint8Array {
  const binary = unescape(encodeURIComponent(s.toWellFormed()));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function utf8Decode(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  try {
    return decodeURIComponent(escape(binary));
  } catch {
    return decodeLenient(bytes);
  }
}

/** Slow path for malformed input: decode byte by byte, replacing each bad sequence with U+FFFD. */
function decodeLenient(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xf0 && b < 0xf5 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
    if (len === 0) { out += "\uFFFD"; i++; continue; }
    const seq = bytes.subarray(i, i + len);
    let piece = "";
    try { piece = decodeURIComponent(escape(String.fromCharCode(...seq))); } catch { piece = ""; }
    if (piece) { out += piece; i += len; } else { out += "\uFFFD"; i++; }
  }
  return out;
}
