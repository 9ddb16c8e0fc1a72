/**
 * The browser binding (Tier 3): a worker drives headless Chromium through `env.BROWSER`, with an API
 * shaped like Cloudflare's Browser Rendering (newPage, goto, content, screenshot, pdf, evaluate,
 * click, type, waitForSelector; cdp only when granted). The host launches one Chromium per binding,
 * shared by every worker that holds it; each run gets a fresh browser context, closed when the run
 * ends. All page traffic goes through the binding's egress gateway (see traffic.ts).
 */
import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";
import { BrowserUnavailableError } from "../../errors.ts";
import { BINDING, type Bindable, type Capability } from "../capability.ts";
import { resolveBrowserOptions, type BrowserOptions, type ResolvedBrowserOptions } from "./options.ts";
import { BrowserSession } from "./session.ts";

export type { BrowserOptions } from "./options.ts";

/**
 * Chromium's own network stack is given nowhere to go: every connection it would open itself goes to
 * a proxy that cannot resolve, and it resolves no name. Interception already answers every request
 * from the host; this catches what interception never sees (speculative preconnects, a WebSocket,
 * traffic a cdp() user could unhook), so a bypass still reaches nothing.
 */
const NO_NETWORK_ARGS = [
  "--proxy-server=http://egress-refused.invalid:9",
  "--proxy-bypass-list=<-loopback>",
  "--host-resolver-rules=MAP * ~NOTFOUND",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-pings",
  // No --disable-features here: Chromium keeps only the last one, and Playwright's own (which makes a
  // dedicated worker's requests interceptable) must stand.
  "--disable-dev-shm-usage",
  "--disable-gpu",
];

export class BrowserBinding implements Bindable {
  private readonly options: ResolvedBrowserOptions;
  private browser: Promise<Browser> | undefined;

  constructor(options: BrowserOptions) {
    this.options = resolveBrowserOptions(options);
  }

  [BINDING](): Capability {
    // One capability per loaded worker; its session lives while a run of that worker is in flight.
    let session: BrowserSession | undefined;
    return {
      kind: "browser",
      runsBegan: () => void (session = new BrowserSession(this.options, () => this.launch())),
      runsEnded: async () => {
        const ended = session;
        session = undefined;
        await ended?.close();
      },
      call: async (method, args) => {
        if (!session) throw new TypeError("The browser can be used only while a run of this worker is in flight.");
        return session.call(method, args);
      },
    };
  }

  /** Starts Chromium now (otherwise the first newPage() does); rejects with BrowserUnavailableError. */
  async launch(): Promise<Browser> {
    const current = this.browser;
    if (current) {
      const browser = await current.catch(() => undefined);
      if (browser?.isConnected()) return browser;
      if (this.browser === current) this.browser = undefined; // crashed or failed: the next call tries again
    }
    this.browser ??= this.start();
    return this.browser;
  }

  /** Closes Chromium; runs in flight lose their pages. A later run starts it again. */
  async close(): Promise<void> {
    const current = this.browser;
    this.browser = undefined;
    await (await current?.catch(() => undefined))?.close().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async start(): Promise<Browser> {
    const path = this.options.executablePath;
    if (!existsSync(path)) {
      throw new BrowserUnavailableError(`Chromium is not installed at ${path}: install it (apt-get install chromium) or pass the browser binding's executablePath.`);
    }
    // Loaded on first use: importing Playwright costs about a second, which no host without a browser should pay.
    const { chromium } = await import("playwright-core");
    try {
      return await chromium.launch({ executablePath: path, headless: true, chromiumSandbox: this.options.sandbox, args: NO_NETWORK_ARGS });
    } catch (e) {
      const first = String((e as Error)?.message ?? e).split("\n").find((l) => l.trim()) ?? "";
      throw new BrowserUnavailableError(`Chromium at ${path} did not start (${first.trim()})${this.options.sandbox ? "; a host running as root needs the binding's sandbox: false" : ""}.`);
    }
  }
}

/** A browser binding for env: `env: { BROWSER: browser({ egress, maxPages: 3 }) }`. */
export function browser(options: BrowserOptions): BrowserBinding {
  return new BrowserBinding(options);
}
