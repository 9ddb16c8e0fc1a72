/** Code Mode's public interface: everything a user needs, re-exported from mayfly's index. */
export { CodeMode, type CodeModeOptions, type ToolDescriptions } from "./codemode.ts";
export { execute, DEFAULT_EXECUTE_LIMITS, type ExecuteOptions, type ExecuteResult } from "./execute.ts";
export { ToolIndex, type SearchMatch, type SearchResult } from "./search.ts";
export { normalizeCode } from "./normalize-code.ts";
export { generateTypes } from "./typegen.ts";
export { toIdentifier, type Tool, type JsonSchema } from "./tool.ts";
export { functionTools, type FunctionToolDefinition } from "./sources/functions.ts";
export { openApiTools, type OpenApiSourceOptions } from "./sources/openapi.ts";
export {
  ToolInputError, ToolNotFoundError, ToolHttpError, ToolSourceError, ToolCallError, CodeSyntaxError,
  ToolRejectedError, ReplayDivergenceError, JournalValueTooLargeError, RunNotFoundError, RunStateError, RunInterruptedError,
} from "./errors.ts";
export type { JournalOptions, JournalEntry, RunRecord, RunSummary, RunStatus } from "./durable/journal.ts";
export { mcpTools, type McpSourceOptions, type McpToolSource } from "./sources/mcp.ts";
export { createMcpServer, codeModeDefinitions, perOperationDefinitions, serveMcpStdio, serveMcpHttp, type McpServerOptions, type McpHttpOptions } from "./mcp-server.ts";
export { aiSdkTools } from "./adapters/ai-sdk.ts";
export { MayflyExecutor, type MayflyExecutorOptions, type CodemodeProvider, type CodemodeExecuteResult } from "./adapters/cloudflare-codemode.ts";
export { installCloudflareWorkersShim } from "./adapters/cloudflare-workers-shim.ts";
