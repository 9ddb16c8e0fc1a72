import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CodeSyntaxError, normalizeCode } from "../../src/index.ts";

/** Evaluates the normalized function on the host (these are trusted test strings) and awaits it. */
async function run(code: string): Promise<unknown> {
  return (0, eval)(`(${normalizeCode(code)})`)();
}

describe("Code Mode: normalizeCode", () => {
  test("each form a model writes becomes one async arrow function with the intended result", async () => {
    assert.equal(await run("async () => 1 + 1"), 2);
    assert.equal(await run("async () => { return 'block' }"), "block");
    assert.equal(await run("return await Promise.resolve(3)"), 3);
    assert.equal(await run("const a = 2;\nconst b = 5;\na * b"), 10);
    assert.equal(await run("function main() { return 'declared' }"), "declared");
    assert.equal(await run("export default async () => 'exported'"), "exported");
    assert.deepEqual(await run("export default { answer: 42 };"), { answer: 42 });
    assert.equal(await run("const x = 1; if (x) { x }"), undefined, "a trailing block is a statement, not a value");
    assert.equal(await run(""), undefined);
  });

  test("markdown fences and TypeScript are stripped", async () => {
    assert.equal(await run("Here is the code:\n```typescript\ninterface P { n: number }\nconst p: P = { n: 4 };\np.n as number\n```\nDone."), 4);
    assert.equal(await run("```\n[1, 2].length\n```"), 2);
  });

  test("code that does not parse is a CodeSyntaxError with the line as written", () => {
    assert.throws(() => normalizeCode("const a = 1;\nconst = 2;"), (e: Error) => e instanceof CodeSyntaxError && /^line 2:/.test(e.message));
    // Code that closes the wrapper to escape it does not parse either.
    assert.throws(() => normalizeCode("}); globalThis.x = 1; (async () => {"), CodeSyntaxError);
  });
});
