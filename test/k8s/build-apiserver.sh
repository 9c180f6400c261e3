#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy into a cache
# directory, for the Kubernetes integration test of kaload hammer --watch
# (internal/kubewatch). A second run reuses the cached binaries.
#
#   test/k8s/build-apiserver.sh            # builds or reuses, prints the directory
#   KALOAD_K8S_CACHE=/tmp/k8s test/k8s/build-apiserver.sh
#
# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires every
# staging module (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces it
# with ./staging. A throwaway module requiring it must pin each of those by
# replace to the published v0.MINOR.PATCH. etcd builds from
# go.etcd.io/etcd/server/v3 with a main calling etcdmain.Main.
set -euo pipefail

k8s_version=${KALOAD_K8S_VERSION:-v1.37.2}
etcd_version=${KALOAD_ETCD_VERSION:-v3.6.16}
cache=${KALOAD_K8S_CACHE:-$HOME/.cache/kaload/k8s-$k8s_version}

if [ -x "$cache/kube-apiserver" ] && [ -x "$cache/etcd" ]; then
  echo "$cache"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off

# kube-apiserver
staging_version="v0.${k8s_version#v1.}"
mkdir "$work/apiserver"
(
  cd "$work/apiserver"
  go mod init kaload.test/kube-apiserver >/dev/null 2>&1
  dir=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "build-apiserver: could not download k8s.io/kubernetes@$k8s_version" >&2; exit 1; }
  # Every "k8s.io/x => ./staging/src/k8s.io/x" of kubernetes' go.mod.
  mods=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$dir/go.mod")
  [ -n "$mods" ] || { echo "build-apiserver: no staging replaces in k8s.io/kubernetes go.mod" >&2; exit 1; }
  args=()
  for m in $mods; do args+=("-replace=$m=$m@$staging_version"); done
  go mod edit "${args[@]}"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version"
  go build -o "$cache/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$cache/kube-apiserver.tmp" "$cache/kube-apiserver"
)

# etcd
mkdir "$work/etcd"
(
  cd "$work/etcd"
  go mod init kaload.test/etcd >/dev/null 2>&1
  cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$etcd_version"
  go mod tidy
  go build -o "$cache/etcd.tmp" .
  mv "$cache/etcd.tmp" "$cache/etcd"
)
echo "$cache"
