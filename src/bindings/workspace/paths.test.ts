import { test } from "node:test";
import assert from "node:assert/strict";
import { normalisePath } from "./paths.ts";

test("normalisePath: harmless spellings fold to one form", () => {
  for (const [raw, want] of [["a/b", "a/b"], ["./a//b/", "a/b"], ["", ""], [".", ""], ["./", ""], ["a/./b", "a/b"], ["é/ü.txt", "é/ü.txt"], ["100%.txt", "100%.txt"], ["...", "..."], ["a..b", "a..b"]]) {
    assert.equal(normalisePath(raw), want, raw);
  }
});

test("normalisePath: each refused notation names its reason", () => {
  const cases: [string, RegExp][] = [
    ["..", /"\.\." segment/], ["a/../b", /"\.\." segment/], ["/etc/passwd", /absolute/], ["C:/x", /drive/],
    ["a\\b", /backslash/], ["a\0b", /NUL or control/], ["a\tb", /NUL or control/], ["%2e%2e/x", /percent-encoded/], ["a%2Fb", /percent-encoded/],
    ["%252e", /percent-encoded/], ["a\u2215b", /look-alike/], ["a\u2044b", /look-alike/], ["a\uFF0Fb", /look-alike/], ["\uFF0E\uFF0E", /look-alike/],
    ["\uFE52\uFE52/x", /look-alike/], ["\u2025/x", /normalises/], [".\u200b.", /normalises/], ["x".repeat(256), /longer than 255/], [`${"a/".repeat(2100)}b`, /longer than 4096/],
  ];
  for (const [raw, why] of cases) assert.throws(() => normalisePath(raw), (e: Error & { code?: string }) => e.code === "EINVAL" && why.test(e.message), JSON.stringify(raw));
  assert.throws(() => normalisePath(42), { code: "EINVAL" });
  // 255 bytes is the limit, counted in UTF-8 bytes: 128 two-byte characters are over it.
  assert.equal(normalisePath("x".repeat(255)).length, 255);
  assert.throws(() => normalisePath("é".repeat(128)), { code: "EINVAL" });
});
