import { PackageError, PackageIntegrityError, PackageResolveError } from "../../errors.ts";

/**
 * A pacote/npm-registry-fetch failure as a typed error naming the package: EINTEGRITY is a tampered
 * or corrupted tarball, the rest (E404, ETARGET, a refused connection) a resolution failure.
 */
export function packageError(e: unknown, spec: string, via?: string): PackageError {
  if (e instanceof PackageError) return e;
  const err = e as { code?: string; message?: string };
  const needed = via ? ` (needed by ${via})` : "";
  if (err.code === "EINTEGRITY") {
    return new PackageIntegrityError(`The tarball of ${spec}${needed} does not match its integrity; it was not installed. ${err.message ?? ""}`.trim(), spec);
  }
  if (err.code === "E404") return new PackageResolveError(`${spec}${needed} is not in the registry (404).`, spec);
  if (err.code === "ETARGET") return new PackageResolveError(`No version of ${spec}${needed} is in the registry.`, spec);
  return new PackageResolveError(`${spec}${needed} could not be fetched: ${err.code ? `${err.code} ` : ""}${err.message ?? String(e)}`, spec);
}
