import type { WireRequest, WireResponse } from "../runtime/index.ts";

/** Bodies up to this size whose size is known cross in one frame; the rest stream in chunks. */
const INLINE_BODY_BYTES = 1024 * 1024;

/**
 * Host Request → the plain form that crosses into the isolate, plus the body stream when the body is
 * large or of unknown size (a ReadableStream, a streamed Request): it then flows a chunk at a time.
 */
export async function toWireRequest(input: RequestInfo | URL, init?: RequestInit): Promise<{ wire: WireRequest; body?: ReadableStream<Uint8Array> }> {
  const req = input instanceof Request && !init ? input : new Request(input, init);
  const head = { url: req.url, method: req.method, headers: [...req.headers] as [string, string][] };
  if (!req.body) return { wire: { ...head, body: null } };
  const size = knownSize(init?.body);
  if (size !== undefined && size <= INLINE_BODY_BYTES) {
    return { wire: { ...head, body: new Uint8Array(await req.arrayBuffer()) } };
  }
  return { wire: { ...head, body: null, streamed: true }, body: req.body as ReadableStream<Uint8Array> };
}

function knownSize(body: unknown): number | undefined {
  if (typeof body === "string") return body.length * 3; // UTF-8 upper bound
  if (body instanceof ArrayBuffer) return body.byteLength;
  if (ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size;
  if (body instanceof URLSearchParams) return body.toString().length;
  return undefined;
}

// Fetch §2.2.3: a null body status has no body.
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** The guest's response, as a standard Response in the host; a streamed body stays a stream. */
export function fromWireResponse(w: WireResponse & { bodyStream?: ReadableStream<Uint8Array> }): Response {
  const headers = new Headers();
  for (const [k, v] of w.headers) headers.append(k, v);
  const body = NULL_BODY_STATUS.has(w.status) ? null : (w.bodyStream ?? w.body);
  return new Response(body as BodyInit | null, { status: w.status, statusText: w.statusText, headers });
}
