/**
 * A small OpenAPI document and a mock server that implements it (node:http), for Code Mode tests.
 * The server demands the bearer token and records what each request carried.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export const SECRET = "Bearer tok-7f3a9c-SECRET";

export const tasksSpec = {
  openapi: "3.0.3",
  info: { title: "Tasks", version: "1.0.0" },
  servers: [{ url: "https://tasks.example/api" }],
  paths: {
    "/projects/{projectId}/tasks": {
      parameters: [{ name: "projectId", in: "path", required: true, schema: { type: "string" }, description: "The project's slug" }],
      get: {
        operationId: "tasks/list",
        summary: "List the tasks of a project",
        tags: ["tasks"],
        parameters: [
          { name: "status", in: "query", schema: { type: "string", enum: ["open", "done"] } },
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1 } },
        ],
        responses: { "200": { description: "ok", content: { "application/json": { schema: { type: "array", items: { $ref: "#/components/schemas/Task" } } } } } },
      },
      post: {
        operationId: "tasks/create",
        summary: "Create a task",
        tags: ["tasks"],
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/NewTask" } } } },
        responses: { "201": { description: "created", content: { "application/json": { schema: { $ref: "#/components/schemas/Task" } } } } },
      },
    },
    "/projects/{projectId}/tasks/{taskId}": {
      get: {
        operationId: "tasks/get",
        summary: "Get one task",
        tags: ["tasks"],
        parameters: [
          { name: "projectId", in: "path", required: true, schema: { type: "string" } },
          { name: "taskId", in: "path", required: true, schema: { type: "integer" } },
        ],
        responses: { "200": { description: "ok", content: { "application/json": { schema: { $ref: "#/components/schemas/Task" } } } }, "404": { description: "missing" } },
      },
    },
    "/users/me": {
      get: {
        operationId: "users/get-authenticated",
        summary: "Get the authenticated user",
        description: "Returns the account the credentials belong to.",
        tags: ["users"],
        responses: { "200": { description: "ok", content: { "application/json": { schema: { type: "object", properties: { login: { type: "string" } }, required: ["login"] } } } } },
      },
    },
  },
  components: {
    schemas: {
      NewTask: {
        type: "object",
        required: ["title"],
        properties: { title: { type: "string", description: "What to do" }, priority: { type: "integer", minimum: 1, maximum: 5 } },
        additionalProperties: false,
      },
      Task: {
        title: "Task",
        type: "object",
        required: ["id", "title", "status"],
        properties: {
          id: { type: "integer" },
          title: { type: "string" },
          status: { type: "string", enum: ["open", "done"] },
          priority: { type: "integer", nullable: true },
        },
      },
    },
  },
};

export interface MockApi {
  server: Server;
  /** `http://127.0.0.1:<port>/api` */
  baseUrl: string;
  requests: { method: string; url: string; authorization?: string; body: string }[];
  close(): Promise<void>;
}

/** The Tasks API in memory: project "mayfly" starts with two tasks. */
export async function startMockApi(): Promise<MockApi> {
  const tasks = [
    { id: 1, title: "write tests", status: "done", priority: 2 },
    { id: 2, title: "ship code mode", status: "open", priority: null },
  ];
  const requests: MockApi["requests"] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
      const json = (status: number, v: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(v));
      if (req.headers.authorization !== SECRET) return json(401, { message: "bad credentials" });
      const url = new URL(req.url!, "http://x");
      let m: RegExpExecArray | null;
      if (url.pathname === "/api/users/me") return json(200, { login: "octo" });
      if ((m = /^\/api\/projects\/([^/]+)\/tasks$/.exec(url.pathname))) {
        if (m[1] !== "mayfly") return json(404, { message: "no such project" });
        if (req.method === "POST") {
          const t = { id: tasks.length + 1, status: "open", priority: null, ...JSON.parse(body) };
          tasks.push(t);
          return json(201, t);
        }
        const status = url.searchParams.get("status");
        const limit = Number(url.searchParams.get("limit") ?? 100);
        return json(200, tasks.filter((t) => !status || t.status === status).slice(0, limit));
      }
      if ((m = /^\/api\/projects\/mayfly\/tasks\/(\d+)$/.exec(url.pathname))) {
        const t = tasks.find((x) => x.id === Number(m![1]));
        return t ? json(200, t) : json(404, { message: "no such task" });
      }
      json(404, { message: "not found" });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    baseUrl: `http://127.0.0.1:${port}/api`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
