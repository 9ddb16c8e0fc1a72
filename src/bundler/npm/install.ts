import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pacote from "pacote";
import { lockedEntries, nameOfPath, type Lockfile } from "./lockfile.ts";
import { packageError } from "./errors.ts";

/**
 * Installs exactly the lockfile's packages into `<cacheDir>/installs/<hash>/node_modules`, each tarball
 * checked against its integrity by pacote before a byte is written. pacote's extract unpacks files only:
 * no lifecycle script (preinstall, install, postinstall) ever runs. An install is built in a temporary
 * directory and renamed into place, so a crash never leaves a half-installed tree that looks complete.
 */
export async function installLockfile(lock: Lockfile, cacheDir: string, fetchOpts: pacote.Options, registries: readonly string[]): Promise<string> {
  const entries = lockedEntries(lock);
  const hash = createHash("sha256").update(JSON.stringify(entries)).digest("hex").slice(0, 32);
  const dir = join(cacheDir, "installs", hash);
  if (existsSync(join(dir, ".complete"))) return dir;
  const tmp = join(cacheDir, "installs", `.tmp-${hash}-${randomUUID()}`);
  await mkdir(tmp, { recursive: true });
  try {
    // Parents before children, so a nested node_modules lands inside its extracted parent.
    entries.sort(([a], [b]) => a.split("/").length - b.split("/").length);
    for (const [path, pkg] of entries) {
      const spec = `${nameOfPath(path)}@${pkg.version}`;
      // A lockfile may come from the guest's author: its `resolved` URL is used only when it points at a
      // configured registry, so a lockfile cannot make the host fetch from anywhere else.
      const resolved = registries.some((r) => pkg.resolved.startsWith(r)) ? pkg.resolved : undefined;
      try {
        await pacote.extract(spec, join(tmp, path), { ...fetchOpts, integrity: pkg.integrity, ...(resolved ? { resolved } : {}) });
      } catch (e) {
        throw packageError(e, spec);
      }
    }
    await writeFile(join(tmp, ".complete"), "");
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another load installed the same lockfile meanwhile: theirs is as good as ours.
      if (!existsSync(join(dir, ".complete"))) throw e;
    });
    return dir;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
