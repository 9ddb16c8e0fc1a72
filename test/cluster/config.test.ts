import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../../src/server/config.ts";
import { clusterFromFlags } from "../../src/cli/cluster.ts";
import { ConfigError } from "../../src/errors.ts";

const section = { postgresUrl: "${MAYFLY_POSTGRES_URL}", hostId: "${MAYFLY_HOST_ID}", advertise: "${MAYFLY_ADVERTISE}", secret: "${MAYFLY_CLUSTER_SECRET}", leaseMs: 5000 };
const env = { MAYFLY_POSTGRES_URL: "postgres://u:p@db:5432/mayfly", MAYFLY_HOST_ID: "web-1", MAYFLY_ADVERTISE: "10.0.0.7:8787", MAYFLY_CLUSTER_SECRET: "s3cret-s3cret-s3cret" };

test("the cluster section takes its values from the environment, checked after substitution", () => {
  assert.deepEqual(parseConfig({ cluster: section }, "/srv", env).cluster, {
    postgresUrl: "postgres://u:p@db:5432/mayfly", hostId: "web-1", advertise: "10.0.0.7:8787", secret: "s3cret-s3cret-s3cret", leaseMs: 5000,
  });
  assert.throws(() => parseConfig({ cluster: section }, "/srv", { ...env, MAYFLY_CLUSTER_SECRET: undefined }), /cluster: the environment variable MAYFLY_CLUSTER_SECRET is not set/);
  assert.throws(() => parseConfig({ cluster: section }, "/srv", { ...env, MAYFLY_ADVERTISE: "no-port" }), /cluster\.advertise: advertise is host:port/);
  assert.throws(() => parseConfig({ cluster: { ...section, leaseMs: 10 } }, "/srv", env), ConfigError);
  assert.throws(() => parseConfig({ cluster: { ...section, extra: 1 } }, "/srv", env), ConfigError);
});

test("serve --cluster: flags over the config's section over the environment; none without either", () => {
  assert.equal(clusterFromFlags({}, env), undefined);
  assert.deepEqual(clusterFromFlags({ cluster: true, hostId: "flagged" }, env), {
    postgresUrl: "postgres://u:p@db:5432/mayfly", hostId: "flagged", advertise: "10.0.0.7:8787", secret: "s3cret-s3cret-s3cret",
  });
  const file = parseConfig({ cluster: section }, "/srv", env).cluster;
  assert.equal(clusterFromFlags({ leaseMs: 900 }, {}, file)?.leaseMs, 900);
  assert.deepEqual(clusterFromFlags({ cluster: true }, { ...env, MAYFLY_S3_BUCKET: "b", MAYFLY_S3_ENDPOINT: "http://minio:9000", MAYFLY_S3_ACCESS_KEY_ID: "k", MAYFLY_S3_SECRET_ACCESS_KEY: "s" })?.s3,
    { bucket: "b", endpoint: "http://minio:9000", forcePathStyle: true, credentials: { accessKeyId: "k", secretAccessKey: "s" } });
  assert.throws(() => clusterFromFlags({ cluster: true }, {}), /cluster\.postgresUrl: .*MAYFLY_POSTGRES_URL/);
  assert.throws(() => clusterFromFlags({ cluster: true }, { MAYFLY_POSTGRES_URL: "postgres://x" }), /cluster\.secret: .*MAYFLY_CLUSTER_SECRET/);
});
