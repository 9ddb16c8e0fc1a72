import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CodeMode, openApiTools, ToolSourceError } from "../../src/index.ts";
import { useLoader } from "../helpers.ts";
import { SECRET, startMockApi, tasksSpec, type MockApi } from "./fixtures.ts";

const ctx = useLoader({ executors: 1 });
let api: MockApi;
let cm: CodeMode;

before(async () => {
  api = await startMockApi();
  const tools = await openApiTools({ namespace: "tasks", spec: tasksSpec, baseUrl: api.baseUrl, headers: { authorization: SECRET }, allowPrivateAddresses: true });
  cm = new CodeMode({ loader: ctx.loader, tools });
});
after(() => api.close());

describe("Code Mode: OpenAPI source", () => {
  test("operations become typed functions: declarations with JSDoc, input and output types, $refs resolved", async () => {
    assert.deepEqual(cm.tools.map((t) => t.name), ["tasksList", "tasksCreate", "tasksGet", "usersGetAuthenticated"]);
    const types = await cm.types();
    assert.match(types, /declare const tasks: \{/);
    assert.match(types, /\/\*\*\n {3}\* List the tasks of a project\n {3}\* GET \/projects\/\{projectId\}\/tasks\n {3}\*\/\n {2}tasksList\(input: TasksTasksListInput\): Promise<TasksTasksListOutput>;/);
    assert.match(types, /usersGetAuthenticated\(input\?: TasksUsersGetAuthenticatedInput\): Promise<TasksUsersGetAuthenticatedOutput>;/);
    // The shared Task schema is declared once, by its title, and nullable became `| null`.
    assert.equal(types.match(/^interface Task \{/gm)?.length, 1);
    assert.match(types, /priority\?: \(number \| null\)/);
    assert.match(types, /status\?: \("open" \| "done"\)/);
    assert.match(types, /\* What to do\n \*\/\ntitle: string/);
  });

  test("execute: code calls the API through the gateway, which injects the credential", async () => {
    const before = api.requests.length;
    const out = await cm.execute(`
      const created = await tasks.tasksCreate({ projectId: "mayfly", body: { title: "review", priority: 3 } });
      const open = await tasks.tasksList({ projectId: "mayfly", status: "open" });
      console.log("created", created.id);
      return { created: created.id, open: open.map((t) => t.title) };`);
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    assert.deepEqual(out.result, { created: 3, open: ["ship code mode", "review"] });
    assert.deepEqual(out.logs, ["created 3"]);
    assert.equal(out.metrics.toolCalls, 2);
    const sent = api.requests.slice(before);
    assert.deepEqual(sent.map((r) => `${r.method} ${r.url}`), ["POST /api/projects/mayfly/tasks", "GET /api/projects/mayfly/tasks?status=open"]);
    assert.deepEqual(JSON.parse(sent[0]!.body), { title: "review", priority: 3 });
    assert.ok(sent.every((r) => r.authorization === SECRET));
  });

  test("the secret is never visible to the code: not in globals, env, tool results or errors", async () => {
    const out = await cm.execute(`
      const seen = [];
      seen.push(JSON.stringify(Object.getOwnPropertyNames(globalThis).map((k) => { try { return String(globalThis[k]) } catch { return "" } })));
      seen.push(JSON.stringify(await tasks.usersGetAuthenticated()));
      try { await tasks.tasksGet({ projectId: "mayfly", taskId: 999 }) } catch (e) { seen.push(e.name + e.message + e.stack) }
      try { seen.push(String(typeof env), String(typeof process), String(typeof require)) } catch (e) { seen.push(e.message) }
      let direct;
      try { direct = await fetch(${JSON.stringify(api.baseUrl + "/users/me")}) } catch (e) { direct = e.name }
      seen.push(String(direct));
      return seen.join("\\n");`);
    assert.equal(out.error, undefined, JSON.stringify(out.error));
    const text = out.result as string;
    assert.match(text, /"login":"octo"/, "the authenticated call worked");
    assert.ok(!text.includes("tok-7f3a9c"), "the token never reached the isolate");
    assert.match(text, /undefined\nundefined\nundefined/);
    assert.ok(!text.includes("[object Response]"), "the code cannot fetch on its own");
  });

  test("an HTTP error reaches the code as a catchable ToolHttpError with the status", async () => {
    const out = await cm.execute(`try { await tasks.tasksGet({ projectId: "mayfly", taskId: 42 }); return "no error" } catch (e) { return { name: e.name, message: e.message } }`);
    assert.equal(out.result && (out.result as { name: string }).name, "ToolHttpError");
    assert.match((out.result as { message: string }).message, /GET \/projects\/\{projectId\}\/tasks\/\{taskId\} answered 404/);
  });

  test("inputs are validated on the host against the operation's schema before any request", async () => {
    const before = api.requests.length;
    const out = await cm.execute(`await tasks.tasksCreate({ projectId: "mayfly", body: { priority: 9, owner: "x" } })`);
    assert.equal(out.error?.name, "ToolInputError");
    assert.match(out.error!.message, /Invalid input for tasks\.tasksCreate: .*\/body must have required property 'title'/);
    assert.match(out.error!.message, /\/body\/priority must be <= 5/);
    assert.match(out.error!.message, /must NOT have additional properties \(owner\)/);
    assert.equal(api.requests.length, before, "nothing was sent");
  });

  test("a document that is not OpenAPI 3, or has no usable base URL, is refused with ToolSourceError", async () => {
    await assert.rejects(openApiTools({ namespace: "x", spec: { swagger: "2.0", paths: {} } }), ToolSourceError);
    await assert.rejects(openApiTools({ namespace: "x", spec: { openapi: "3.0.0", paths: {} } }), /base URL is required/);
    await assert.rejects(openApiTools({ namespace: "not valid", spec: tasksSpec }), /not a usable JavaScript identifier/);
  });
});
