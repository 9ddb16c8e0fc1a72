/**
 * Origins with `*.` wildcards, compared as sets: does one pattern cover another (a grant covering what
 * a manifest asks for; a new manifest's origin already covered by the old one's)? Same rules as the
 * egress gateway's matching: scheme and port must agree, `*.example.com` covers every name below
 * example.com (not example.com itself).
 */
import { parseOrigin } from "../bindings/egress/policy.ts";

/** Whether every URL `inner` matches is matched by `outer` too. */
export function originCovers(outer: string, inner: string): boolean {
  const o = parseOrigin(outer);
  const i = parseOrigin(inner);
  if (o.protocol !== i.protocol || o.port !== i.port) return false;
  if (!o.wildcard) return !i.wildcard && o.host === i.host;
  return i.host.endsWith(`.${o.host}`) || (i.wildcard && i.host === o.host);
}

/** Whether method set `outer` allows every method of `inner` (undefined: every method). */
export function methodsCover(outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean {
  if (!outer) return true;
  if (!inner) return false;
  const allowed = new Set(outer.map((m) => m.toUpperCase()));
  return inner.every((m) => allowed.has(m.toUpperCase()));
}
