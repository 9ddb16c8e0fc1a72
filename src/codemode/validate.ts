/**
 * Host-side input validation against JSON Schema. ajv: the maintained JSON Schema validator; its
 * compiled validators are cached per schema object, and `strict: false` tolerates OpenAPI's
 * extra keywords (nullable, example, x-*).
 */
import { createRequire } from "node:module";
import type { Ajv } from "ajv";
import { ToolInputError } from "./errors.ts";
import type { JsonSchema } from "./tool.ts";

let ajv: Ajv | undefined;
const compiled = new WeakMap<JsonSchema, ReturnType<Ajv["compile"]>>();

/** A validator for `schema`; it throws ToolInputError naming `toolName` and every mismatch. */
export function jsonSchemaValidator(schema: JsonSchema, toolName: string): (input: unknown) => unknown {
  return (input) => {
    let check = compiled.get(schema);
    if (!check) {
      // Required on first use (ajv is CommonJS, and validation is synchronous): importing mayfly stays light.
      ajv ??= new (createRequire(import.meta.url)("ajv") as typeof import("ajv")).Ajv({ strict: false, allErrors: true, validateFormats: false });
      check = ajv.compile(schema);
      compiled.set(schema, check);
    }
    if (check(input)) return input;
    const issues = (check.errors ?? []).map((e) => `${e.instancePath || "input"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`);
    throw new ToolInputError(`Invalid input for ${toolName}: ${issues.join("; ")}`);
  };
}
