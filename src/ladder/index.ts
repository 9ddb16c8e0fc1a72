/**
 * The execution ladder as one grant: each rung (workspace, npm, browser, OS sandbox) exists for a
 * worker only when named here, and the rungs share what they should (the sandbox's /workspace is the
 * workspace bound as FS). A thin composition: each rung is the binding its own tier already makes.
 */
import { z } from "zod";
import { LadderGrantError } from "../errors.ts";
import { workspace, type Workspace } from "../bindings/workspace/index.ts";
import { browser, type BrowserBinding, type BrowserOptions } from "../bindings/browser/index.ts";
import { sandbox, type Sandbox, type SandboxOptions } from "../bindings/sandbox/index.ts";
import type { NpmOptions } from "../bundler/npm/index.ts";

export interface LadderOptions {
  /** Tier 0: a durable file system, bound as env.FS. */
  workspace?: { name: string; dataDir?: string; mode?: "read" | "read-write" };
  /** Tier 2: npm packages at load time, for `new WorkerLoader({ npm: ladder.loader.npm })`. */
  npm?: NpmOptions;
  /** Tier 3: headless Chromium, bound as env.BROWSER. */
  browser?: BrowserOptions;
  /** Tier 4: real programs under bubblewrap, bound as env.SH, on the workspace's files (so it needs `workspace`). */
  sandbox?: Omit<SandboxOptions, "workspace">;
}

// The rungs' own options are checked by their bindings; here only the shape of the grant.
const ladderSchema = z.strictObject({
  workspace: z.strictObject({ name: z.string().min(1), dataDir: z.string().min(1).optional(), mode: z.enum(["read", "read-write"]).optional() }).optional(),
  npm: z.record(z.string(), z.unknown()).optional(),
  browser: z.record(z.string(), z.unknown()).optional(),
  sandbox: z.record(z.string(), z.unknown()).optional(),
});

/** What a worker needs: only the granted bindings exist in `env`. */
export interface LadderEnv {
  FS?: Workspace;
  BROWSER?: BrowserBinding;
  SH?: Sandbox;
}

export class Ladder {
  readonly env: Readonly<LadderEnv>;
  /** Options for `new WorkerLoader(...)`: `npm` only when granted. */
  readonly loader: { npm?: NpmOptions };
  readonly workspace: Workspace | undefined;
  readonly browser: BrowserBinding | undefined;
  readonly sandbox: Sandbox | undefined;

  constructor(options: LadderOptions) {
    const parsed = ladderSchema.safeParse(options);
    if (!parsed.success) throw new TypeError(`ladder(): ${parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")}`);
    if (options.sandbox && !options.workspace) {
      throw new LadderGrantError("ladder(): the OS sandbox runs on the workspace's files; grant a workspace too (workspace: { name }).");
    }
    if (options.sandbox && "workspace" in options.sandbox) {
      throw new LadderGrantError("ladder(): the sandbox mounts the ladder's workspace; give it as `workspace`, not sandbox.workspace.");
    }
    this.workspace = options.workspace ? workspace(options.workspace) : undefined;
    this.browser = options.browser ? browser(options.browser) : undefined;
    this.sandbox = options.sandbox && this.workspace ? sandbox({ ...options.sandbox, workspace: this.workspace }) : undefined;
    const env: LadderEnv = {};
    if (this.workspace) env.FS = this.workspace;
    if (this.browser) env.BROWSER = this.browser;
    if (this.sandbox) env.SH = this.sandbox;
    this.env = Object.freeze(env);
    this.loader = options.npm ? { npm: options.npm } : {};
  }

  /** Closes what the rungs hold open: Chromium, the workspace's database. */
  async close(): Promise<void> {
    await this.browser?.close();
    this.workspace?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** `ladder({ workspace: { name: "proj" }, sandbox: {} })`: env `{ FS, SH }`, nothing else. */
export function ladder(options: LadderOptions): Ladder {
  return new Ladder(options);
}

export { ladderTools, type LadderToolsOptions } from "./tools.ts";
