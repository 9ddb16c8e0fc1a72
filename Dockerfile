# syntax=docker/dockerfile:1
# mayfly's server image: `mayfly serve` on port 8787. Build: docker build -t mayfly:0.1.0 .
# Run one host: docker run -e MAYFLY_TOKEN=<at least 8 chars> -p 8787:8787 mayfly:0.1.0
# (tokens are required when listening beyond loopback). A cluster: deploy/compose.yaml, deploy/kubernetes/.
#
# Isolates need no privileges: the executors are ordinary child processes (the server spawns them
# with --no-node-snapshot itself). The OS-sandbox binding (bubblewrap) is optional and not in this
# image: it needs `apt-get install bubblewrap` and unprivileged user namespaces on the node (and a
# seccomp/AppArmor profile that allows them); without it, sandbox() reports itself unavailable.

# ---- build: dependencies (with the toolchain isolated-vm compiles with when no prebuilt binary fits) and dist/
FROM node:24.21.0-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# npm ci runs the package's `prepare` (the TypeScript build), so the sources come first.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: node, production dependencies, the build; no compiler, no sources
FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/schemas ./schemas
# A single-host config (replace it by mounting another at /etc/mayfly); data under /var/lib/mayfly.
COPY deploy/docker/mayfly.config.json /etc/mayfly/mayfly.config.json
RUN mkdir -p /var/lib/mayfly/data && chown -R 1000:1000 /var/lib/mayfly
# The image's `node` user, by number, so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: the server stops accepting, lets in-flight requests finish, then stops its executors.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/index.js"]
# The flags pin what EXPOSE and HEALTHCHECK assume, whatever the mounted config says.
CMD ["serve", "--config", "/etc/mayfly/mayfly.config.json", "--host", "0.0.0.0", "--port", "8787"]
