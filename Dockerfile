# berth's container image: `berth serve` on Node LTS, as a non-root user.
#
#   docker build -t berth .
#   docker run -p 8000:8000 -e BERTH_TOKEN=... berth
#
# BASE is the runtime stage's image, BUILD_BASE the build stage's (by default
# the same: the official Node LTS slim image). Where nothing can be pulled,
# .ci/image/build.sh passes local bases made by .ci/image/base.sh instead.
# The build stage needs python3, make and g++ (sqlite3 compiles when no
# prebuilt binary can be fetched); it installs them with apt when its base
# lacks them. Both bases must share Debian release (glibc) and Node version:
# the runtime stage loads the addon compiled in the build stage.
ARG BASE=node:20-bookworm-slim
ARG BUILD_BASE=${BASE}

FROM ${BUILD_BASE} AS build
RUN if ! command -v python3 >/dev/null || ! command -v make >/dev/null || ! command -v g++ >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY package.json package-lock.json ./
# All dependencies (tsc is one). Of sqlite3's build only its addon is needed at run time.
RUN npm ci --no-audit --no-fund \
 && node -e "require('sqlite3')" \
 && cd node_modules/sqlite3 \
 && mv build/Release/node_sqlite3.node /tmp/ \
 && rm -rf build deps src \
 && mkdir -p build/Release \
 && mv /tmp/node_sqlite3.node build/Release/
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && node -e "require('sqlite3'); require('./dist/src/server')"

FROM ${BASE} AS runtime
# uid and gid 10001, as manifests/ runs the pod (runAsUser); --no-log-init: no sparse lastlog for a high uid.
RUN groupadd --gid 10001 berth \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin berth \
 && mkdir -p /var/lib/berth /etc/berth/apps \
 && chown 10001:10001 /var/lib/berth
WORKDIR /app
# Owned by root: the berth user reads its code and cannot change it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The defaults manifests/ uses: the store on a volume, Apps from a mounted folder.
# MALLOC_ARENA_MAX as `npm start` sets it (sqlite3's worker threads each get a malloc arena otherwise).
ENV BERTH_HOST=0.0.0.0 \
    BERTH_PORT=8000 \
    BERTH_DB=/var/lib/berth/berth.sqlite \
    BERTH_APPS_DIR=/etc/berth/apps \
    MALLOC_ARENA_MAX=2
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
# node's flags as `npm start` sets them (README, "Benchmarks"): a 4 MB young generation half and an
# old generation let grow to 1.3 times what a full collection found live.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--heap-growing-percent=30", "/app/dist/src/cli/main.js"]
CMD ["serve"]
