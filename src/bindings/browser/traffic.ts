/**
 * Page traffic through the egress gateway. Chromium sends nothing itself: every request of a run's
 * context (documents, subresources, a page's fetch/XHR, each redirect hop) is intercepted, fetched
 * by the host through the same gateway a worker's fetch() uses (allow-list, private-address refusal,
 * pinned DNS, onDecision) and fulfilled from its answer; each redirect hop is checked again (see
 * fetchAndFulfill). WebSockets are refused.
 */
import type { BrowserContext, Frame, Page, Request as PwRequest, Route } from "playwright-core";
import { EgressDeniedError } from "../egress/errors.ts";
import type { EgressGateway } from "../egress/gateway.ts";

/** Headers Chromium may put on an intercepted request that the gateway would refuse (it sets them itself). */
const DROPPED_REQUEST_HEADERS = new Set(["host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer", "content-length", "expect"]);
/**
 * The gateway's body is already decoded and re-framed, so the first ones would describe bytes that are
 * not there; the redirect marker is ours alone (an origin sending it would steer goto()).
 */
const DROPPED_RESPONSE_HEADERS = new Set(["content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", "x-mayfly-redirect"]);

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Redirects one frame follows in a row, as the gateway's default. */
const MAX_REDIRECTS = 5;
/** Marks the page that stands for a document's redirect; goto() follows it (see BrowserSession.goto). */
export const REDIRECT_HEADER = "x-mayfly-redirect";

/** A document that navigates to `next` at once (and keeps the redirect's cookies). */
function redirectPage(next: string, cookies: string[], refresh: boolean): { status: number; headers: Record<string, string>; body: string } {
  const attr = next.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const headers: Record<string, string> = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", [REDIRECT_HEADER]: next };
  if (cookies.length) headers["set-cookie"] = cookies.join("\n");
  return { status: 200, headers, body: refresh ? `<!doctype html><meta http-equiv="refresh" content="0;url=${attr}">` : "<!doctype html>" };
}

/** What a run's traffic has used, and the last refusal of each page's own navigation. */
export interface TrafficState {
  bytes: number;
  readonly maxBytes: number;
  readonly navigationDenials: WeakMap<Page, EgressDeniedError>;
  /** Pages whose main frame goto() is navigating (it follows their redirects itself). */
  readonly navigating: WeakSet<Page>;
  /** Redirects a frame has followed since its last document (a page-made redirect loop would never end). */
  readonly redirectHops: WeakMap<Frame, number>;
  /** Requests of the run being fetched, and those waiting for a turn (see IN_FLIGHT). */
  inFlight: number;
  readonly waiting: (() => void)[];
}

/**
 * Requests a run's pages have at the gateway at once. Interception comes before Chromium's own
 * per-host connection limit, so a page with forty images asks for all forty together; past the
 * gateway's maxConcurrent (16 by default, shared with the worker's fetch) they would be refused,
 * so they queue here instead. Six, as Chromium's per-host limit.
 */
const IN_FLIGHT = 6;

async function turn(state: TrafficState): Promise<() => void> {
  if (state.inFlight >= IN_FLIGHT) await new Promise<void>((r) => state.waiting.push(r));
  else state.inFlight++;
  // A finished request hands its turn straight to the next waiting one.
  return () => {
    const next = state.waiting.shift();
    if (next) next();
    else state.inFlight--;
  };
}

export async function routeThroughGateway(context: BrowserContext, gateway: EgressGateway, state: TrafficState): Promise<void> {
  await context.route("**/*", (route, request) => forward(route, request, gateway, state));
  await context.routeWebSocket(/.*/, (ws) => {
    gateway.deny(ws.url(), "GET", "websocket", "a page's WebSockets are refused");
    void ws.close({ code: 1008, reason: "refused by the egress policy" }).catch(() => {});
  });
}

async function forward(route: Route, request: PwRequest, gateway: EgressGateway, state: TrafficState): Promise<void> {
  const done = await turn(state);
  try {
    await fetchAndFulfill(route, request, gateway, state);
  } finally {
    done();
  }
}

async function fetchAndFulfill(route: Route, request: PwRequest, gateway: EgressGateway, state: TrafficState): Promise<void> {
  const url = request.url();
  const method = request.method();
  try {
    if (!/^https?:/i.test(url)) throw gateway.deny(url, method, "scheme", `${url.split(":")[0]}: URLs are not allowed`);
    if (state.bytes >= state.maxBytes) throw gateway.deny(url, method, "maxBytes", `the run's pages received ${state.maxBytes} bytes`);
    const headers = new Headers();
    for (const [name, value] of Object.entries(await request.allHeaders())) {
      if (!name.startsWith(":") && !DROPPED_REQUEST_HEADERS.has(name) && !name.startsWith("proxy-")) headers.set(name, value);
    }
    const body = method === "GET" || method === "HEAD" ? null : request.postDataBuffer();
    // Playwright hands only a redirect chain's first request to route(); the browser would send the
    // later hops itself. So a subresource's redirects are followed by the gateway (each hop checked),
    // and a document's redirect becomes a page that navigates on: a new request, intercepted again,
    // with the document at its real URL and origin.
    const document = request.resourceType() === "document";
    const frame = request.frame();
    const hops = document ? (state.redirectHops.get(frame) ?? 0) : 0;
    if (hops > MAX_REDIRECTS) {
      state.redirectHops.delete(frame);
      throw gateway.deny(url, method, "maxRedirects", `more than ${MAX_REDIRECTS} redirects`);
    }
    const response = await gateway.fetch(new Request(url, { method, headers, body: body ? new Uint8Array(body) : null, redirect: document ? "manual" : "follow" }));
    const location = response.headers.get("location");
    if (document && REDIRECTS.has(response.status) && location !== null) {
      await response.body?.cancel().catch(() => {});
      state.redirectHops.set(frame, hops + 1);
      // goto() follows its own hops; a navigation the page made (a link, a form) needs the page to move on.
      const driven = frame === frame.page()?.mainFrame() && state.navigating.has(frame.page()!);
      return await route.fulfill(redirectPage(new URL(location, url).href, response.headers.getSetCookie(), !driven));
    }
    if (document) state.redirectHops.delete(frame);
    const bytes = await readWithin(response, state, url, method, gateway);
    const out: Record<string, string> = {};
    for (const [name, value] of response.headers) if (!DROPPED_RESPONSE_HEADERS.has(name)) out[name] = value;
    // Set-Cookie headers are joined by Headers iteration; each must reach the browser as its own.
    const cookies = response.headers.getSetCookie();
    if (cookies.length) out["set-cookie"] = cookies.join("\n");
    await route.fulfill({ status: response.status, headers: out, body: Buffer.from(bytes) });
  } catch (e) {
    if (e instanceof EgressDeniedError && request.isNavigationRequest()) {
      const page = request.frame().page();
      if (page && request.frame() === page.mainFrame()) state.navigationDenials.set(page, e);
      // A refused document is answered with the refusal (sent by no one but the host): an aborted one
      // would show Chromium's error page, a navigation of its own that interrupts the worker's next goto().
      return await route.fulfill({ status: 403, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }, body: e.message }).catch(() => {});
    }
    // The context may be closing as the run ends; a request it no longer waits for needs no answer.
    await route.abort(e instanceof EgressDeniedError ? "blockedbyclient" : "failed").catch(() => {});
  }
}

/** The body, counted against the run's byte cap as it arrives; past the cap the read stops. */
async function readWithin(response: Response, state: TrafficState, url: string, method: string, gateway: EgressGateway): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  const reader = response.body.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    state.bytes += r.value.byteLength;
    if (state.bytes > state.maxBytes) {
      await reader.cancel().catch(() => {});
      throw gateway.deny(url, method, "maxBytes", `the run's pages received more than ${state.maxBytes} bytes`);
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks);
}
