/** Writes schemas/plugin-manifest.schema.json from the zod schema: `node scripts/manifest-schema.ts`. */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { manifestJsonSchema } from "../src/manifests/json-schema.ts";

const file = fileURLToPath(new URL("../schemas/plugin-manifest.schema.json", import.meta.url));
writeFileSync(file, JSON.stringify(manifestJsonSchema(), null, 2) + "\n");
console.log(`wrote ${file}`);
