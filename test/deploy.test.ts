/**
 * The deployment files (Dockerfile, deploy/compose.yaml, deploy/haproxy.cfg, deploy/kubernetes/)
 * cannot be built or applied here (no Docker engine, no cluster), so this checks the invariants
 * that break deployments: probes on endpoints the server serves, flags the CLI has, images pinned,
 * non-root, resources set, selectors that match, secrets and `${NAME}`s that exist, the drain time.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
// js-yaml (dev dependency): parses the manifests and the compose file.
import { CORE_SCHEMA, load, loadAll, mergeTag } from "js-yaml";
import { parseConfig } from "../src/server/config.ts";

const root = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");
type Doc = Record<string, any>;

const k8s: Doc[] = readdirSync(join(root, "deploy/kubernetes")).filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => loadAll(read(`deploy/kubernetes/${f}`)) as Doc[]).filter(Boolean);
// Compose files use merge keys (<<: *anchor), which YAML 1.2's core schema leaves out.
const compose = load(read("deploy/compose.yaml"), { schema: CORE_SCHEMA.withTags(mergeTag) }) as Doc;
const dockerfile = read("Dockerfile");
const config = JSON.parse(read("deploy/mayfly.config.json")) as Doc;

/** Paths the server answers GET on, from its route table. */
const served = new Set([...read("src/server/app.ts").matchAll(/app\.(?:get|all)\("(\/[^"]*)"/g)].map((m) => m[1]!));
/** Long flags `mayfly` (any command) accepts. */
const cliFlags = new Set([...read("src/cli/index.ts").matchAll(/\.option\("(?:-\w, )?(--[a-z-]+)/g)].map((m) => m[1]!));
const names = (text: string) => [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!))];
const drainSeconds = (config.cluster?.drainMs ?? 30_000) / 1000;

function only(kind: string): Doc {
  const docs = k8s.filter((d) => d.kind === kind);
  assert.equal(docs.length, 1, `one ${kind} in deploy/kubernetes`);
  return docs[0]!;
}

/** An image reference with a version: a tag other than latest, or a digest. */
function assertPinned(image: string, where: string): void {
  assert.match(image, /(@sha256:[0-9a-f]{64}$)|(:[^/:@]+$)/, `${where}: ${image} has no tag or digest`);
  assert.doesNotMatch(image, /:latest$/, `${where}: ${image} is not pinned`);
}

describe("Dockerfile", () => {
  const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1]!);
  const exposed = Number(/^EXPOSE\s+(\d+)/m.exec(dockerfile)?.[1]);
  const cmd = JSON.parse(/^CMD\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? "[]") as string[];

  test("multi-stage on a pinned Node 24 bookworm-slim, npm ci, pruned, run as a non-root user", () => {
    assert.ok(froms.length >= 2, "at least a build stage and a runtime stage");
    for (const image of froms) {
      assert.match(image, /^node:24[.\d]*-bookworm-slim$/);
      assertPinned(image, "FROM");
    }
    assert.match(dockerfile, /npm ci/);
    assert.match(dockerfile, /npm prune --omit=dev/);
    const user = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user} is not root`);
    assert.ok(existsSync(join(root, ".dockerignore")));
  });

  test("serves on the EXPOSEd port; HEALTHCHECK asks /healthz there; the CMD's flags exist", () => {
    assert.equal(cmd[0], "serve");
    assert.equal(Number(cmd[cmd.indexOf("--port") + 1]), exposed);
    for (const flag of cmd.filter((a) => a.startsWith("--"))) assert.ok(cliFlags.has(flag), `mayfly serve has ${flag}`);
    const healthcheck = /^HEALTHCHECK[\s\S]*?CMD\s+(.*)$/m.exec(dockerfile)?.[1] ?? "";
    assert.match(healthcheck, new RegExp(`127\\.0\\.0\\.1:${exposed}/healthz`));
    assert.ok(served.has("/healthz"));
    assert.match(dockerfile, /^ENTRYPOINT \["node", "dist\/cli\/index\.js"\]/m);
    assert.equal(JSON.parse(read("package.json")).bin.mayfly, "./dist/cli/index.js");
  });

  test("the image's own config is valid with just MAYFLY_TOKEN", () => {
    const own = JSON.parse(read("deploy/docker/mayfly.config.json"));
    assert.deepEqual(names(JSON.stringify(own)), ["MAYFLY_TOKEN"]);
    assert.doesNotThrow(() => parseConfig(own, "/etc/mayfly", { MAYFLY_TOKEN: "a-long-enough-token" }));
  });
});

describe("mayfly.config.json for a cluster (compose and Kubernetes)", () => {
  const env = Object.fromEntries(names(JSON.stringify(config)).map((n) => [n, n === "MAYFLY_ADVERTISE" ? "10.0.0.1:8787" : n === "MAYFLY_S3_ENDPOINT" ? "http://minio:9000" : `value-of-${n}-long-enough`]));

  test("the rest of the file is valid; ${NAME}s are the agreed environment variables", () => {
    const { cluster: _cluster, ...rest } = config;
    assert.doesNotThrow(() => parseConfig(rest, "/etc/mayfly", env));
    for (const n of ["MAYFLY_POSTGRES_URL", "MAYFLY_S3_ENDPOINT", "MAYFLY_S3_BUCKET", "MAYFLY_S3_ACCESS_KEY_ID", "MAYFLY_S3_SECRET_ACCESS_KEY", "MAYFLY_HOST_ID", "MAYFLY_ADVERTISE"]) {
      assert.ok(n in env, `the config uses ${n}`);
    }
    assert.ok(existsSync(join(root, "deploy", config.workers.hello.main)));
  });

  test("the cluster section is valid", () => {
    assert.doesNotThrow(() => parseConfig(config, "/etc/mayfly", env));
  });
});

describe("Kubernetes manifests", () => {
  const deployment = only("Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
  const containerPort = container.ports.find((p: Doc) => p.name === "http");
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);

  test("the Deployment's selector matches its pods; image pinned; resources set", () => {
    assert.ok(selects(deployment.spec.selector.matchLabels));
    assertPinned(container.image, "Deployment");
    for (const kind of ["requests", "limits"]) for (const r of ["cpu", "memory"]) assert.ok(container.resources?.[kind]?.[r], `resources.${kind}.${r}`);
    assert.equal(container.args[0], "serve");
    for (const flag of container.args.filter((a: string) => a.startsWith("--"))) assert.ok(cliFlags.has(flag), `mayfly serve has ${flag}`);
    assert.equal(Number(container.args[container.args.indexOf("--port") + 1]), containerPort.containerPort);
  });

  test("non-root, read-only root file system, no privilege escalation, no capabilities", () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
    // What the server writes: its data directory and the temp directory are volumes.
    const mounts = container.volumeMounts.map((m: Doc) => m.mountPath);
    assert.ok(mounts.includes("/tmp") && config.dataDir.startsWith("/var/lib/mayfly") && mounts.includes("/var/lib/mayfly"));
  });

  test("liveness and startup probes ask /healthz on the container's port", () => {
    for (const probe of [container.livenessProbe, container.startupProbe]) {
      assert.equal(probe.httpGet.path, "/healthz");
      assert.ok([containerPort.name, containerPort.containerPort].includes(probe.httpGet.port));
    }
    assert.ok(served.has("/healthz"));
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.ok([containerPort.name, containerPort.containerPort].includes(container.readinessProbe.httpGet.port));
  });

  test("the server serves /readyz", () => {
    assert.ok(served.has("/readyz"));
  });

  test("termination grace covers preStop and the drain", () => {
    const preStop = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    assert.ok(pod.terminationGracePeriodSeconds >= preStop + drainSeconds + 5, `${pod.terminationGracePeriodSeconds}s >= ${preStop}s + ${drainSeconds}s + 5s`);
  });

  test("every ${NAME} in the config is in the pod's environment; secrets and config keys exist", () => {
    const configMap = only("ConfigMap");
    const secret = only("Secret");
    const envNames = container.env.map((e: Doc) => e.name);
    assert.deepEqual(JSON.parse(configMap.data["mayfly.config.json"]), config, "the ConfigMap carries deploy/mayfly.config.json");
    for (const n of names(configMap.data["mayfly.config.json"])) assert.ok(envNames.includes(n), `${n} is set`);
    assert.equal(container.env.find((e: Doc) => e.name === "MAYFLY_HOST_ID").valueFrom.fieldRef.fieldPath, "metadata.name");
    assert.match(container.env.find((e: Doc) => e.name === "MAYFLY_ADVERTISE").value, new RegExp(`^\\$\\(POD_IP\\):${containerPort.containerPort}$`));
    for (const e of container.env) {
      const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
      if (!ref) continue;
      const source = e.valueFrom.secretKeyRef ? secret : configMap;
      assert.equal(ref.name, source.metadata.name);
      assert.ok(ref.key in (source.stringData ?? source.data), `${source.kind} ${ref.name} has ${ref.key}`);
    }
    const volume = pod.volumes.find((v: Doc) => v.configMap);
    const files = volume.configMap.items.map((i: Doc) => i.path);
    assert.ok(files.includes("mayfly.config.json") && files.includes(config.workers.hello.main));
  });

  test("the Service, the PodDisruptionBudget and the HorizontalPodAutoscaler find the Deployment's pods", () => {
    const service = only("Service");
    assert.ok(selects(service.spec.selector));
    assert.ok([containerPort.name, containerPort.containerPort].includes(service.spec.ports[0].targetPort));
    const pdb = only("PodDisruptionBudget");
    assert.ok(selects(pdb.spec.selector.matchLabels));
    assert.ok(pdb.spec.maxUnavailable !== undefined || pdb.spec.minAvailable !== undefined);
    const hpa = only("HorizontalPodAutoscaler");
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
    const kustomization = load(read("deploy/kubernetes/kustomization.yaml")) as Doc;
    for (const f of kustomization.resources) assert.ok(existsSync(join(root, "deploy/kubernetes", f)));
  });
});

describe("docker compose and HAProxy", () => {
  const services = compose.services as Record<string, Doc>;
  const hosts = Object.entries(services).filter(([, s]) => s.build);
  const haproxy = read("deploy/haproxy.cfg");

  test("postgres, MinIO, three mayfly hosts and HAProxy, images pinned", () => {
    assert.ok(services.postgres && services.minio && services.haproxy);
    assert.equal(hosts.length, 3);
    for (const [name, s] of Object.entries(services)) if (s.image) assertPinned(s.image, `services.${name}`);
  });

  test("each host: its own id and advertised address, every ${NAME} set, non-root, grace over the drain", () => {
    const ids = new Set<string>();
    for (const [name, s] of hosts) {
      for (const n of names(JSON.stringify(config))) assert.ok(n in s.environment, `${name}: ${n} is set`);
      assert.equal(s.environment.MAYFLY_ADVERTISE, `${name}:8787`);
      ids.add(s.environment.MAYFLY_HOST_ID);
      assert.notEqual(s.user?.split(":")[0], "0");
      assert.ok(Number.parseInt(s.stop_grace_period) >= drainSeconds + 5);
      assert.ok(s.volumes.some((v: string) => v.startsWith("./mayfly.config.json:/etc/mayfly/mayfly.config.json")));
    }
    assert.equal(ids.size, 3);
  });

  test("HAProxy: hashes /w/ on the path consistently, checks /readyz, knows every host", () => {
    assert.match(haproxy, /use_backend workers if \{ path_beg \/w\/ \}/);
    assert.match(haproxy, /balance uri path-only\s+hash-type consistent/);
    for (const uri of haproxy.matchAll(/http-check send meth GET uri (\S+)/g)) assert.equal(uri[1], "/readyz");
    const servers = [...haproxy.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)];
    for (const [, , host, port] of servers) assert.ok(services[host!]?.build && port === "8787", `${host}:${port} is a mayfly host`);
    assert.deepEqual(new Set(servers.map((s) => s[2])), new Set(hosts.map(([n]) => n)));
    assert.ok(services.haproxy?.volumes.includes("./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"));
  });

  const binary = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].find((p) => existsSync(p));
  test("haproxy -c accepts deploy/haproxy.cfg", { skip: !binary && "haproxy is not installed (apt-get install haproxy)" }, () => {
    const r = spawnSync(binary!, ["-c", "-f", join(root, "deploy/haproxy.cfg")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  });
});
