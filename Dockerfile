# syntax=docker/dockerfile:1
# The wagate gateway as a container image: a static binary (CGO off) on a distroless base with CA
# certificates and no shell, running as the unprivileged user 65532. Build it with `make image`
# (needs a Docker daemon; without one the target says so and stops) or:
#   docker build --build-arg VERSION=$(git describe --tags --always) -t wagate/gateway .
# The container listens on :4000; `gateway healthcheck` is its health probe (GET /readyz).
# docs/deploy.md ("Containers, Compose and Kubernetes") says how to run it.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X wagate/internal/buildinfo.Version=${VERSION} -X wagate/internal/buildinfo.Revision=${REVISION}" \
      -o /out/gateway ./gateway/cmd/gateway \
    && /out/gateway -version

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
# The SQLite data dir of a single replica (mount a volume here); cluster mode keeps everything in
# Postgres and Redis.
ENV WAGATE_DATA_DIR=/home/nonroot/data
USER 65532:65532
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
