/**
 * `mayfly plugin diff|check`: plugin manifests from the command line. `diff` shows what an update adds,
 * removes, widens and narrows (what a person consents to); `check` validates a manifest file.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { diffManifests, formatManifestDiff, parseManifest, type PluginManifest } from "../manifests/index.ts";

function readManifest(path: string): PluginManifest {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  try {
    return parseManifest(json);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).name}: ${(e as Error).message}`);
  }
}

export function addPluginCommands(program: Command): void {
  // One line, no usage text: the command was right, the manifest was not.
  const fail = (e: unknown) => {
    process.stderr.write(`mayfly: ${(e as Error).message}\n`);
    process.exitCode = 2;
  };
  const cmd = program.command("plugin").description("plugin manifests: diff an update's permissions, check a manifest");

  cmd.command("diff").description("what an update changes in a plugin's permissions: added, removed, widened, narrowed")
    .argument("<old>", "the installed manifest (JSON)").argument("<new>", "the update's manifest (JSON)")
    .option("--json", "the structured diff as JSON")
    .option("--exit-code", "exit 1 when the update asks for more (needs approval), 0 otherwise")
    .action((oldFile: string, newFile: string, opts: { json?: boolean; exitCode?: boolean }) => {
      try {
        const diff = diffManifests(readManifest(oldFile), readManifest(newFile));
        process.stdout.write(opts.json ? JSON.stringify(diff, null, 2) + "\n" : formatManifestDiff(diff));
        if (opts.exitCode && diff.widens) process.exitCode = 1;
      } catch (e) {
        fail(e);
      }
    });

  cmd.command("check").description("validate a manifest against the schema (the same rules as schemas/plugin-manifest.schema.json and more)")
    .argument("<manifest>", "the manifest (JSON)")
    .action((file: string) => {
      try {
        const m = readManifest(file);
        process.stdout.write(`${m.name} ${m.version}: ok\n`);
      } catch (e) {
        fail(e);
      }
    });
}
