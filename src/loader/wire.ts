import type { WireRequest, WireResponse } from "../runtime/index.ts";

/** Host Request → the plain form that crosses into the isolate. */
export async function toWireRequest(input: RequestInfo | URL, init?: RequestInit): Promise<WireRequest> {
  const req = input instanceof Request && !init ? input : new Request(input, init);
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : null;
  return { url: req.url, method: req.method, headers: [...req.headers], body };
}

// Fetch §2.2.3: a null body status has no body.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** The guest's response, as a standard Response in the host. */
export function fromWireResponse(w: WireResponse): Response {
  const headers = new Headers();
  for (const [k, v] of w.headers) headers.append(k, v);
  const body = NULL_BODY_STATUS.has(w.status) ? null : w.body;
  return new Response(body as BodyInit | null, { status: w.status, statusText: w.statusText, headers });
}
