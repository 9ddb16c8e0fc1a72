import { MayflyError } from "../../errors.ts";

/** A request the egress gateway refused; `rule` says which check refused it. Nothing was sent. */
export class EgressDeniedError extends MayflyError {
  override name = "EgressDeniedError";
  readonly rule: string;
  constructor(rule: string, message: string) {
    super(`Egress denied (${rule}): ${message}`);
    this.rule = rule;
  }
}
