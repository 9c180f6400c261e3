# syntax=docker/dockerfile:1
#
# kaload image: a static binary on an empty base, run as a non-root user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t kaload:dev .
#   docker run --rm -p 8080:8080 kaload:dev              # kaload serve
#   docker run --rm kaload:dev hammer --url http://host:8080/ -d 10s
#
# The build itself is scripts/build.sh, shared with CI and test/deploy's
# build test, which checks that its result is static.

ARG GO_VERSION=1.26.8

# Build on the builder's own platform and cross-compile: no emulation needed.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} VERSION=${VERSION} OUT=/out/kaload scripts/build.sh

# Nothing but the binary and CA roots (for hammer --url https://...): no shell,
# no package manager, nothing to patch.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/kaload /usr/local/bin/kaload
ENV PATH=/usr/local/bin
# The conventional "nonroot" uid/gid; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["kaload"]
CMD ["serve"]
