import { z } from "zod";

/** One allowed origin: `https://api.github.com`, `https://*.example.com`, `http://localhost:8080`. */
export const ruleSchema = z.strictObject({
  origin: z.string().regex(/^https?:\/\/(\*\.)?[a-z0-9.-]+(:\d{1,5})?$/i, "origin must look like https://host, https://*.host or http://host:port"),
  /** Methods allowed to this origin (default: all but CONNECT/TRACE/TRACK). */
  methods: z.array(z.string()).optional(),
  /** Headers the gateway sets on every request to this origin (secrets: never seen by the worker). */
  headers: z.record(z.string(), z.string()).optional(),
  /** Allow this origin to resolve to private, loopback or link-local addresses (default false). */
  allowPrivateAddresses: z.boolean().optional(),
});

export const egressPolicySchema = z.strictObject({
  allow: z.array(ruleSchema),
  /** Largest request body sent, in bytes (default 10 MiB). */
  maxRequestBytes: z.number().int().positive().optional(),
  /** Largest response body received, in bytes (default 32 MiB). */
  maxResponseBytes: z.number().int().positive().optional(),
  /** Time for one request including redirects, in ms (default 30 s). */
  timeoutMs: z.number().int().positive().optional(),
  /** Redirects followed, each checked again (default 5). */
  maxRedirects: z.number().int().nonnegative().optional(),
  /** Requests in flight at once through this gateway (default 16). */
  maxConcurrent: z.number().int().positive().optional(),
  /** Name resolution, for tests or a private resolver (default: the system's, every address). */
  lookup: z.custom<Lookup>((v) => typeof v === "function").optional(),
  /** Told of every decision, each redirect hop included (an audit log): what was asked, and allowed or which check refused it. */
  onDecision: z.custom<(decision: EgressDecision) => void>((v) => typeof v === "function").optional(),
});

/** One decision of the gateway: a request (or redirect hop) allowed, or refused by `rule`. */
export interface EgressDecision {
  url: string;
  method: string;
  allowed: boolean;
  /** The check that refused it (as EgressDeniedError.rule). */
  rule?: string;
  reason?: string;
}

export type Lookup = (hostname: string) => Promise<{ address: string; family: 4 | 6 }[]>;
export type EgressRule = z.infer<typeof ruleSchema>;
export type EgressPolicy = z.input<typeof egressPolicySchema>;

export interface ResolvedPolicy {
  rules: CompiledRule[];
  maxRequestBytes: number;
  maxResponseBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  maxConcurrent: number;
  lookup: Lookup | undefined;
  onDecision: ((decision: EgressDecision) => void) | undefined;
}

export interface CompiledRule extends EgressRule {
  protocol: "http:" | "https:";
  /** Lower-case host; with `wildcard`, the suffix after "*.". */
  host: string;
  wildcard: boolean;
  port: string;
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

export function compilePolicy(input: EgressPolicy): ResolvedPolicy {
  const p = egressPolicySchema.parse(input);
  return {
    rules: p.allow.map(compileRule),
    maxRequestBytes: p.maxRequestBytes ?? 10 * 1024 * 1024,
    maxResponseBytes: p.maxResponseBytes ?? 32 * 1024 * 1024,
    timeoutMs: p.timeoutMs ?? 30_000,
    maxRedirects: p.maxRedirects ?? 5,
    maxConcurrent: p.maxConcurrent ?? 16,
    lookup: p.lookup,
    onDecision: p.onDecision,
  };
}

function compileRule(rule: EgressRule): CompiledRule {
  return { ...rule, ...parseOrigin(rule.origin) };
}

/** An origin pattern's parts: `https://*.example.com` → https:, wildcard, example.com, port 443. */
export function parseOrigin(origin: string): { protocol: "http:" | "https:"; wildcard: boolean; host: string; port: string } {
  const m = /^(https?:)\/\/(\*\.)?([^:/]+)(?::(\d+))?$/i.exec(origin);
  if (!m) throw new TypeError(`not an origin: ${origin}`);
  const protocol = m[1]!.toLowerCase() as "http:" | "https:";
  return { protocol, wildcard: !!m[2], host: m[3]!.toLowerCase(), port: m[4] ?? DEFAULT_PORTS[protocol]! };
}

/** The rule that allows `url` (already WHATWG-parsed), or undefined. A port is the scheme's default unless the rule names another. */
export function matchRule(rules: CompiledRule[], url: URL): CompiledRule | undefined {
  const port = url.port || DEFAULT_PORTS[url.protocol];
  const host = url.hostname.toLowerCase();
  return rules.find((r) =>
    r.protocol === url.protocol && r.port === port &&
    (r.wildcard ? host.endsWith(`.${r.host}`) : host === r.host));
}

/** `api.example.com` → `https://api.example.com`; an origin given with its scheme stays as it is. */
export function originOf(hostOrOrigin: string): string {
  return /^https?:\/\//.test(hostOrOrigin) ? hostOrOrigin.replace(/\/+$/, "") : `https://${hostOrOrigin}`;
}

/** Rules for hosts named on a command line or in a config (`--allow-net`, `allowNet`), after any full rules. */
export function allowNetRules(hosts: readonly string[] = [], extra: Partial<EgressRule> = {}): EgressRule[] {
  return hosts.map((h) => ({ ...extra, origin: originOf(h) }));
}
