/**
 * One run's browser: a fresh context (no cookies, storage or cache of any other run), its pages by
 * number, and the run's caps. Everything the guest asks for arrives here as a method name and copied
 * arguments; options are picked field by field, so nothing the guest sends reaches Playwright
 * unread (a screenshot's `path`, for one, would write a file on the host).
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { BrowserLimitError, MayflyError } from "../../errors.ts";
import type { EgressDeniedError } from "../egress/errors.ts";
import type { ResolvedBrowserOptions } from "./options.ts";
import { REDIRECT_HEADER, routeThroughGateway, type TrafficState } from "./traffic.ts";

/** A backstop only: traffic.ts refuses a frame's sixth redirect in a row first. */
const MAX_REDIRECTS = 10;
const WAIT_UNTIL = new Set(["load", "domcontentloaded", "networkidle", "commit"]);
const SELECTOR_STATES = new Set(["attached", "detached", "visible", "hidden"]);
/** CDP domains that reach past the run's own page (other contexts, the browser process itself). */
const CDP_REFUSED = /^(Browser|Target|SystemInfo|Tethering|Storage)\./;

export class BrowserSession {
  private context: Promise<BrowserContext> | undefined;
  private readonly pages = new Map<number, Page>();
  private opened = 0;
  /** newPage() calls whose page the context has not announced yet. */
  private requested = 0;
  private closed = false;
  private readonly traffic: TrafficState;
  private readonly options: ResolvedBrowserOptions;
  private readonly launch: () => Promise<Browser>;

  constructor(options: ResolvedBrowserOptions, launch: () => Promise<Browser>) {
    this.options = options;
    this.launch = launch;
    this.traffic = { bytes: 0, maxBytes: options.maxBytes, navigationDenials: new WeakMap<Page, EgressDeniedError>(), navigating: new WeakSet<Page>(), redirectHops: new WeakMap(), inFlight: 0, waiting: [] };
  }

  async call(method: string, args: unknown[]): Promise<unknown> {
    try {
      return await this.dispatch(method, args);
    } catch (e) {
      // Our own errors cross as they are; Playwright's carry a call log (host details), so only their first line does.
      throw e instanceof MayflyError || e instanceof TypeError ? e : firstLine(e);
    }
  }

  private async dispatch(method: string, args: unknown[]): Promise<unknown> {
    if (method === "newPage") return { page: await this.newPage() };
    const page = this.page(args[0]);
    const [a, b] = [args[1], args[2]];
    switch (method) {
      case "goto": return this.goto(page, String(a), (b ?? {}) as Record<string, unknown>);
      case "content": return page.content();
      case "title": return page.title();
      case "url": return page.url();
      case "screenshot": return bytes(await page.screenshot(screenshotOptions(a)));
      case "pdf": return bytes(await page.pdf(pdfOptions(a)));
      case "evaluate": return this.evaluate(page, String(a), b as { function: boolean; args: unknown[] });
      case "click": return void (await page.click(String(a), { timeout: this.timeout(b) }));
      case "type": return void (await page.locator(String(a)).pressSequentially(String(b), { timeout: this.timeout(args[3]) }));
      case "waitForSelector": return this.waitForSelector(page, String(a), (b ?? {}) as Record<string, unknown>);
      case "cdp": return this.cdp(page, String(a), b);
      case "close": {
        this.pages.delete(args[0] as number);
        return void (await page.close());
      }
      default: throw new TypeError(`Browser pages have no method ${method}().`);
    }
  }

  /** The run has ended: its context, pages, cookies and storage go with it. */
  async close(): Promise<void> {
    this.closed = true;
    this.pages.clear();
    const context = this.context;
    this.context = undefined;
    await (await context?.catch(() => undefined))?.close().catch(() => {});
  }

  private async newPage(): Promise<number> {
    if (this.opened >= this.options.maxPages) throw new BrowserLimitError("maxPages", `A run may open at most ${this.options.maxPages} pages.`);
    const id = ++this.opened;
    this.requested++;
    const context = await (this.context ??= this.newContext());
    if (this.closed) throw new TypeError("The run this browser belonged to has ended.");
    const page = await context.newPage();
    this.pages.set(id, page);
    return id;
  }

  /**
   * Every page of the context passes here, ours (already counted by newPage) and those a page opens
   * itself (window.open, target=_blank): those count toward maxPages too, and past it are closed.
   */
  private onPage(page: Page): void {
    if (this.requested > 0) return void this.requested--;
    if (++this.opened > this.options.maxPages) void page.close().catch(() => {});
  }

  private async newContext(): Promise<BrowserContext> {
    const browser = await this.launch();
    const context = await browser.newContext({
      acceptDownloads: false,
      // A service worker's requests would not pass through the context's interception.
      serviceWorkers: "block",
      viewport: this.options.viewport,
    });
    context.on("page", (page) => this.onPage(page));
    context.setDefaultNavigationTimeout(this.options.navigationTimeoutMs);
    context.setDefaultTimeout(this.options.actionTimeoutMs);
    await routeThroughGateway(context, this.options.gateway, this.traffic);
    if (this.closed) await context.close();
    return context;
  }

  private page(id: unknown): Page {
    const page = this.pages.get(id as number);
    if (!page || page.isClosed()) throw new TypeError("This page is closed.");
    return page;
  }

  private async goto(page: Page, url: string, options: Record<string, unknown>): Promise<{ status: number; url: string } | null> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`Invalid URL: ${url}`);
    }
    // file:, chrome:, data: ... never reach the interception (they are not network requests): refused here.
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw this.options.gateway.deny(url, "GET", "scheme", `${parsed.protocol} URLs are not allowed`);
    const waitUntil = WAIT_UNTIL.has(options.waitUntil as string) ? (options.waitUntil as "load") : "load";
    this.traffic.navigationDenials.delete(page);
    const timeout = this.timeout(options.timeout, this.options.navigationTimeoutMs);
    this.traffic.navigating.add(page);
    try {
      const go = async (href: string) => {
        const response = await page.goto(href, { waitUntil, timeout });
        const denied = this.traffic.navigationDenials.get(page);
        if (denied) throw denied;
        return response;
      };
      let response = await go(parsed.href);
      // A document's redirect arrives as a page that navigates on (traffic.ts): goto follows it, each hop intercepted again.
      for (let hop = 0; response?.headers()[REDIRECT_HEADER]; hop++) {
        if (hop >= MAX_REDIRECTS) throw this.options.gateway.deny(response.url(), "GET", "maxRedirects", `more than ${MAX_REDIRECTS} redirects`);
        response = await go(response.headers()[REDIRECT_HEADER]!);
      }
      return response && { status: response.status(), url: response.url() };
    } catch (e) {
      // The gateway's refusal says why a navigation failed better than Chromium's net::ERR_BLOCKED_BY_CLIENT.
      throw this.traffic.navigationDenials.get(page) ?? e;
    } finally {
      this.traffic.navigating.delete(page);
    }
  }

  private async evaluate(page: Page, source: string, call: { function: boolean; args: unknown[] }): Promise<unknown> {
    const args = Array.isArray(call?.args) ? call.args : [];
    // A function crosses as its source and runs in the page with its JSON arguments; a string is an expression.
    const expression = call?.function ? `(${source})(...${JSON.stringify(args)})` : source;
    return page.evaluate(expression);
  }

  private async waitForSelector(page: Page, selector: string, options: Record<string, unknown>): Promise<boolean> {
    const state = SELECTOR_STATES.has(options.state as string) ? (options.state as "visible") : "visible";
    const handle = await page.waitForSelector(selector, { state, timeout: this.timeout(options.timeout) });
    await handle?.dispose();
    return true;
  }

  private async cdp(page: Page, method: string, params: unknown): Promise<unknown> {
    if (!this.options.cdp) throw new TypeError("page.cdp() needs the browser binding's cdp: true option.");
    if (CDP_REFUSED.test(method)) throw new TypeError(`page.cdp(): the ${method.split(".")[0]} domain reaches past this run's page and is refused.`);
    const session = await page.context().newCDPSession(page);
    try {
      return await session.send(method as "Runtime.evaluate", (params ?? {}) as never);
    } finally {
      await session.detach().catch(() => {});
    }
  }

  /** A guest's timeout, never above the binding's. */
  private timeout(value: unknown, ceiling = this.options.actionTimeoutMs): number {
    const n = typeof value === "object" && value !== null ? (value as { timeout?: unknown }).timeout : value;
    return typeof n === "number" && n > 0 ? Math.min(n, ceiling) : ceiling;
  }
}

function screenshotOptions(input: unknown): Parameters<Page["screenshot"]>[0] {
  const o = (input ?? {}) as Record<string, unknown>;
  const type = o.type === "jpeg" ? "jpeg" : "png";
  return {
    type, fullPage: o.fullPage === true, omitBackground: o.omitBackground === true,
    ...(type === "jpeg" && typeof o.quality === "number" ? { quality: Math.max(0, Math.min(100, Math.round(o.quality))) } : {}),
  };
}

function pdfOptions(input: unknown): Parameters<Page["pdf"]>[0] {
  const o = (input ?? {}) as Record<string, unknown>;
  return {
    ...(typeof o.format === "string" ? { format: o.format } : {}),
    landscape: o.landscape === true,
    printBackground: o.printBackground === true,
    ...(typeof o.scale === "number" ? { scale: Math.max(0.1, Math.min(2, o.scale)) } : {}),
  };
}

/** Playwright's Buffer as plain bytes for the guest. */
function bytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
}

/** Playwright's errors carry a call log (host details); the guest gets the first line, under the same name. */
function firstLine(e: unknown): Error {
  const err = e as Error;
  const out = new Error(String(err?.message ?? e).split("\n")[0]);
  out.name = typeof err?.name === "string" ? err.name : "Error";
  return out;
}
