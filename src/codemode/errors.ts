/** Code Mode's errors. Each reaches guest code by `name` and message, so a program can catch and branch on it. */
import { MayflyError } from "../errors.ts";

/** A tool was called with arguments that do not match its input schema; nothing was called. */
export class ToolInputError extends MayflyError {
  override name = "ToolInputError";
}

/** The code called a tool that does not exist in its namespace. */
export class ToolNotFoundError extends MayflyError {
  override name = "ToolNotFoundError";
}

/** An OpenAPI operation answered with a non-2xx status. `status` and the start of the body are kept. */
export class ToolHttpError extends MayflyError {
  override name = "ToolHttpError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A tool source (function definitions, OpenAPI document, MCP server) is malformed or unreachable. */
export class ToolSourceError extends MayflyError {
  override name = "ToolSourceError";
}

/** A remote tool (an MCP server's) reported a failure. */
export class ToolCallError extends MayflyError {
  override name = "ToolCallError";
}

/** The code given to execute() or search() does not parse (as TypeScript or JavaScript). */
export class CodeSyntaxError extends MayflyError {
  override name = "CodeSyntaxError";
}
