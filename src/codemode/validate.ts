/**
 * Host-side input validation against JSON Schema. ajv: the maintained JSON Schema validator; its
 * compiled validators are cached per schema object, and `strict: false` tolerates OpenAPI's
 * extra keywords (nullable, example, x-*).
 */
import { Ajv } from "ajv";
import { ToolInputError } from "./errors.ts";
import type { JsonSchema } from "./tool.ts";

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new WeakMap<JsonSchema, ReturnType<Ajv["compile"]>>();

/** A validator for `schema`; it throws ToolInputError naming `toolName` and every mismatch. */
export function jsonSchemaValidator(schema: JsonSchema, toolName: string): (input: unknown) => unknown {
  return (input) => {
    let check = compiled.get(schema);
    if (!check) {
      check = ajv.compile(schema);
      compiled.set(schema, check);
    }
    if (check(input)) return input;
    const issues = (check.errors ?? []).map((e) => `${e.instancePath || "input"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`);
    throw new ToolInputError(`Invalid input for ${toolName}: ${issues.join("; ")}`);
  };
}
