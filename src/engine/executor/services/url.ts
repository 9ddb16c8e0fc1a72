import type { Service } from "./index.ts";

/**
 * URL parsing for the guest's `URL` (URL Standard §4.4 basic URL parser, §6.1 API), done by Node's own
 * WHATWG URL (Ada) so a guest parses exactly as Node does. Stateless and copy-only: strings in, a plain
 * record of strings out. The guest keeps the record; a setter sends the current href, the property and
 * the value, and gets the new record back (a URL's serialization parses back to the same URL, §4.5).
 */

/** What the guest keeps of a URL: every getter of URL Standard §6.1, as Node reports them. */
export interface UrlRecord {
  href: string;
  origin: string;
  protocol: string;
  username: string;
  password: string;
  host: string;
  hostname: string;
  port: string;
  pathname: string;
  search: string;
  hash: string;
}

/** The setters applied through `set`; `href` is a fresh parse (`parse`), not a setter here. */
const SETTERS = new Set(["protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"]);

function record(u: URL): UrlRecord {
  return {
    href: u.href,
    origin: u.origin,
    protocol: u.protocol,
    username: u.username,
    password: u.password,
    host: u.host,
    hostname: u.hostname,
    port: u.port,
    pathname: u.pathname,
    search: u.search,
    hash: u.hash,
  };
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw new TypeError(`The ${what} must be a string`);
  return value;
}

export const url: Service = {
  sync: {
    /**
     * The record of `new URL(input, base)` (base omitted: no base), or null when parsing fails: the
     * guest throws the TypeError, or returns null for URL.parse and false for URL.canParse.
     */
    parse(_state, input: unknown, base?: unknown): UrlRecord | null {
      const i = str(input, "URL");
      const u = base === undefined ? URL.parse(i) : URL.parse(i, str(base, "base URL"));
      return u ? record(u) : null;
    },
    /** Applies one setter (§6.1) to the URL `href` serializes; setters never throw, they leave the URL as it was. */
    set(_state, href: unknown, property: unknown, value: unknown): UrlRecord {
      const p = str(property, "property");
      if (!SETTERS.has(p)) throw new TypeError(`Unknown URL property ${p}`);
      const u = URL.parse(str(href, "URL"));
      if (!u) throw new TypeError("Invalid URL");
      (u as unknown as Record<string, string>)[p] = str(value, "value");
      return record(u);
    },
  },
};
