export { egress, EgressGateway } from "./gateway.ts";
export { EgressDeniedError } from "./errors.ts";
export type { EgressPolicy, EgressRule, EgressDecision, Lookup } from "./policy.ts";
export { originOf, allowNetRules } from "./policy.ts";
