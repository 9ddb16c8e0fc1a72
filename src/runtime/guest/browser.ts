/**
 * The browser binding in the guest, shaped like Cloudflare's Browser Rendering pages: every call
 * crosses to the host (bindings/browser), which drives Chromium; a page is a number in the host's
 * run session. evaluate() sends a function as its source text, to run in the page, not here.
 */
type Call = (id: number, method: string, args: unknown[]) => Promise<unknown>;

export function browserStub(id: number, callCapability: Call): object {
  const call = (method: string, ...args: unknown[]) => callCapability(id, method, args);
  const page = (p: number) => Object.freeze({
    goto: (url: unknown, options?: unknown) => call("goto", p, String(url), options ?? {}),
    content: () => call("content", p),
    title: () => call("title", p),
    url: () => call("url", p),
    /** PNG bytes (or JPEG with `type: "jpeg"`). */
    screenshot: (options?: unknown) => call("screenshot", p, options ?? {}),
    pdf: (options?: unknown) => call("pdf", p, options ?? {}),
    evaluate: (fn: unknown, ...args: unknown[]) =>
      call("evaluate", p, String(fn), { function: typeof fn === "function", args }),
    click: (selector: string, options?: unknown) => call("click", p, String(selector), options ?? {}),
    type: (selector: string, text: string, options?: unknown) => call("type", p, String(selector), String(text), options ?? {}),
    waitForSelector: (selector: string, options?: unknown) => call("waitForSelector", p, String(selector), options ?? {}),
    cdp: (method: string, params?: unknown) => call("cdp", p, String(method), params ?? {}),
    close: async () => void (await call("close", p)),
  });
  return Object.freeze({
    async newPage() {
      const r = (await call("newPage")) as { page: number };
      return page(r.page);
    },
  });
}
