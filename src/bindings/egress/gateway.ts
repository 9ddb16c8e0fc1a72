/**
 * The egress gateway: the only way a worker's fetch() reaches the network when it is granted one.
 * Every decision is made on the WHATWG-parsed URL and on every address the name resolves to; the
 * connection is then pinned to the checked address (no rebinding window), and each redirect hop is
 * checked again from the start. Each refusal is an EgressDeniedError naming the check; nothing is sent.
 */
import { lookup as systemLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { Agent, fetch as undiciFetch } from "undici";
import { BINDING, fetcherCapability, type Bindable, type Capability } from "../capability.ts";
import { isPrivateAddress } from "./addresses.ts";
import { EgressDeniedError } from "./errors.ts";
import { compilePolicy, matchRule, type CompiledRule, type EgressPolicy, type ResolvedPolicy } from "./policy.ts";

/** Request headers a worker may not set: they would let it talk past the gateway (Fetch §2.2.2 and hop-by-hop). */
const FORBIDDEN_HEADERS = new Set([
  "host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer", "content-length",
  "proxy-authorization", "proxy-connection", "expect",
]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

export class EgressGateway implements Bindable {
  private readonly policy: ResolvedPolicy;
  private inFlight = 0;

  constructor(policy: EgressPolicy) {
    this.policy = compilePolicy(policy);
  }

  [BINDING](): Capability {
    return fetcherCapability(this, "egress gateway");
  }

  /** Sends `request` if the policy allows it, following checked redirects; usable from the host too. */
  async fetch(request: Request): Promise<Response> {
    if (this.inFlight >= this.policy.maxConcurrent) {
      throw this.refused(request.url, request.method, new EgressDeniedError("maxConcurrent", `more than ${this.policy.maxConcurrent} requests in flight through this gateway`));
    }
    this.inFlight++;
    try {
      return await this.send(request);
    } finally {
      this.inFlight--;
    }
  }

  private async send(request: Request): Promise<Response> {
    const deadline = AbortSignal.timeout(this.policy.timeoutMs);
    let url = parse(request.url);
    let method = request.method.toUpperCase();
    let headers = new Headers(request.headers);
    let body = request.body ? await readCapped(request, this.policy.maxRequestBytes, "maxRequestBytes", "request body") : null;
    for (let hop = 0; hop <= this.policy.maxRedirects; hop++) {
      let rule: CompiledRule;
      let address: { address: string; family: 4 | 6 };
      try {
        rule = this.check(url, method, headers);
        address = await this.resolve(url, rule);
      } catch (e) {
        throw e instanceof EgressDeniedError ? this.refused(url.href, method, e) : e;
      }
      this.policy.onDecision?.({ url: url.href, method, allowed: true });
      for (const [k, v] of Object.entries(rule.headers ?? {})) headers.set(k, v);
      const agent = pinnedAgent(address);
      try {
        const res = await undiciFetch(url, {
          method, headers: [...headers], body: body as Uint8Array<ArrayBuffer> | null, redirect: "manual", dispatcher: agent, signal: deadline,
        }).catch((e: Error) => {
          throw deadline.aborted ? new EgressDeniedError("timeoutMs", `no answer within ${this.policy.timeoutMs} ms`) : Object.assign(new Error(`Network error: ${e.message}`), { name: "TypeError" });
        });
        const location = res.headers.get("location");
        // A host caller that follows redirects itself (the browser binding: each hop comes back
        // through its interception and here) gets the redirect; a worker's requests never ask for it.
        if (!REDIRECTS.has(res.status) || location === null || request.redirect === "manual") {
          // The body streams to the worker as it reads it, counted against the cap on the way.
          const max = this.policy.maxResponseBytes;
          if (Number(res.headers.get("content-length") ?? 0) > max) {
            await res.body?.cancel();
            throw new EgressDeniedError("maxResponseBytes", `the response body is over ${max} bytes`);
          }
          const body = res.body ? (res.body as unknown as ReadableStream<Uint8Array>).pipeThrough(capBytes(max)) : null;
          return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as Headers });
        }
        await res.body?.cancel();
        // Fetch §4.4 HTTP-redirect fetch: a new URL, checked again from the start.
        const next = parse(new URL(location, url).href);
        if (next.origin !== url.origin) {
          // Credentials (and this rule's injected secrets) never follow a request to another origin.
          headers = new Headers(headers);
          for (const h of [...CREDENTIAL_HEADERS, ...Object.keys(rule.headers ?? {})]) headers.delete(h);
        }
        if (res.status === 303 ? method !== "HEAD" : (res.status === 301 || res.status === 302) && method === "POST") {
          method = "GET";
          body = null;
          headers.delete("content-type");
        }
        url = next;
      } finally {
        void agent.close();
      }
    }
    throw new EgressDeniedError("maxRedirects", `more than ${this.policy.maxRedirects} redirects`);
  }

  /**
   * A refusal made by another front door of this policy (the browser binding's WebSockets, non-HTTP
   * URLs, byte and redirect caps): reported to onDecision as the gateway's own are, and given back to throw.
   */
  deny(url: string, method: string, rule: string, message: string): EgressDeniedError {
    return this.refused(url, method, new EgressDeniedError(rule, message));
  }

  /**
   * A raw TCP tunnel to host:port (an HTTP CONNECT from the OS sandbox's proxy): allowed when a rule
   * allows that origin (https, else http) and sets no per-request conditions (methods, headers),
   * since the requests inside a tunnel (TLS, usually) cannot be seen, let alone held to them. The name
   * is resolved and checked as for fetch(); answers the address the tunnel must connect to.
   */
  async authorizeTunnel(host: string, port: number): Promise<{ address: string; family: 4 | 6 }> {
    const name = isIP(host) === 6 ? `[${host}]` : host;
    const label = `${name}:${port}`;
    try {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new EgressDeniedError("url", `not a valid port: ${port}`);
      const urls = ["https:", "http:"].map((scheme) => parse(`${scheme}//${name}:${port}/`));
      const matched = urls.map((url) => ({ url, rule: matchRule(this.policy.rules, url) })).find((m) => m.rule);
      if (!matched) throw new EgressDeniedError("allow-list", `${label} is not on the allow-list`);
      const rule = matched.rule!;
      if (rule.methods || rule.headers) throw new EgressDeniedError("tunnel", `${rule.origin} sets methods or headers, which a tunnel cannot apply`);
      const address = await this.resolve(matched.url, rule);
      this.policy.onDecision?.({ url: label, method: "CONNECT", allowed: true });
      return address;
    } catch (e) {
      throw e instanceof EgressDeniedError ? this.refused(label, "CONNECT", e) : e;
    }
  }

  /** Reports a refusal to onDecision, and gives the error back to throw. */
  private refused(url: string, method: string, e: EgressDeniedError): EgressDeniedError {
    this.policy.onDecision?.({ url, method: method.toUpperCase(), allowed: false, rule: e.rule, reason: e.message });
    return e;
  }

  /** The checks that need no network: scheme, userinfo, allow-list, method, headers. */
  private check(url: URL, method: string, headers: Headers): CompiledRule {
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new EgressDeniedError("scheme", `${url.protocol} URLs are not allowed`);
    if (url.username || url.password) throw new EgressDeniedError("userinfo", "URLs with credentials (user@host) are refused");
    const rule = matchRule(this.policy.rules, url);
    if (!rule) throw new EgressDeniedError("allow-list", `${url.origin} is not on the allow-list`);
    if (rule.methods && !rule.methods.map((m) => m.toUpperCase()).includes(method)) {
      throw new EgressDeniedError(`methods of ${rule.origin}`, `${method} is not allowed to ${url.origin}`);
    }
    for (const [name, value] of headers) {
      if (FORBIDDEN_HEADERS.has(name) || name.startsWith("proxy-")) throw new EgressDeniedError("headers", `the ${name} header may not be set`);
      if (/[\r\n\0]/.test(value)) throw new EgressDeniedError("headers", `the ${name} header contains CR, LF or NUL`);
    }
    return rule;
  }

  /** Resolves the host and checks every address; returns the one the connection is pinned to. */
  private async resolve(url: URL, rule: CompiledRule): Promise<{ address: string; family: 4 | 6 }> {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const family = isIP(host);
    const addresses = family
      ? [{ address: host, family: family as 4 | 6 }]
      : await (this.policy.lookup ?? lookupAll)(host).catch(() => []);
    if (addresses.length === 0) throw new EgressDeniedError("dns", `${host} does not resolve`);
    if (!rule.allowPrivateAddresses) {
      const bad = addresses.find((a) => isPrivateAddress(a.address));
      if (bad) throw new EgressDeniedError("private-address", `${host} resolves to ${bad.address}, a private, loopback, link-local or reserved address`);
    }
    return addresses[0]!;
  }
}

/** Wraps an egress policy as a gateway, for `globalOutbound` or for env. */
export function egress(policy: EgressPolicy): EgressGateway {
  return new EgressGateway(policy);
}

function parse(href: string): URL {
  try {
    return new URL(href);
  } catch {
    throw new EgressDeniedError("url", `not a valid URL: ${href}`);
  }
}

async function lookupAll(host: string): Promise<{ address: string; family: 4 | 6 }[]> {
  return (await systemLookup(host, { all: true, verbatim: true })) as { address: string; family: 4 | 6 }[];
}

/** An undici agent whose every connection goes to the checked address, whatever DNS says later. */
function pinnedAgent(pinned: { address: string; family: 4 | 6 }): Agent {
  return new Agent({
    connect: {
      lookup: (_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
        if (options?.all) callback(null, [pinned]);
        else callback(null, pinned.address, pinned.family);
      },
    } as never,
  });
}

/** Passes bytes through until more than `limit` have gone by; then the stream fails with the cap's error. */
function capBytes(limit: number): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > limit) controller.error(new EgressDeniedError("maxResponseBytes", `the response body is over ${limit} bytes`));
      else controller.enqueue(chunk);
    },
  });
}

/** Reads a body up to `limit` bytes; past it, the read stops and the request is refused. */
async function readCapped(source: { body: ReadableStream<Uint8Array> | null }, limit: number, rule: string, what: string): Promise<Uint8Array | null> {
  if (!source.body) return null;
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limit) throw new EgressDeniedError(rule, `${what} larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
