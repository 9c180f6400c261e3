#!/usr/bin/env bash
# Cost of kaload's connection recycling on the request path, side by side.
#
# Runs pkg/server's BenchmarkHandler (real loopback keep-alive connection,
# allocation-free client, so allocs/op is the server's) and BenchmarkWrapDirect
# (the wrapper alone, in process) COUNT times with -benchmem, interleaved by
# the testing package in one run, and prints per sub-benchmark the median
# ns/op, B/op and allocs/op and the ratio of median ns/op to "plain".
#
#   bench/server-handler.sh             # COUNT=10, BENCHTIME=1s
#   COUNT=20 BENCHTIME=2s bench/server-handler.sh
#
# Sub-benchmarks: bare (handler touches no header), plain (sets one header,
# the baseline), recycler (plain behind Recycler.Wrap, unlimited),
# recycler-max1000 (includes a reconnect every 1000 requests), server (the
# whole kaload Server handler: backend, Total-Request, body).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10}
BENCHTIME=${BENCHTIME:-1s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'BenchmarkHandler|BenchmarkWrapDirect' -benchmem \
	-count "$COUNT" -benchtime "$BENCHTIME" ./pkg/server | tee "$out" >&2
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	n[name]++; ns[name, n[name]] = $3; by[name, n[name]] = $5; al[name, n[name]] = $7
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
function median(arr, name, cnt,   i, j, v, t) {
	for (i = 1; i <= cnt; i++) v[i] = arr[name, i] + 0
	for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}
END {
	printf "%-40s %12s %10s %10s %8s\n", "benchmark (median of runs)", "ns/op", "B/op", "allocs/op", "ratio"
	for (i = 1; i <= k; i++) {
		name = order[i]; m[name] = median(ns, name, n[name])
		base = name; sub(/\/[^\/]+$/, "/plain", base)
		printf "%-40s %12.1f %10.0f %10.0f", name, m[name], median(by, name, n[name]), median(al, name, n[name])
		if (base in m) printf " %8.3f", m[name] / m[base]
		printf "\n"
	}
}' "$out"
