/**
 * URL, URLSearchParams (URL Standard §5, §6) and URLPattern inside the isolate. Parsing itself is
 * covered by the WPT conformance run (test/conformance/wpt-url.test.ts); these are the behaviours
 * around it: the urlencoded parser and serializer, URLSearchParams' operations, the link between a URL
 * and its searchParams, the static methods, errors, and the globals' shape.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { fetchText, useLoader, worker } from "../helpers.ts";

const ctx = useLoader({ executors: 1 });

/** Runs `body` as a fetch handler and returns the JSON of what it returns. */
async function run(body: string): Promise<unknown> {
  const stub = ctx.loader.load(worker(`
    const attempt = (f) => { try { return f() } catch (e) { return (e instanceof TypeError ? "TypeError" : "not a TypeError") + ": " + e.message } };
    export default { async fetch(request) { return Response.json((() => { ${body} })()) } }`));
  return JSON.parse(await fetchText(stub));
}

describe("URLSearchParams (URL Standard §6.2)", () => {
  test("constructor: string (one leading '?' dropped), pairs, record, another URLSearchParams, undefined/null", async () => {
    const out = await run(`
      const s = (p) => p.toString();
      return {
        string: s(new URLSearchParams("?a=1&b=2")),
        doubleQ: [...new URLSearchParams("??a=1")],
        pairs: s(new URLSearchParams([["a", "1"], ["a", "2"], ["b", 3]])),
        iterablePairs: s(new URLSearchParams(new Map([["x", "y"]]))),
        record: s(new URLSearchParams({ b: "2", a: "1" })),
        inherited: s(new URLSearchParams(Object.create({ hidden: "1" }, { own: { value: "2", enumerable: true }, skipped: { value: "3" } }))),
        copy: s(new URLSearchParams(new URLSearchParams("q=1&q=2"))),
        none: s(new URLSearchParams()),
        undef: s(new URLSearchParams(undefined)),
        nul: s(new URLSearchParams(null)),
        num: s(new URLSearchParams(5)),
      };`);
    assert.deepEqual(out, {
      string: "a=1&b=2",
      doubleQ: [["?a", "1"]],
      pairs: "a=1&a=2&b=3",
      iterablePairs: "x=y",
      record: "b=2&a=1",
      inherited: "own=2", // WebIDL record: own enumerable properties only
      copy: "q=1&q=2",
      none: "",
      undef: "",
      nul: "null=",
      num: "5=",
    });
  });

  test("constructor: a sequence element that is not a pair, or not iterable, is a TypeError", async () => {
    const out = await run(`return [
      attempt(() => new URLSearchParams([["a"]])),
      attempt(() => new URLSearchParams([["a", "b", "c"]])),
      attempt(() => new URLSearchParams(["ab"])),
      attempt(() => new URLSearchParams([1])),
      attempt(() => new URLSearchParams({ [Symbol.iterator]: 1 })),
      attempt(() => new URLSearchParams({ a: "1", [Symbol("k")]: "v" })),
    ].map((r) => String(r).split(":")[0]);`);
    // The last: a record's Symbol key cannot be converted to USVString (WebIDL §3.2.x record conversion).
    assert.deepEqual(out, ["TypeError", "TypeError", "TypeError", "TypeError", "TypeError", "TypeError"]);
  });

  test("parser (§5.1): '&' splits, first '=' divides, '+' is a space, percent-decoding of UTF-8, U+FFFD for bad bytes", async () => {
    const out = await run(`
      const p = (s) => [...new URLSearchParams(s)];
      return {
        basic: p("a=b+c&&d&=e&f==g&h=%41%c3%A9"),
        plusEncoded: p("a=%2B"),
        badPercent: p("a=%zz&b=%4&c=%"),
        invalidUtf8: p("a=%FE%FF&b=%C2&c=%E2%82&d=%ED%A0%80"),
        bom: p("%EF%BB%BFa=1").map(([k]) => k.length),
        literal: p("é=ü"),
      };`);
    assert.deepEqual(out, {
      basic: [["a", "b c"], ["d", ""], ["", "e"], ["f", "=g"], ["h", "Aé"]],
      plusEncoded: [["a", "+"]],
      badPercent: [["a", "%zz"], ["b", "%4"], ["c", "%"]],
      invalidUtf8: [["a", "\uFFFD\uFFFD"], ["b", "\uFFFD"], ["c", "\uFFFD"], ["d", "\uFFFD\uFFFD\uFFFD"]],
      bom: [2], // "UTF-8 decode without BOM": the BOM stays
      literal: [["é", "ü"]],
    });
  });

  test("parser: the cases of WPT url/resources/urlencoded-parser-data.json", async () => {
    // web-platform-tests (3-Clause BSD), url/resources/urlencoded-parser-data.json at d1655f32.
    const cases: [string, [string, string][]][] = [
      ["test", [["test", ""]]], ["\uFEFFtest=\uFEFF", [["\uFEFFtest", "\uFEFF"]]], ["%EF%BB%BFtest=%EF%BB%BF", [["\uFEFFtest", "\uFEFF"]]],
      ["%EF%BF%BF=%EF%BF%BF", [["\uFFFF", "\uFFFF"]]], ["%FE%FF", [["\uFFFD\uFFFD", ""]]], ["%FF%FE", [["\uFFFD\uFFFD", ""]]],
      ["†&†=x", [["†", ""], ["†", "x"]]], ["%C2", [["\uFFFD", ""]]], ["%C2x", [["\uFFFDx", ""]]],
      ["_charset_=windows-1252&test=%C2x", [["_charset_", "windows-1252"], ["test", "\uFFFDx"]]], ["", []], ["a", [["a", ""]]],
      ["a=b", [["a", "b"]]], ["a=", [["a", ""]]], ["=b", [["", "b"]]], ["&", []], ["&a", [["a", ""]]], ["a&", [["a", ""]]],
      ["a&a", [["a", ""], ["a", ""]]], ["a&b&c", [["a", ""], ["b", ""], ["c", ""]]], ["a=b&c=d", [["a", "b"], ["c", "d"]]],
      ["a=b&c=d&", [["a", "b"], ["c", "d"]]], ["&&&a=b&&&&c=d&", [["a", "b"], ["c", "d"]]], ["a=a&a=b&a=c", [["a", "a"], ["a", "b"], ["a", "c"]]],
      ["a==a", [["a", "=a"]]], ["a=a+b+c+d", [["a", "a b c d"]]], ["%=a", [["%", "a"]]], ["%a=a", [["%a", "a"]]], ["%a_=a", [["%a_", "a"]]],
      ["%61=a", [["a", "a"]]], ["%61+%4d%4D=", [["a MM", ""]]], ["id=0&value=%", [["id", "0"], ["value", "%"]]],
      ["b=%2sf%2a", [["b", "%2sf*"]]], ["b=%2%2af%2a", [["b", "%2*f*"]]], ["b=%%2a", [["b", "%*"]]],
    ];
    const out = await run(`return ${JSON.stringify(cases.map((c) => c[0]))}.map((input) => [...new URLSearchParams(input)]);`);
    assert.deepEqual(out, cases.map((c) => c[1]));
  });

  test("constructor cases of WPT urlsearchparams-constructor.any.js: records with unpaired surrogates, a custom @@iterator", async () => {
    const out = await run(`
      const params = new URLSearchParams();
      params[Symbol.iterator] = function* () { yield ["a", "b"]; };
      return {
        plus: [...new URLSearchParams({ "+": "%C2" })],
        noTrailing: [...new URLSearchParams({ "\\uD835x": "1", xx: "2", "\\uD83Dx": "3" })],
        noLeading: [...new URLSearchParams({ "x\\uDC53": "1", "x\\uDC5C": "2", "x\\uDC65": "3" })],
        mixed: [...new URLSearchParams({ "a\\0b": "42", "c\\uD83D": "23", "d\\u1234": "foo" })],
        custom: new URLSearchParams(params).get("a"),
        encodedPlus: (() => { const p = new URLSearchParams(); p.set("query", "+15555555555"); return [p.toString(), new URLSearchParams(p.toString()).get("query")]; })(),
      };`);
    assert.deepEqual(out, {
      plus: [["+", "%C2"]],
      noTrailing: [["\uFFFDx", "3"], ["xx", "2"]], // a repeated converted key keeps its first place, takes the last value
      noLeading: [["x\uFFFD", "3"]],
      mixed: [["a\0b", "42"], ["c\uFFFD", "23"], ["d\u1234", "foo"]],
      custom: "b",
      encodedPlus: ["query=%2B15555555555", "+15555555555"],
    });
  });

  test("serializer (§5.2): space as '+', only alphanumerics and *-._ left as they are, UTF-8 bytes upper-case", async () => {
    const out = await run(`
      const p = new URLSearchParams();
      p.append("a b", "*-._!'()~%&=+/?#");
      p.append("é", "\\u{1F600}");
      p.append("lone", "\\uD800");
      return p.toString();`);
    assert.equal(out, "a+b=*-._%21%27%28%29%7E%25%26%3D%2B%2F%3F%23&%C3%A9=%F0%9F%98%80&lone=%EF%BF%BD");
  });

  test("append, get, getAll, has (with value), set, delete (with value), size", async () => {
    const out = await run(`
      const p = new URLSearchParams("a=1&b=2&a=3&c=4&a=5");
      const r = { size0: p.size, get: p.get("a"), getMissing: p.get("z"), getAll: p.getAll("a"), has: p.has("b"), hasValue: p.has("a", "3"), hasWrongValue: p.has("a", "9"), hasUndefined: p.has("a", undefined) };
      p.set("a", "x"); r.afterSet = p.toString();
      p.set("new", "y"); r.setAppends = p.toString();
      p.append("b", "7"); p.delete("b", "2"); r.deleteValue = p.toString();
      p.delete("b", undefined); r.deleteUndefined = p.toString();
      p.delete("a"); r.deleteAll = p.toString();
      r.size1 = p.size;
      return r;`);
    assert.deepEqual(out, {
      size0: 5,
      get: "1",
      getMissing: null,
      getAll: ["1", "3", "5"],
      has: true,
      hasValue: true,
      hasWrongValue: false,
      hasUndefined: true,
      afterSet: "a=x&b=2&c=4", // the first "a" takes the value in place, the others go
      setAppends: "a=x&b=2&c=4&new=y",
      deleteValue: "a=x&c=4&new=y&b=7",
      deleteUndefined: "a=x&c=4&new=y",
      deleteAll: "c=4&new=y",
      size1: 2,
    });
  });

  test("sort is stable and compares code units", async () => {
    const out = await run(`
      const p = new URLSearchParams([["z", "1"], ["a", "1"], ["z", "2"], ["\\uFFFD", "x"], ["\\u{1F600}", "y"], ["a", "2"], ["A", "0"]]);
      p.sort();
      return [...p];`);
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFD by code units.
    assert.deepEqual(out, [["A", "0"], ["a", "1"], ["a", "2"], ["z", "1"], ["z", "2"], ["\u{1F600}", "y"], ["\uFFFD", "x"]]);
  });

  test("iteration: entries/keys/values/@@iterator are live; forEach passes (value, key, params)", async () => {
    const out = await run(`
      const p = new URLSearchParams("a=1&b=2");
      const seen = [];
      for (const [k, v] of p) { seen.push(k + v); if (k === "a") p.append("c", "3"); }
      const fe = []; p.forEach(function (v, k, o) { fe.push([v, k, o === p, this.t]); }, { t: 1 });
      const it = p.keys();
      return {
        seen, fe, keys: [...p.keys()], values: [...p.values()], entries: [...p.entries()],
        tag: Object.prototype.toString.call(it), selfIterable: it[Symbol.iterator]() === it,
        same: URLSearchParams.prototype[Symbol.iterator] === URLSearchParams.prototype.entries,
        forEachBad: attempt(() => p.forEach(1)).split(":")[0],
      };`);
    assert.deepEqual(out, {
      seen: ["a1", "b2", "c3"],
      fe: [["1", "a", true, 1], ["2", "b", true, 1], ["3", "c", true, 1]],
      keys: ["a", "b", "c"],
      values: ["1", "2", "3"],
      entries: [["a", "1"], ["b", "2"], ["c", "3"]],
      tag: "[object URLSearchParams Iterator]",
      selfIterable: true,
      same: true,
      forEachBad: "TypeError",
    });
  });

  test("WebIDL: too few arguments and foreign receivers are TypeErrors", async () => {
    const out = await run(`return [
      attempt(() => new URLSearchParams().append("a")),
      attempt(() => new URLSearchParams().get()),
      attempt(() => URLSearchParams.prototype.get.call({}, "a")),
      attempt(() => URLSearchParams()),
    ].map((r) => String(r).split(":")[0]);`);
    assert.deepEqual(out, ["TypeError", "TypeError", "TypeError", "TypeError"]);
  });
});

describe("URL (URL Standard §6.1)", () => {
  test("getters, setters, toString and toJSON", async () => {
    const out = await run(`
      const u = new URL("HTTPS://User:Pw@EXAMPLE.com:443/a/../b/%7e?q=1#frag");
      const before = { href: u.href, origin: u.origin, protocol: u.protocol, username: u.username, password: u.password, host: u.host, hostname: u.hostname, port: u.port, pathname: u.pathname, search: u.search, hash: u.hash };
      u.protocol = "http"; u.hostname = "ex.org"; u.port = "8080"; u.pathname = "/p q"; u.hash = ""; u.username = ""; u.password = "";
      u.port = "not a port"; // ignored, as the standard says
      return { before, after: u.href, json: JSON.stringify({ u }), str: String(u), tag: Object.prototype.toString.call(u) };`);
    assert.deepEqual(out, {
      before: { href: "https://User:Pw@example.com/b/%7e?q=1#frag", origin: "https://example.com", protocol: "https:", username: "User", password: "Pw", host: "example.com", hostname: "example.com", port: "", pathname: "/b/%7e", search: "?q=1", hash: "#frag" },
      after: "http://ex.org:8080/p%20q?q=1",
      json: '{"u":"http://ex.org:8080/p%20q?q=1"}',
      str: "http://ex.org:8080/p%20q?q=1",
      tag: "[object URL]",
    });
  });

  test("relative URLs against a base; a URL object is accepted as input and base", async () => {
    const out = await run(`
      const base = new URL("https://h.example/dir/page?x#y");
      return [new URL("../up", base).href, new URL("?q", base.href).href, new URL(base).href, new URL("//other/p", base).href];`);
    assert.deepEqual(out, ["https://h.example/up", "https://h.example/dir/page?q", "https://h.example/dir/page?x#y", "https://other/p"]);
  });

  test("parse failures are TypeErrors: bad input, bad base, no argument, href setter (which leaves the URL as it was)", async () => {
    const out = await run(`
      const u = new URL("https://ok.example/");
      return [
        attempt(() => new URL("not a url")),
        attempt(() => new URL("/path", "also not a url")),
        attempt(() => new URL("/path", null)),
        attempt(() => new URL()),
        attempt(() => { u.href = "::"; }),
        u.href,
        attempt(() => URL("https://x/")).split(":")[0],
      ];`);
    assert.deepEqual(out, ["TypeError: Invalid URL", "TypeError: Invalid URL", "TypeError: Invalid URL", "TypeError: Failed to execute 'URL': 1 argument required, but only 0 present.", "TypeError: Invalid URL", "https://ok.example/", "TypeError"]);
  });

  test("URL.canParse and URL.parse (null on failure, a new URL otherwise)", async () => {
    const out = await run(`
      const p = URL.parse("/a?b", "https://h/x");
      return {
        canParse: [URL.canParse("https://h/"), URL.canParse("nope"), URL.canParse("a", "https://h/"), URL.canParse("a", "nope"), URL.canParse("a", undefined)],
        parse: [p instanceof URL, p.href, URL.parse("nope"), URL.parse("a", "nope"), URL.parse("https://x/") !== URL.parse("https://x/")],
        lengths: [URL.length, URL.parse.length, URL.canParse.length, URLSearchParams.length],
        names: [URL.name, URLSearchParams.name, URLPattern.name],
      };`);
    assert.deepEqual(out, {
      canParse: [true, false, true, false, false],
      parse: [true, "https://h/a?b", null, null, true],
      lengths: [1, 1, 1, 0],
      names: ["URL", "URLSearchParams", "URLPattern"],
    });
  });

  test("input is a USVString: lone surrogates become U+FFFD (percent-encoded)", async () => {
    const out = await run(`return new URL("https://h/\\uD800?\\uDC00#\\uD800").href;`);
    assert.equal(out, "https://h/%EF%BF%BD?%EF%BF%BD#%EF%BF%BD");
  });

  test("a subclass of URL works", async () => {
    const out = await run(`class My extends URL { get twice() { return this.pathname + this.pathname } }
      const m = new My("https://h/p"); return [m instanceof URL, m.twice, m.href];`);
    assert.deepEqual(out, [true, "/p/p", "https://h/p"]);
  });
});

describe("URL.searchParams is linked both ways (§6.1 search setter, §6.2 update steps)", () => {
  test("the same object every time; it reflects the query at construction, including a second '?'", async () => {
    const out = await run(`
      const u = new URL("https://h/?a=1&a=2&b=%20x");
      const v = new URL("https://h/??q=1");
      return { same: u.searchParams === u.searchParams, all: u.searchParams.getAll("a"), b: u.searchParams.get("b"), q: [...v.searchParams] };`);
    assert.deepEqual(out, { same: true, all: ["1", "2"], b: " x", q: [["?q", "1"]] });
  });

  test("setting search or href updates the params object", async () => {
    const out = await run(`
      const u = new URL("https://h/?a=1");
      const p = u.searchParams;
      u.search = "?b=2&c=3"; const afterSearch = [...p];
      u.search = "d=%zz+x"; const raw = [...p];
      u.href = "https://h/?e=5#f"; const afterHref = [...p];
      u.search = ""; const afterEmpty = [...p];
      return { afterSearch, raw, afterHref, afterEmpty, href: u.href };`);
    assert.deepEqual(out, {
      afterSearch: [["b", "2"], ["c", "3"]],
      raw: [["d", "%zz x"]],
      afterHref: [["e", "5"]],
      afterEmpty: [],
      href: "https://h/#f",
    });
  });

  test("mutating the params rewrites the URL's query (null once the list is empty)", async () => {
    const out = await run(`
      const u = new URL("https://h/path?a=1#frag");
      const p = u.searchParams;
      const steps = [];
      p.append("b", "x y"); steps.push(u.href);
      p.set("a", "é"); steps.push(u.search);
      p.sort(); steps.push(u.search);
      p.delete("a"); p.delete("b"); steps.push(u.href);
      p.append("c", ""); steps.push(u.href);
      return steps;`);
    assert.deepEqual(out, [
      "https://h/path?a=1&b=x+y#frag",
      "?a=%C3%A9&b=x+y",
      "?a=%C3%A9&b=x+y",
      "https://h/path#frag",
      "https://h/path?c=#frag",
    ]);
  });

  test("iterating while the URL's search or the params change (WPT urlsearchparams-foreach.any.js)", async () => {
    const out = await run(`
      const a = new URL("http://a.b/c?a=1&b=2&c=3&d=4");
      const c = [];
      for (const i of a.searchParams) { a.search = "x=1&y=2&z=3"; c.push(i); }
      const u = new URL("http://localhost/query?param0=0&param1=1&param2=2");
      const seen = [];
      for (const param of u.searchParams) { seen.push(param[0]); u.searchParams.delete(param[0]); }
      const v = new URL("http://example.com/?"); v.searchParams.delete("nothing");
      return { c, seen, rest: String(u.searchParams), href: u.href, emptied: v.href };`);
    assert.deepEqual(out, {
      c: [["a", "1"], ["y", "2"], ["z", "3"]],
      seen: ["param0", "param2"],
      rest: "param1=1",
      href: "http://localhost/query?param1=1",
      emptied: "http://example.com/", // the update steps set an empty query to null
    });
  });

  test("other setters keep the params as they are; a standalone URLSearchParams is linked to nothing", async () => {
    const out = await run(`
      const u = new URL("https://h/?a=1"); const p = u.searchParams;
      u.pathname = "/x"; u.hash = "h";
      const copy = new URLSearchParams(u.search); copy.append("z", "1");
      return [u.href, [...p], copy.toString()];`);
    assert.deepEqual(out, ["https://h/x?a=1#h", [["a", "1"]], "a=1&z=1"]);
  });
});

describe("globals", () => {
  test("URL, URLSearchParams, URLPattern are writable, configurable, not enumerable", async () => {
    const out = await run(`
      const d = (n) => { const x = Object.getOwnPropertyDescriptor(globalThis, n); return [typeof globalThis[n], !!x.configurable, !!x.enumerable]; };
      return { url: d("URL"), sp: d("URLSearchParams"), pattern: d("URLPattern"), patternData: "value" in Object.getOwnPropertyDescriptor(globalThis, "URLPattern") };`);
    assert.deepEqual(out, { url: ["function", true, false], sp: ["function", true, false], pattern: ["function", true, false], patternData: true });
  });

  test("assigning URLPattern before using it replaces it", async () => {
    const out = await run(`globalThis.URLPattern = 42; return [URLPattern, Object.getOwnPropertyDescriptor(globalThis, "URLPattern").writable];`);
    assert.deepEqual(out, [42, true]);
  });

  test("URLPattern (urlpattern-polyfill) matches on top of the guest URL", async () => {
    const out = await run(`
      const p = new URLPattern({ pathname: "/books/:id(\\\\d+)" });
      const q = new URLPattern("https://*.example.com/:path*");
      const m = p.exec("https://any.host/books/123?z");
      return {
        test: [p.test("https://h/books/12"), p.test("https://h/books/abc"), p.test({ pathname: "/books/7" })],
        groups: m.pathname.groups,
        host: q.exec("https://api.example.com/a/b?x=1")?.hostname.groups,
        path: q.exec("https://api.example.com/a/b?x=1")?.pathname.groups,
        pathname: p.pathname,
        noMatch: q.exec("https://example.org/"),
      };`);
    assert.deepEqual(out, {
      test: [true, false, true],
      groups: { id: "123" },
      host: { "0": "api" },
      path: { path: "a/b" },
      pathname: "/books/:id(\\d+)",
      noMatch: null,
    });
  });
});
