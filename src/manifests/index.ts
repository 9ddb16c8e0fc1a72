/** Plugin manifests: the schema, the grants they are checked against, their WorkerCode, and update diffs. */
export {
  manifestSchema, parseManifest, hookSubscriptions, type PluginManifest, type PluginManifestInput, type HookSubscription, type WorkspaceAccess,
} from "./schema.ts";
export { grantsSchema, checkGrants, type PluginGrants } from "./grants.ts";
export { manifestToWorkerCode, pluginStoreName, type PluginCode, type CapabilityUse, type ManifestContext } from "./worker-code.ts";
export { diffManifests, formatManifestDiff, type ManifestDiff, type ManifestChange, type ChangeKind } from "./diff.ts";
export { manifestJsonSchema } from "./json-schema.ts";
