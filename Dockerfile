# syntax=docker/dockerfile:1
# The ledgervault container image, named by deploy/kubernetes/coordinator.yaml. Build:
#   docker build -t ghcr.io/ledgervault/ledgervault:$(git describe --tags --always) \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
# (buildah bud and podman build take the same arguments.) See docs/deployment.md;
# go test ./test/deploy lints it.
#
# Stage 1: a static binary (CGO_ENABLED=0: no libc needed at run time), stamped with the
# version as the Makefile's build target does. The Go image is go.mod's Go version.
FROM docker.io/library/golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=devel
ARG COMMIT=
ARG DATE=
ENV CGO_ENABLED=0 GOOS=linux
RUN go build -trimpath -ldflags "-s -w \
      -X github.com/ledgervault/ledgervault/internal/buildinfo.Version=${VERSION} \
      -X github.com/ledgervault/ledgervault/internal/buildinfo.Commit=${COMMIT} \
      -X github.com/ledgervault/ledgervault/internal/buildinfo.Date=${DATE}" \
      -o /out/ledgervault ./cmd/ledgervault

# Stage 2: distroless static (CA certificates, tzdata, /etc/passwd with nonroot; no shell,
# no package manager), pinned by digest; the tag says what it is, the digest which one.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
LABEL org.opencontainers.image.title="ledgervault" \
      org.opencontainers.image.description="Backup and restore for authenticated ledger databases" \
      org.opencontainers.image.source="https://github.com/ledgervault/ledgervault" \
      io.github.ledgervault.image="ghcr.io/ledgervault/ledgervault"
COPY --from=build /out/ledgervault /usr/local/bin/ledgervault
# distroless' nonroot user, by number: Kubernetes' runAsNonRoot can only check a numeric USER.
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/ledgervault"]
CMD ["--help"]
