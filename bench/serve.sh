#!/usr/bin/env bash
# kaload serve next to a bare net/http handler (bench/cmd/barehttp) under
# wrk -t1, side by side: servers started once, rounds alternate the order.
# Prints median req/s per server and its ratio to the bare handler.
#
#   bench/serve.sh                      # 3 rounds of 5 s, -c 50
#   ROUNDS=5 DURATION=10 bench/serve.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}

command -v wrk >/dev/null || { echo "serve: wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

echo "building" >&2
VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"
(cd "$root" && go build -o "$work/barehttp" ./bench/cmd/barehttp)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -A url
p=$(port); "$work/barehttp" --listen 127.0.0.1:$p --hostname bench >"$work/bare.log" 2>&1 & pids+=($!)
url[bare]=http://127.0.0.1:$p/
p=$(port); "$work/kaload" serve --listen 127.0.0.1:$p --hostname bench >"$work/serve.log" 2>&1 & pids+=($!)
url[serve]=http://127.0.0.1:$p/
p=$(port); "$work/kaload" serve --listen 127.0.0.1:$p --hostname bench --max-requests 100 >"$work/serve100.log" 2>&1 & pids+=($!)
url[serve-max100]=http://127.0.0.1:$p/
servers=(bare serve serve-max100)
for s in "${servers[@]}"; do
	for _ in $(seq 50); do curl -fsS -o /dev/null "${url[$s]}" 2>/dev/null && break; sleep 0.1; done
	curl -fsS -o /dev/null "${url[$s]}" || { echo "$s did not come up" >&2; exit 1; }
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=$work/results
: >"$results"
n=${#servers[@]}
for round in $(seq "$ROUNDS"); do
	for i in $(seq 0 $((n - 1))); do
		s=${servers[$(((i + round) % n))]}
		rps=$(wrk -t1 -c "$CONNS" -d "${DURATION}s" "${url[$s]}" | awk '/^Requests\/sec:/ {print $2}')
		echo "round $round $s: ${rps:-?} req/s" >&2
		echo "$s ${rps:-0}" >>"$results"
		sleep 1
	done
done

echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); wrk -t1 -c $CONNS, medians of $ROUNDS rounds of ${DURATION} s"
bmed=$(awk '$1=="bare" {print $2}' "$results" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf "%-14s %12s %10s\n" server "req/s (med)" "÷ bare"
for s in "${servers[@]}"; do
	m=$(awk -v s="$s" '$1==s {print $2}' "$results" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	awk -v s="$s" -v m="$m" -v b="$bmed" 'BEGIN {printf "%-14s %12.0f %10.2fx\n", s, m, (b > 0 ? m/b : 0)}'
done
