#!/usr/bin/env bash
# Abuse kaload serve on loopback and print the figure each case needs:
# errors in a drain window (h1, h2c, TLS h2), RSS and fds around 3,000
# stalled request bodies and a SIGTERM with five of them, and CPU of server
# vs attacker plus a normal client's p99 during an HTTP/2 rapid reset.
#
#   bench/abuse-serve.sh                 # every case
#   CASES=reset bench/abuse-serve.sh     # one case (drain, stall, reset)
#   KALOAD=/path/to/kaload bench/abuse-serve.sh   # another build, e.g. an old one
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${KALOAD:-}" ]; then
	go build -o "$work/kaload" ./cmd/kaload
	KALOAD=$work/kaload
fi
go build -o "$work/abuse-serve" ./bench/cmd/abuse-serve
"$work/abuse-serve" -kaload "$KALOAD" -cases "${CASES:-drain,stall,reset}"
