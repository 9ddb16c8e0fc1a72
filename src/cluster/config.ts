/**
 * The `cluster` section of mayfly.config.json (and what `mayfly serve --cluster` flags build): the
 * shared PostgreSQL, this host's identity and the address other hosts reach it at, the secret that
 * authenticates host-to-host forwarding, the lease time, and the S3 store blob buckets use.
 */
import { z } from "zod";

export const clusterConfigSchema = z.strictObject({
  /** postgres://user:password@host:port/database — usually "${MAYFLY_POSTGRES_URL}". */
  postgresUrl: z.string().min(1),
  /** Unique per live host (default: the machine's host name). */
  hostId: z.string().min(1).max(128).regex(/^[^#\s]+$/, "a host id has no spaces and no #").optional(),
  /** host:port other hosts reach this one at (default: the listening address). */
  advertise: z.string().regex(/^[^/\s]+:\d+$/, "advertise is host:port").optional(),
  /** Shared by every host: authenticates forwarded actor calls (at least 16 characters). */
  secret: z.string().min(16, "the cluster secret must be at least 16 characters"),
  /** How long an actor's owner holds it without renewing: a dead owner's actors move after this (default 10 s). */
  leaseMs: z.number().int().min(500).max(600_000).optional(),
  /** How long SIGTERM waits for in-flight requests before closing connections (default 30 s). */
  drainMs: z.number().int().min(0).max(600_000).optional(),
  /** The S3-compatible store for blob buckets. */
  s3: z.strictObject({
    endpoint: z.string().url().optional(),
    bucket: z.string().min(1),
    region: z.string().min(1).optional(),
    credentials: z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).optional(),
    forcePathStyle: z.boolean().optional(),
  }).optional(),
});

export type ClusterConfig = z.infer<typeof clusterConfigSchema>;

export const DEFAULT_LEASE_MS = 10_000;
export const DEFAULT_DRAIN_MS = 30_000;
