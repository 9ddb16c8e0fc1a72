/** The plugin host's public interface. */
export {
  PluginHost, hookDefinitionSchema, type PluginHostOptions, type PluginInfo, type PluginSource, type UpdateResult, type HookDefinition,
  type HookResult, type HookInvocation,
} from "./host.ts";
export type { AuditEntry, AuditQuery } from "./store.ts";
