/** The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. */
export const openapi = {
  openapi: "3.1.0",
  info: { title: "mayfly", version: "0.1.0", description: "Run untrusted JavaScript and TypeScript in fresh V8 isolates, Cloudflare Workers style." },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "Required when the server has tokens; each token carries permissions (run, metrics, workers, worker:<name>)." } },
    schemas: {
      Error: {
        type: "object",
        properties: {
          error: {
            type: "object", required: ["name", "message"],
            properties: {
              name: { type: "string" }, message: { type: "string" },
              limit: { type: "string", description: "LimitAboveCeilingError: the limit asked for (cpuMs, wallMs, ...)" },
              bound: { type: "string", description: "the server's bound refused by (maxCpuMs, maxRequestBodyBytes, maxInFlight, ...)" },
              requested: { type: "number" }, ceiling: { type: "number", description: "the bound's value for this caller" },
            },
          },
        },
      },
      RunRequest: {
        type: "object",
        required: ["worker"],
        properties: {
          worker: {
            type: "object",
            required: ["mainModule", "modules"],
            properties: {
              mainModule: { type: "string", example: "main.ts" },
              modules: { type: "object", additionalProperties: { oneOf: [{ type: "string" }, { type: "object" }] }, description: "name → source (a string for .js/.mjs/.ts) or { js | cjs | text | json }" },
              compatibilityDate: { type: "string", example: "2025-06-01" },
              compatibilityFlags: { type: "array", items: { type: "string" } },
              env: { type: "object", description: "plain data, by structured clone" },
              limits: { type: "object", properties: { cpuMs: { type: "number" }, memoryMb: { type: "number" }, wallMs: { type: "number" }, subRequests: { type: "integer" }, outputBytes: { type: "integer" }, logBytes: { type: "integer" } } },
              allowNet: { type: "array", items: { type: "string" }, description: "hosts or origins the worker may fetch; nothing without" },
              egress: {
                type: "object", description: "full egress rules: origins, methods, headers the gateway adds (never seen by the worker)",
                properties: { allow: { type: "array", items: { type: "object", required: ["origin"], properties: { origin: { type: "string" }, methods: { type: "array", items: { type: "string" } }, headers: { type: "object", additionalProperties: { type: "string" } }, allowPrivateAddresses: { type: "boolean" } } } } },
              },
              packageJson: { type: "object", description: "npm dependencies ({ dependencies: { name: range } }), when the server grants npm; resolved, verified and bundled on the server", properties: { dependencies: { type: "object", additionalProperties: { type: "string" } } } },
              lockfile: { description: "a package-lock.json (object or text) to install exactly; the response's npm.lockfile pins a run" },
              typecheck: { type: "boolean", description: "type-check the TypeScript modules first (TypeCheckError with file:line:col, 422)" },
            },
          },
          request: { type: "object", properties: { method: { type: "string" }, url: { type: "string" }, headers: { type: "object", additionalProperties: { type: "string" } }, body: { type: "string" } } },
        },
      },
      RunResult: {
        type: "object",
        properties: {
          response: { type: "object", properties: { status: { type: "integer" }, headers: { type: "object" }, body: { type: "string" } } },
          npm: { type: "object", description: "what was bundled from npm (with packageJson)", properties: { packages: { type: "array", items: { type: "object", properties: { name: { type: "string" }, version: { type: "string" }, bytes: { type: "integer" } } } }, bytes: { type: "integer" }, cached: { type: "boolean" }, lockfile: { type: "object" } } },
          outcome: { type: "string", enum: ["ok", "exception", "startupError", "exceededCpu", "exceededWall", "exceededMemory", "exceededOutput", "executorCrashed", "disposed", "internalError"] },
          logs: { type: "array", items: { type: "object", properties: { level: { type: "string" }, message: { type: "string" } } } },
          cpuMs: { type: "number" }, wallMs: { type: "number" }, memoryBytes: { type: "integer", description: "the isolate's heap when the run ended" }, subRequests: { type: "integer" }, elapsedMs: { type: "number" },
        },
      },
    },
  },
  paths: {
    "/v1/run": {
      post: {
        summary: "Run a worker once in a fresh isolate and send it one request",
        security: [{ bearer: [] }],
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/RunRequest" } } } },
        responses: {
          200: { description: "The worker's response, logs and cost", content: { "application/json": { schema: { $ref: "#/components/schemas/RunResult" } } } },
          400: { description: "Invalid request or worker code, or a limit above the server's ceiling (LimitAboveCeilingError naming limit, bound and ceiling)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          401: { description: "Missing or unknown token (or no tokens while listening beyond loopback)" },
          403: { description: "The token may not run workers" },
          413: { description: "Request body above maxRequestBodyBytes (PayloadTooLarge)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          429: { description: "Too many runs in flight, on the server or for this token (TooManyRunsError); see Retry-After", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          422: { description: "The run failed (guest error, limit breached)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
        },
      },
    },
    "/w/{name}/{path}": {
      parameters: [
        { name: "name", in: "path", required: true, schema: { type: "string" }, description: "a worker named in the config file" },
        { name: "path", in: "path", required: true, schema: { type: "string" }, description: "passed to the worker as its path (the worker is mounted at /)" },
      ],
      ...Object.fromEntries(["get", "post", "put", "patch", "delete"].map((m) => [m, {
        summary: "Send this request to a named worker (a fresh isolate per request unless the config makes it warm)",
        security: [{ bearer: [] }],
        responses: {
          default: { description: "The worker's own response, streamed" },
          401: { description: "Missing or unknown token" },
          403: { description: "The token may not use this worker (needs workers or worker:<name>)" },
          404: { description: "No worker by that name", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          413: { description: "Request body above maxWorkerBodyBytes (PayloadTooLarge)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          429: { description: "Too many runs in flight, on the server or for this token (TooManyRunsError); see Retry-After", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          500: { description: "The worker threw (WorkerException naming its error class; the message is in the server log)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          503: { description: "The worker exceeded a limit", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
        },
      }])),
    },
    "/v1/workers": {
      get: {
        summary: "The named workers served (name, path, warm, crons, limits)",
        security: [{ bearer: [] }],
        responses: { 200: { description: "{ workers: [...] }" }, 401: { description: "Missing or unknown token" }, 403: { description: "The token lacks the workers permission" } },
      },
    },
    "/v1/scheduled/{name}": {
      post: {
        summary: "Run a named worker's scheduled() handler now, as its Cron Trigger would",
        security: [{ bearer: [] }],
        parameters: [
          { name: "name", in: "path", required: true, schema: { type: "string" } },
          { name: "cron", in: "query", required: false, schema: { type: "string" }, description: "the cron string the handler sees (default: the worker's first cron)" },
        ],
        responses: {
          200: { description: "{ outcome: \"ok\" }" },
          404: { description: "No worker by that name" },
          429: { description: "Too many runs in flight (TooManyRunsError); see Retry-After" },
          422: { description: "{ outcome: \"exception\", error: { name, message } }" },
        },
      },
    },
    "/healthz": { get: { summary: "Liveness and executor count", responses: { 200: { description: "{ ok, executors }" } } } },
    "/metrics": { get: { summary: "Prometheus metrics", security: [{ bearer: [] }], responses: { 200: { description: "text/plain; version=0.0.4" } } } },
    "/openapi.json": { get: { summary: "This document", responses: { 200: { description: "OpenAPI 3.1" } } } },
  },
} as const;
