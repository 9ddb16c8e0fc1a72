/**
 * The manifest's JSON Schema, generated from the zod schema (zod 4's toJSONSchema), so editors and
 * other languages check manifests by the same rules. Published as schemas/plugin-manifest.schema.json
 * by scripts/manifest-schema.ts; a test keeps the file equal to this.
 */
import { z } from "zod";
import { manifestSchema } from "./schema.ts";

export function manifestJsonSchema(): Record<string, unknown> {
  // "input": what a person writes (defaults and transforms not yet applied). Refinements that JSON
  // Schema cannot say (semver ordering, secrets' origins being in network) are checked by parseManifest.
  const schema = z.toJSONSchema(manifestSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { title: "mayfly plugin manifest", ...schema };
}
