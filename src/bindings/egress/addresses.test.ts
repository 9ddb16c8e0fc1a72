import { test } from "node:test";
import assert from "node:assert/strict";
import { isPrivateAddress } from "./addresses.ts";
import { compilePolicy, matchRule } from "./policy.ts";

test("private, loopback, link-local, metadata and reserved addresses are refused, in every form", () => {
  for (const a of [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "[::1]", "not-an-ip",
  ]) assert.equal(isPrivateAddress(a), true, a);
});

test("global unicast addresses pass", () => {
  for (const a of ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]) {
    assert.equal(isPrivateAddress(a), false, a);
  }
});

test("rules match the WHATWG-parsed origin: scheme, host (with *. wildcards) and port", () => {
  const { rules } = compilePolicy({ allow: [{ origin: "https://api.github.com" }, { origin: "https://*.example.com" }, { origin: "http://localhost:8080" }] });
  const m = (u: string) => matchRule(rules, new URL(u))?.origin;
  assert.equal(m("https://api.github.com/repos"), "https://api.github.com");
  assert.equal(m("https://API.GitHub.com:443/x"), "https://api.github.com");
  assert.equal(m("https://api.github.com:8443/"), undefined);
  assert.equal(m("http://api.github.com/"), undefined);
  assert.equal(m("https://a.b.example.com/"), "https://*.example.com");
  assert.equal(m("https://example.com/"), undefined, "*.example.com does not cover the apex");
  assert.equal(m("https://evilexample.com/"), undefined);
  assert.equal(m("http://localhost:8080/"), "http://localhost:8080");
  assert.equal(m("http://localhost/"), undefined);
});

test("malformed policies are refused by the schema", () => {
  assert.throws(() => compilePolicy({ allow: [{ origin: "https://example.com/path" }] }));
  assert.throws(() => compilePolicy({ allow: [{ origin: "ftp://example.com" }] }));
  assert.throws(() => compilePolicy({ allow: [{ origin: "https://example.com", unknown: 1 } as never] }));
});
