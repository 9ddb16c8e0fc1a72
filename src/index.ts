/** mayfly's public interface. Everything a user imports comes from here. */
export { WorkerLoader, type WorkerLoaderOptions } from "./loader/worker-loader.ts";
export { WorkerStub, type Fetcher, type RpcMethods, type EntrypointOptions } from "./loader/worker-stub.ts";
export type { WorkerCode, ModuleSource } from "./loader/worker-code.ts";
export type { RunReport, RunOutcome } from "./loader/run-report.ts";
export { DEFAULT_LIMITS, type Limits } from "./engine/limits.ts";
export { rpc, RpcBinding, type RpcOptions } from "./bindings/rpc/index.ts";
export { postgresBackend, PostgresBackend, type PostgresBackendOptions } from "./bindings/storage/postgres.ts";
export { kv, KvNamespace, type KvOptions } from "./bindings/kv/index.ts";
export { sql, SqlDatabase, type SqlOptions } from "./bindings/sql/index.ts";
// Replicated SQLite (issue 15): a SQLite database whose truth is a log in PostgreSQL (D1 with `backend`, actors).
export { ReplicatedSqlite, materialize, type ReplicatedSqliteOptions } from "./bindings/storage/replicated-sqlite.ts";
export { blobBucket, BlobBucket, type BlobBucketOptions, type R2Object } from "./bindings/blob/index.ts";
export { s3Backend, S3Backend, type S3BackendOptions } from "./bindings/blob/s3.ts";
export type { BlobBackend, BlobStore } from "./bindings/blob/store.ts";
export { workspace, Workspace, type WorkspaceOptions, type WorkspaceData, type WorkspaceStat, type WorkspaceChange, type CommitOp } from "./bindings/workspace/index.ts";
export { sandbox, Sandbox, sandboxAvailable, type SandboxOptions, type SandboxLimits, type ExecOptions, type ExecResult, type EgressRefusal, type SyncReport } from "./bindings/sandbox/index.ts";
export type { Tail, TailEvent } from "./bindings/tails/index.ts";
export { browser, BrowserBinding, type BrowserOptions } from "./bindings/browser/index.ts";
export { egress, EgressGateway, EgressDeniedError, type EgressPolicy, type EgressRule, type EgressDecision, type Lookup } from "./bindings/egress/index.ts";
export {
  MayflyError, InvalidWorkerCodeError, DataCloneError, LimitError, CpuTimeLimitError, WallTimeLimitError,
  MemoryLimitError, OutputLimitError, ExecutorCrashedError, WorkerDisposedError, QuotaExceededError, BackendUnavailableError, ConfigError, ReplicaConflictError, ReplicaOutOfStepError,
  NpmNotEnabledError, PackageError, PackageNotAllowedError, PackageIntegrityError, PackageResolveError,
  NodeBuiltinImportError, PackageBundleError, TypeCheckError, type TypeCheckDiagnostic,
  WorkspaceError, WorkspaceConflictError, ActorAbortedError, BrowserUnavailableError, BrowserLimitError,
  SandboxUnavailableError, SandboxLimitError, LadderGrantError, NotOwnerError, ActorUnreachableError,
} from "./errors.ts";
export { FencedError, type Fence } from "./bindings/storage/fencing.ts";
// The execution ladder (issue 14): workspace, npm, browser and OS sandbox granted in one options object.
export { ladder, Ladder, ladderTools, type LadderOptions, type LadderEnv, type LadderToolsOptions } from "./ladder/index.ts";
// Durable actors, facets and sub-agents (issue 13).
export { actorNamespace, ActorNamespace, ActorId, type ActorNamespaceOptions, type ActorStub, type ActorPlacement } from "./actors/index.ts";
// Cluster mode (issue 15): many hosts sharing PostgreSQL and S3 (also `mayfly serve --cluster`).
export { openCluster, ClusterPlacement, clusterConfigSchema, bundleRecords, publishWorkers, type Cluster, type ClusterConfig } from "./cluster/index.ts";
// npm packages at load time (issue 11): the loader's `npm` option, its report, and npm's registry configuration.
export { registryConfigFromEnvironment, type NpmOptions, type NpmReport, type RegistryConfig, type Lockfile } from "./bundler/npm/index.ts";
// Code Mode (issue 6): tools as a typed API, `search` + `execute`, an MCP server, agent SDK adapters.
export * from "./codemode/index.ts";
// Plugins (issue 12): manifests (schema, grants, consent diffs) and the plugin host (hooks, routes, audit).
export {
  parseManifest, manifestSchema, manifestJsonSchema, manifestToWorkerCode, checkGrants, diffManifests, formatManifestDiff, pluginStoreName,
  type PluginManifest, type PluginManifestInput, type PluginGrants, type PluginCode, type CapabilityUse, type ManifestContext,
  type ManifestDiff, type ManifestChange, type ChangeKind, type HookSubscription, type WorkspaceAccess,
} from "./manifests/index.ts";
export * from "./plugins/index.ts";
export {
  ManifestError, ManifestGrantError, PluginError, PluginNotFoundError, PluginStateError, PluginToolError, HookTimeoutError,
} from "./errors.ts";
// Self-authored extensions (issue 12, part 4): tools defined by code, offered to later Code Mode runs as ext.<name>.<tool>().
export { Extensions, extensionTools, type ExtensionInfo, type ExtensionTool } from "./extensions/index.ts";
