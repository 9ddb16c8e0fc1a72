/**
 * WPT URL conformance (web-platform-tests url/resources: urltestdata.json, setters_tests.json,
 * toascii.json; see shared/conformance/wpt-url/SOURCE.md). Every case of a file runs inside ONE mayfly
 * isolate: a worker receives the file as its request body, runs all cases with the guest `URL`, and
 * returns what it observed. The same observer runs here with Node's own `URL`, and each WPT subtest is
 * judged the same way for both. mayfly parses through Node (the executor's url service), so the target
 * is: mayfly passes every subtest Node passes.
 *
 * The data lives beside the repository (../shared from the repo root); without it the tests are skipped.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WorkerLoader } from "../../src/index.ts";
import { worker } from "../helpers.ts";

const DATA_DIR = fileURLToPath(new URL("../../../shared/conformance/wpt-url/", import.meta.url));
const FILES = ["urltestdata.json", "setters_tests.json", "toascii.json"] as const;
type FileName = (typeof FILES)[number];
const present = FILES.every((f) => existsSync(DATA_DIR + f));

type Observation = Record<string, unknown>;
type Ctor = typeof URL;

// The observers run both here (Node's URL) and in the isolate (their source is sent in the worker), so
// they only use what both realms have. Each returns plain JSON: observed getters, or the error thrown.

/** url-constructor.any.js + url-origin.any.js (+ URL.canParse / URL.parse on the same input). */
function observeUrltestdata(URLImpl: Ctor, cases: unknown[]): Observation[] {
  const GETTERS = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash", "origin"];
  const errName = (e: unknown) => (e instanceof TypeError ? "TypeError" : String((e as Error)?.name));
  const out: Observation[] = [];
  for (const c of cases as { input: string; base: string | null }[]) {
    if (typeof c !== "object" || c === null) continue;
    const o: Observation = {};
    try {
      const url: Record<string, unknown> = (c.base !== null ? new URLImpl(c.input, c.base) : new URLImpl(c.input)) as never;
      for (const k of GETTERS) o[k] = url[k];
      o.hasSearchParams = "searchParams" in url;
      o.searchParams = String((url as unknown as URL).searchParams);
    } catch (e) {
      o.threw = errName(e);
    }
    try {
      o.canParse = c.base !== null ? URLImpl.canParse(c.input, c.base) : URLImpl.canParse(c.input);
    } catch (e) {
      o.canParse = "threw " + errName(e);
    }
    try {
      const parsed = c.base !== null ? URLImpl.parse(c.input, c.base) : URLImpl.parse(c.input);
      o.parse = parsed === null ? null : parsed.href;
    } catch (e) {
      o.parse = "threw " + errName(e);
    }
    out.push(o);
  }
  return out;
}

/** url-setters.any.js: parse `href`, assign `new_value`, read each expected getter. */
function observeSetters(URLImpl: Ctor, data: Record<string, unknown>): Observation[] {
  const out: Observation[] = [];
  for (const attribute of Object.keys(data)) {
    if (attribute === "comment") continue;
    for (const c of data[attribute] as { href: string; new_value: string; expected: Record<string, string> }[]) {
      if (typeof c !== "object" || c === null) continue;
      const o: Observation = {};
      try {
        const url = new URLImpl(c.href) as unknown as Record<string, unknown>;
        url[attribute] = c.new_value;
        for (const k of Object.keys(c.expected)) o[k] = url[k];
      } catch (e) {
        o.threw = String((e as Error)?.name) + ": " + String((e as Error)?.message);
      }
      out.push(o);
    }
  }
  return out;
}

/** toascii.any.js: `new URL("https://" + input + "/x")`, then the host and hostname setters on https://x/x. */
function observeToascii(URLImpl: Ctor, cases: unknown[]): Observation[] {
  const out: Observation[] = [];
  for (const c of cases as { input: string }[]) {
    if (typeof c !== "object" || c === null) continue;
    const o: Observation = {};
    try {
      const url = new URLImpl("https://" + c.input + "/x");
      o.url = { host: url.host, hostname: url.hostname, pathname: url.pathname, href: url.href };
    } catch (e) {
      o.url = { threw: e instanceof TypeError ? "TypeError" : String((e as Error)?.name) };
    }
    for (const val of ["host", "hostname"] as const) {
      try {
        const url = new URLImpl("https://x/x");
        url[val] = c.input;
        o[val] = url[val];
      } catch (e) {
        o[val] = { threw: String((e as Error)?.name) };
      }
    }
    out.push(o);
  }
  return out;
}

/** One WPT subtest's verdict: its name and whether the observation meets the expectation. */
interface Verdict {
  name: string;
  pass: boolean;
}

function judgeUrltestdata(cases: unknown[], observed: Observation[]): Verdict[] {
  const tests = cases.filter((c): c is Record<string, unknown> => typeof c === "object" && c !== null);
  const verdicts: Verdict[] = [];
  tests.forEach((expected, i) => {
    const o = observed[i]!;
    const name = `Parsing: <${String(expected.input)}> against <${String(expected.base)}>`;
    let pass: boolean;
    if (expected.failure) {
      pass = o.threw === "TypeError" && o.canParse === false && o.parse === null;
    } else {
      pass =
        o.threw === undefined &&
        ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"].every((k) => o[k] === expected[k]) &&
        (!("origin" in expected) || o.origin === expected.origin) &&
        (!("searchParams" in expected) || (o.hasSearchParams === true && o.searchParams === expected.searchParams)) &&
        o.canParse === true &&
        o.parse === expected.href;
    }
    verdicts.push({ name, pass });
  });
  return verdicts;
}

function judgeSetters(data: Record<string, unknown>, observed: Observation[]): Verdict[] {
  const verdicts: Verdict[] = [];
  let i = 0;
  for (const attribute of Object.keys(data)) {
    if (attribute === "comment") continue;
    for (const c of data[attribute] as { href: string; new_value: string; expected: Record<string, string>; comment?: string }[]) {
      if (typeof c !== "object" || c === null) continue;
      const o = observed[i++]!;
      const name = `URL: Setting <${c.href}>.${attribute} = '${c.new_value}'${c.comment ? " " + c.comment : ""}`;
      verdicts.push({ name, pass: o.threw === undefined && Object.keys(c.expected).every((k) => o[k] === c.expected[k]) });
    }
  }
  return verdicts;
}

function judgeToascii(cases: unknown[], observed: Observation[]): Verdict[] {
  const tests = cases.filter((c): c is { input: string; output: string | null } => typeof c === "object" && c !== null);
  const verdicts: Verdict[] = [];
  tests.forEach((t, i) => {
    const o = observed[i]!;
    const url = o.url as Record<string, unknown>;
    const ok =
      t.output === null
        ? url.threw === "TypeError"
        : url.threw === undefined && url.host === t.output && url.hostname === t.output && url.pathname === "/x" && url.href === `https://${t.output}/x`;
    verdicts.push({ name: `${t.input} (using URL)`, pass: ok });
    for (const val of ["host", "hostname"] as const) {
      verdicts.push({ name: `${t.input} (using URL.${val})`, pass: o[val] === (t.output === null ? "x" : t.output) });
    }
  });
  return verdicts;
}

const OBSERVERS: Record<FileName, { observe: (URLImpl: Ctor, data: never) => Observation[]; judge: (data: never, observed: Observation[]) => Verdict[] }> = {
  "urltestdata.json": { observe: observeUrltestdata, judge: judgeUrltestdata },
  "setters_tests.json": { observe: observeSetters, judge: judgeSetters },
  "toascii.json": { observe: observeToascii, judge: judgeToascii },
};

/** The conformance worker: the request body is the data file's text (sent as is, so escaped lone
 * surrogates survive), the `x-file` header names the observer to run. */
const WORKER_SOURCE = `
${observeUrltestdata.toString()}
${observeSetters.toString()}
${observeToascii.toString()}
const OBSERVE = { "urltestdata.json": observeUrltestdata, "setters_tests.json": observeSetters, "toascii.json": observeToascii };
export default {
  async fetch(request) {
    const data = JSON.parse(await request.text());
    return Response.json(OBSERVE[request.headers.get("x-file")](URL, data));
  },
};
`;

let loader: WorkerLoader | undefined;
before(async () => {
  if (!present) return;
  loader = new WorkerLoader({ executors: 1 });
  await loader.ready();
});
after(() => loader?.close());

describe("WPT url (web-platform-tests/url/resources)", () => {
  for (const file of FILES) {
    test(file, async (t: TestContext) => {
      if (!present) {
        t.skip(`WPT URL data absent: ${DATA_DIR} (see shared/conformance/wpt-url/SOURCE.md)`);
        return;
      }
      const text = readFileSync(DATA_DIR + file, "utf8");
      const { observe, judge } = OBSERVERS[file];
      const data = JSON.parse(text) as never;

      const stub = loader!.load(worker(WORKER_SOURCE, { limits: { cpuMs: 20_000, wallMs: 60_000 } }));
      const res = await stub.getEntrypoint().fetch("http://wpt/", { method: "POST", body: text, headers: { "x-file": file } });
      const body = await res.text();
      assert.equal(res.status, 200, body.slice(0, 2000));
      const guestObserved = JSON.parse(body) as Observation[];

      const mayfly = judge(data, guestObserved);
      const node = judge(data, observe(URL, data));
      assert.equal(mayfly.length, node.length);

      const passed = (v: Verdict[]) => v.filter((x) => x.pass).length;
      t.diagnostic(`${file}: mayfly ${passed(mayfly)}/${mayfly.length}, node ${passed(node)}/${node.length}`);
      const nodeOnly = mayfly.filter((v, i) => !v.pass && node[i]!.pass).map((v) => v.name);
      const mayflyOnly = mayfly.filter((v, i) => v.pass && !node[i]!.pass).map((v) => v.name);
      if (mayflyOnly.length) t.diagnostic(`passed by mayfly, not by node: ${JSON.stringify(mayflyOnly)}`);
      const nodeFails = node.filter((v) => !v.pass).map((v) => v.name);
      if (nodeFails.length) t.diagnostic(`failed by node (not required): ${JSON.stringify(nodeFails)}`);
      assert.deepEqual(nodeOnly, [], "mayfly fails subtests that Node's URL passes");
    });
  }
});
