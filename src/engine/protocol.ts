/**
 * Frames between the host (supervisor) and an executor process. They travel over Node's IPC channel
 * with `serialization: "advanced"` (V8's structured clone), so bytes, Maps and Dates cross as themselves.
 */
import type { Invocation, Outcome, WireError } from "../runtime/index.ts";
import type { Limits } from "./limits.ts";
import type { NormalizedModule } from "../loader/worker-code.ts";

/** Everything an executor needs to start one worker instance in a fresh isolate. */
export interface WorkerSpec {
  mainModule: string;
  modules: NormalizedModule[];
  env: Record<string, unknown>;
  compatibilityFlags: string[];
  limits: Limits;
  /** The capability id of globalOutbound, when the worker has one (see bindings/capability.ts). */
  globalOutbound?: number;
  /** Set when the worker is a durable actor's instance (see src/actors/). */
  actor?: ActorSpec;
}

/** What an executor needs to host one durable actor: the class, its identity, where its data lives. */
export interface ActorSpec {
  className: string;
  /** 64 hex digits. */
  id: string;
  /** The name the id came from (idFromName), when it did. */
  name?: string;
  /** The actor's own SQLite file, opened by the executor (services/actor-storage.ts). */
  storagePath: string;
  /** The most its database may hold (SQLite's max_page_count); past it a write fails with QuotaExceededError. */
  maxStorageBytes: number;
  /** The capability id of the actor's control channel in the host (alarms, facets). */
  control: number;
  /** Cluster mode: committed writes are captured (node:sqlite sessions) and sent to the host before each call's result. */
  replicate?: boolean;
}

export type HostToExecutor =
  | { t: "call"; callId: number; instanceId: number; worker?: WorkerSpec; invocation: Invocation }
  | { t: "dispose"; instanceId: number }
  // Scripts sent earlier that the executor may drop (see script-transfer.ts).
  | { t: "forget-scripts"; hashes: string[] }
  // A streamed request body, sent a chunk at a time when the executor asks (req-pull).
  | { t: "req-chunk"; callId: number; data: Uint8Array }
  | { t: "req-end"; callId: number }
  | { t: "req-error"; callId: number; message: string }
  // Credit for one more response chunk; or the host's reader went away.
  | { t: "res-pull"; callId: number }
  | { t: "res-cancel"; callId: number }
  // The answer to a capability call (never a rejection: an envelope).
  | { t: "cap-result"; reqId: number; envelope: CapEnvelope };

export type CapEnvelope = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string } };

export interface LogLine { level: string; message: string; time: number }

/** Why a call failed, when it did not fail with the guest's own error. */
export type FailureKind = "startup" | "cpuMs" | "wallMs" | "memoryMb" | "output" | "logs" | "clone" | "stream" | "disposed" | "internal";

/** What a call cost; subRequests counts fetches through bindings and globalOutbound in the run. */
export interface CallStats { cpuMs: number; wallMs: number; heapBytes: number; subRequests: number }

export type ExecutorToHost =
  | { t: "ready"; pid: number; runtime: "snapshot" | "evaluate"; mainThreadRaised: boolean }
  | { t: "req-pull"; callId: number }
  // A guest calls a capability of its worker (a binding in env, or globalOutbound).
  | { t: "cap-call"; reqId: number; instanceId: number; capId: number; method: string; args: unknown[] }
  | { t: "res-chunk"; callId: number; data: Uint8Array }
  | { t: "res-end"; callId: number }
  | { t: "res-error"; callId: number; failure: { kind: FailureKind; error: WireError; detail?: string } }
  | {
      t: "result";
      callId: number;
      /** False when the run goes on after its reply (ctx.waitUntil): a "done" frame follows. */
      final: boolean;
      /** The guest's outcome (its value or its own error), or absent when the run was ended. */
      outcome?: Outcome;
      failure?: { kind: FailureKind; error: WireError; detail?: string };
      logs: LogLine[];
      stats: CallStats;
      rssBytes: number;
      /** Isolate images with npm bundles evaluated that this executor has ready (package-images.ts). */
      packageImages: number;
      /** Estimated ms of pool refilling ahead, during which this executor answers late. */
      refillMs: number;
      /** The instance is gone (limit, crash of the isolate): the next call must start a fresh one. */
      instanceGone: boolean;
      /**
       * The executor holds an isolate it can never free (V8 ran out of heap inside it, and its thread
       * is parked for good): drain it and start a replacement.
       */
      recycle: boolean;
    }
  | {
      t: "done";
      callId: number;
      /** How the work after the reply ended, when it did not end well. */
      failure?: { kind: FailureKind; error: WireError; detail?: string };
      logs: LogLine[];
      stats: CallStats;
      instanceGone: boolean;
    };
