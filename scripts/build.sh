#!/bin/sh
# The one release build of kaload: a static, trimmed binary with its version.
# The Dockerfile, CI and test/deploy's build test run this script, so the
# flags live here only.
#
#   scripts/build.sh                          # ./kaload, version from git
#   VERSION=v1.2.3 OUT=/out/kaload GOOS=linux GOARCH=arm64 scripts/build.sh
set -eu
cd "$(dirname "$0")/.."
: "${VERSION:=$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
: "${OUT:=kaload}"
CGO_ENABLED=0 exec go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o "${OUT}" ./cmd/kaload
