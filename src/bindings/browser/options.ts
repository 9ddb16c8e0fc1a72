import { z } from "zod";
import { EgressGateway } from "../egress/gateway.ts";
import type { EgressPolicy } from "../egress/policy.ts";

const positive = z.number().int().positive();

export const browserOptionsSchema = z.strictObject({
  /** Every request of every page goes through this gateway (or one built from this policy), as a worker's fetch() does. */
  egress: z.union([z.instanceof(EgressGateway), z.custom<EgressPolicy>((v) => typeof v === "object" && v !== null && Array.isArray((v as EgressPolicy).allow))]),
  /** Pages a run may open (newPage() beyond it is a BrowserLimitError). */
  maxPages: positive,
  /** Chromium's binary (default Debian's /usr/bin/chromium); never downloaded. */
  executablePath: z.string().min(1).optional(),
  /** Time for one navigation (goto), in ms (default 30 s). */
  navigationTimeoutMs: positive.optional(),
  /** Time for one action (click, type, waitForSelector, evaluate...), in ms (default 10 s). */
  actionTimeoutMs: positive.optional(),
  /** Response bytes all pages of a run may receive together (default 50 MiB); past it, requests are refused. */
  maxBytes: positive.optional(),
  /** Offer page.cdp(method, params), the raw Chrome DevTools Protocol (default false: only for code you trust). */
  cdp: z.boolean().optional(),
  /** Chromium's own OS sandbox (default true; a host running as root must turn it off, Chromium refuses otherwise). */
  sandbox: z.boolean().optional(),
  /** The pages' viewport (default 1280×720). */
  viewport: z.strictObject({ width: positive.max(8192), height: positive.max(8192) }).optional(),
});

export type BrowserOptions = z.input<typeof browserOptionsSchema>;

export interface ResolvedBrowserOptions {
  gateway: EgressGateway;
  maxPages: number;
  executablePath: string;
  navigationTimeoutMs: number;
  actionTimeoutMs: number;
  maxBytes: number;
  cdp: boolean;
  sandbox: boolean;
  viewport: { width: number; height: number };
}

export function resolveBrowserOptions(input: BrowserOptions): ResolvedBrowserOptions {
  const o = browserOptionsSchema.parse(input);
  return {
    gateway: o.egress instanceof EgressGateway ? o.egress : new EgressGateway(o.egress),
    maxPages: o.maxPages,
    executablePath: o.executablePath ?? "/usr/bin/chromium",
    navigationTimeoutMs: o.navigationTimeoutMs ?? 30_000,
    actionTimeoutMs: o.actionTimeoutMs ?? 10_000,
    maxBytes: o.maxBytes ?? 50 * 1024 * 1024,
    cdp: o.cdp ?? false,
    sandbox: o.sandbox ?? true,
    viewport: o.viewport ?? { width: 1280, height: 720 },
  };
}
