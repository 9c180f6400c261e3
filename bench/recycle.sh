#!/usr/bin/env bash
# Cost of pkg/server/recycle's wrapper on a handler (issue 11, target 4:
# <= 3%): BenchmarkWrap serves the same trivial handler bare and behind
# Recycler.Wrap over real loopback keep-alive connections, parallel clients,
# interleaved COUNT times in one run with -benchmem. Prints per case the
# median wall ns/op and CPU ns/op (the process's user + system time per
# request: server and clients; steadier on a shared machine), each with its
# ratio to handler=plain, and B/op, allocs/op; then benchstat's view when
# benchstat is installed.
#
#   bench/recycle.sh                    # COUNT=10, BENCHTIME=1s, CPUS=1
#   COUNT=20 BENCHTIME=2s CPUS=2 bench/recycle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-10}
BENCHTIME=${BENCHTIME:-1s}
# One P by default: server and clients on one CPU, no cross-CPU wake-ups,
# so CPU per request varies by about 1-2% between runs instead of 5-20%.
CPUS=${CPUS:-1}
export PATH=$PATH:$(go env GOPATH)/bin
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
go test -run '^$' -bench 'BenchmarkWrap$' -benchmem -cpu "$CPUS" \
	-count "$COUNT" -benchtime "$BENCHTIME" ./pkg/server/recycle | tee "$out" >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	i = ++n[name]
	for (f = 3; f < NF; f += 2) v[name, $(f + 1), i] = $f
	if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
function median(name, unit,   i, j, a, t, c) {
	c = n[name]
	for (i = 1; i <= c; i++) a[i] = v[name, unit, i] + 0
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}
END {
	printf "%-34s %9s %8s %11s %8s %7s %9s\n", "benchmark (median of runs)", "ns/op", "÷ plain", "cpu-ns/op", "÷ plain", "B/op", "allocs/op"
	for (i = 1; i <= k; i++) {
		name = order[i]; w[name] = median(name, "ns/op"); c[name] = median(name, "cpu-ns/op")
	}
	for (i = 1; i <= k; i++) {
		name = order[i]; base = name; sub(/=[^=\/]+$/, "=plain", base)
		printf "%-34s %9.0f %7.3fx %11.0f %7.3fx %7.0f %9.0f\n", name, w[name], w[name] / w[base], c[name], (c[base] > 0 ? c[name] / c[base] : 0), median(name, "B/op"), median(name, "allocs/op")
	}
}' "$out"
if command -v benchstat >/dev/null; then
	echo
	benchstat -col /handler "$out"
fi
