# One image with every gate binary (gate-broker, gate-demo-worker, gatectl) in
# /usr/local/bin. Build:   docker build -t gate:local .
# The compose stack (docker-compose.yml) builds it and picks the binary per
# service with `command:`.
#
# Builds with BuildKit and with the classic builder (no RUN --mount, no
# syntax directive to pull). The base images are build args; the defaults
# are the public images. `make compose-test` passes local images built
# from Debian packages (deploy/compose-images.sh), which already hold the
# packages below: the apt-get steps run only when `dpkg -s` misses one, so
# such a build needs no network for apt.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: cgo against libzmq -------------------------------------------
FROM ${GO_IMAGE} AS build

RUN dpkg -s libzmq3-dev zlib1g-dev pkg-config >/dev/null 2>&1 || { apt-get update \
 && apt-get install -y --no-install-recommends libzmq3-dev zlib1g-dev pkg-config; } \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/...

# ---- runtime: slim Debian with the libzmq shared library ------------------
FROM ${RUNTIME_IMAGE}

RUN dpkg -s libzmq5 ca-certificates >/dev/null 2>&1 || { apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 ca-certificates; } \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gate \
 && useradd --system --uid 10001 --gid gate --no-create-home --shell /usr/sbin/nologin gate \
 && install -d -o 10001 -g 10001 -m 0700 /keys

COPY --from=build /out/ /usr/local/bin/

# /keys holds CURVE keys in the compose stack (docs/security.md): a named
# volume mounted there starts with this directory's owner (uid 10001),
# so the non-root binaries can write and read it.

# Every binary serves /metrics and /healthz on GATE_METRICS_ADDR, and its
# `health` subcommand GETs http://<GATE_METRICS_ADDR>/healthz (an empty or
# 0.0.0.0 host means 127.0.0.1) and exits 0 on 200. slim has no curl or wget.
ENV GATE_METRICS_ADDR=0.0.0.0:9100
EXPOSE 5555 5556 9100

USER 10001:10001

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["gate-broker", "health"]

CMD ["gate-broker"]
