/** Durable actors (issue 13): namespaces of stateful workers with their own SQLite storage, facets and sub-agents. */
export { actorNamespace, ActorNamespace, ActorId, type ActorNamespaceOptions, type ActorStub } from "./namespace.ts";
export type { ActorPlacement, ActorTarget, ActorLogEntry, Placed, PlacedNamespace } from "./placement.ts";
