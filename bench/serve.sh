#!/usr/bin/env bash
# kaload serve next to a bare net/http handler (bench/cmd/barehttp) and the
# original write-up's gin server (bench/gin, its own module) under wrk -t1,
# side by side: servers started once, rounds rotate the order. Prints per
# server the median req/s and the median CPU per request (user + system of
# the server process / requests), each with its ratio to the bare handler:
# the ratio of the medians and the median of the per-round ratios.
#
#   bench/serve.sh                      # 3 rounds of 5 s, -c 50
#   ROUNDS=5 DURATION=10 bench/serve.sh
#   PIN=1 bench/serve.sh                # servers on CPU 0, wrk on CPU 1
#
# serve-gogc100 is kaload serve with GOGC=100 in its environment, which
# turns off its heap floor: the same GC settings as the bare handler.
# bare-close100 is the bare handler answering "Connection: close" on every
# 100th request of a connection: the least any net/http server pays to
# recycle as often as serve-max100 (the accept, the new connection's
# set-up, the close, and wrk's reconnect), so serve-max100 is also compared
# with it.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}

command -v wrk >/dev/null || { echo "serve: wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit
srv_cpu=() wrk_cpu=()
if [ "${PIN:-0}" = 1 ]; then
	srv_cpu=(taskset -c 0) wrk_cpu=(taskset -c 1)
fi

echo "building" >&2
VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"
(cd "$root" && go build -o "$work/barehttp" ./bench/cmd/barehttp)
servers=(bare bare-close100 serve serve-max100 serve-gogc100)
if (cd "$root/bench/gin" && go build -o "$work/gin" .) >"$work/gin-build.log" 2>&1; then
	servers+=(gin)
else
	echo "serve: could not build bench/gin, gin skipped:" >&2
	tail -n 3 "$work/gin-build.log" >&2
fi

declare -A url pid
start() { # name command...
	local name=$1 p
	shift
	p=$(free_port)
	"${srv_cpu[@]}" "$@" --listen 127.0.0.1:$p --hostname bench >"$work/$name.log" 2>&1 &
	pids+=($!)
	pid[$name]=$!
	url[$name]=http://127.0.0.1:$p/
}
start bare "$work/barehttp"
start bare-close100 "$work/barehttp" --close-every 100
start serve "$work/kaload" serve
start serve-max100 "$work/kaload" serve --max-requests 100
start serve-gogc100 env GOGC=100 "$work/kaload" serve
[ -x "$work/gin" ] && start gin "$work/gin"
for s in "${servers[@]}"; do
	for _ in $(seq 50); do curl -fsS -o /dev/null "${url[$s]}" 2>/dev/null && break; sleep 0.1; done
	curl -fsS -o /dev/null "${url[$s]}" || { echo "$s did not come up" >&2; exit 1; }
done

# cpu PID: user + system clock ticks of the process.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=$work/results
: >"$results"
n=${#servers[@]}
for round in $(seq "$ROUNDS"); do
	for i in $(seq 0 $((n - 1))); do
		s=${servers[$(((i + round) % n))]}
		c0=$(cpu "${pid[$s]}")
		rps=$("${wrk_cpu[@]}" wrk -t1 -c "$CONNS" -d "${DURATION}s" "${url[$s]}" | awk '/^Requests\/sec:/ {print $2}')
		c1=$(cpu "${pid[$s]}")
		us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v r="${rps:-0}" -v d="$DURATION" 'BEGIN {printf "%.3f", (r > 0 ? c / hz * 1e6 / (r * d) : 0)}')
		echo "round $round $s: ${rps:-?} req/s, ${us} us CPU/req" >&2
		echo "$s ${rps:-0} $us $round" >>"$results"
		sleep 1
	done
done

echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); wrk -t1 -c $CONNS, medians of $ROUNDS rounds of ${DURATION} s"
med() { awk -v s="$1" -v f="$2" '$1==s {print $f}' "$results" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# rmed SERVER FIELD: the median over rounds of the server's value divided by
# the bare handler's in the same round (paired: slow drifts of the machine's
# load cancel).
rmed() {
	awk -v s="$1" -v f="$2" '$1=="bare" {b[$4]=$f} $1==s {v[$4]=$f} END {for (r in v) if (b[r] > 0) print v[r]/b[r]}' "$results" |
		sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
brps=$(med bare 2) bcpu=$(med bare 3)
printf "%-14s %12s %8s %8s %12s %8s %8s\n" server "req/s (med)" "÷ bare" "paired" "CPU us/req" "÷ bare" "paired"
for s in "${servers[@]}"; do
	awk -v s="$s" -v r="$(med "$s" 2)" -v c="$(med "$s" 3)" -v br="$brps" -v bc="$bcpu" -v pr="$(rmed "$s" 2)" -v pc="$(rmed "$s" 3)" \
		'BEGIN {printf "%-14s %12.0f %7.2fx %7.2fx %12.2f %7.2fx %7.2fx\n", s, r, (br > 0 ? r/br : 0), pr, c, (bc > 0 ? c/bc : 0), pc}'
done
echo "(÷ bare: ratio of the medians; paired: median over rounds of the ratio to bare in the same round)"
awk -v r="$(med serve-max100 2)" -v b="$(med bare-close100 2)" -v c="$(med serve-max100 3)" -v bc="$(med bare-close100 3)" \
	'BEGIN {printf "serve-max100 ÷ bare-close100: req/s %.2fx, CPU per request %.2fx\n", (b > 0 ? r/b : 0), (bc > 0 ? c/bc : 0)}'
