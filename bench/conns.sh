#!/usr/bin/env bash
# Memory per keep-alive connection: kaload hammer (and wrk -t1 when
# installed) against nginx at 1k, 10k and 18k connections, side by side.
#
#   bench/conns.sh                       # 1000 10000 18000, 10 s each, 3 rounds
#   COUNTS="1000 18000" DURATION=8 ROUNDS=1 bench/conns.sh
#   KALOAD_OLD=path bench/conns.sh       # adds kaload-old: another build
#   TOOLS="kaload kaload-h2 kaload-ws" bench/conns.sh
#
# Tools: kaload and kaload-old (HTTP/1.1), wrk, kaload-h2 (--h2c, one
# HTTP/2 connection per slot, against nginx's h2c port) and kaload-ws (idle
# WebSockets, --idle: pings only, against a kaload serve of its own, opened
# at --connect-rate 5000/s and held for DURATION; its req/s is "-").
#
# Every tool's RSS is sampled every 0.2 s while it runs; its peak divided by
# the connection count is "KB/conn" (everything included: runtime, results
# file buffers). nginx (one worker) is the server: its RSS per connection is
# printed too. Each process stays under this machine's 20,000 open files.
# kaload records every response to a results file (-o), as in real use.
set -euo pipefail

COUNTS=${COUNTS:-"1000 10000 18000"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
TOOLS=${TOOLS:-"kaload wrk kaload-h2 kaload-ws"}

. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit
have() { command -v "$1" >/dev/null 2>&1; }

max=0
for n in $COUNTS; do (( n > max )) && max=$n; done
if (( max + 100 > $(ulimit -n) )); then
	echo "conns: $max connections need more open files than the limit $(ulimit -n)" >&2
	exit 2
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "conns: nginx is not installed (apt-get install -y nginx-light)" >&2; exit 2; }

echo "building kaload" >&2
VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"
kaload=$work/kaload

port=$(free_port)
h2port=$(free_port)
# h2c with prior knowledge on the second port.
nginx_conf "$work/nginx" 19800 "" "127.0.0.1:$port backlog=4096" "127.0.0.1:$h2port http2 backlog=4096"
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
url=http://127.0.0.1:$port/
for _ in $(seq 50); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$url" || { echo "nginx did not come up" >&2; exit 1; }
worker() { pgrep -P "$(cat "$work/nginx/nginx.pid")" | head -1; }

# kaload-ws needs a WebSocket server: a kaload serve of its own (its RSS is
# reported in the server column for those rows).
wsport=$(free_port)
if [[ " $TOOLS " == *" kaload-ws "* ]]; then
	"$kaload" serve --listen "127.0.0.1:$wsport" --hostname ws >"$work/serve.log" 2>&1 &
	wspid=$!
	pids+=("$wspid")
	for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$wsport/readyz" 2>/dev/null && break; sleep 0.1; done
fi

[ -n "${KALOAD_OLD:-}" ] && TOOLS="$TOOLS kaload-old"
tools=()
for t in $TOOLS; do
	if [[ $t == kaload* ]] || have "$t"; then tools+=("$t"); else echo "$t not installed; skipped" >&2; fi
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# measure TOOL N: prints "peakRSS_kB req/s serverRSS_kB"
measure() {
	local tool=$1 n=$2 pid peak=0 speak=0 r s w
	w=$(worker)
	[ "$tool" = kaload-ws ] && w=$wspid
	case $tool in
	kaload | kaload-old)
		local bin=$kaload
		[ "$tool" = kaload-old ] && bin=$KALOAD_OLD
		"$bin" hammer --url "$url" -c "$n" -d "${DURATION}s" -o "$work/run.kld" --quiet --format json >"$work/out" 2>"$work/err" &
		;;
	kaload-h2)
		"$kaload" hammer --h2c --url "http://127.0.0.1:$h2port/" -c "$n" -d "${DURATION}s" -o "$work/run.kld" --quiet --format json >"$work/out" 2>"$work/err" &
		;;
	kaload-ws)
		"$kaload" hammer --url "ws://127.0.0.1:$wsport/ws" --idle -c "$n" --connect-rate 5000 --ping-interval 20s \
			-d "$((DURATION + n / 5000 + 1))s" -o "$work/run.kld" --quiet --format json >"$work/out" 2>"$work/err" &
		;;
	wrk) wrk -t1 -c "$n" -d "${DURATION}s" "$url" >"$work/out" 2>&1 & ;;
	esac
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		r=$(rss "$pid"); (( r > peak )) && peak=$r
		s=$(rss "$w"); (( s > speak )) && speak=$s
		sleep 0.2
	done
	wait "$pid" || true
	case $tool in
	kaload-ws) r=- ;;
	kaload*) r=$(grep -o '"rps": *[0-9.e+]*' "$work/out" | head -1 | sed 's/.*: *//') ;;
	wrk) r=$(awk '/^Requests\/sec:/ {print $2}' "$work/out") ;;
	esac
	echo "$peak ${r:-0} $speak"
}

results=$work/results
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
	for n in $COUNTS; do
		k=${#tools[@]}
		for i in $(seq 0 $((k - 1))); do
			tool=${tools[$(((i + round) % k))]}
			read -r peak rps srv < <(measure "$tool" "$n")
			echo "round $round -c $n $tool: peak RSS $peak kB, $rps req/s, server $srv kB" >&2
			echo "$n $tool $peak $rps $srv" >>"$results"
			sleep 2 # nginx closes the last run's connections
		done
	done
done

echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); medians of $ROUNDS rounds, ${DURATION} s each"
printf "%7s %-10s %12s %9s %12s %12s %11s\n" conns tool "peak RSS MB" "KB/conn" "req/s" "kaload/tool" "server KB/c"
for n in $COUNTS; do
	kr=$(awk -v n="$n" '$1==n && $2=="kaload" {print $4}' "$results" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	for tool in "${tools[@]}"; do
		awk -v n="$n" -v tool="$tool" -v kr="${kr:-0}" '
			$1==n && $2==tool { p[++m]=$3; r[m]=$4; s[m]=$5 }
			function med(x, m,  i, j, t) {
				for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
				return x[int((m+1)/2)]
			}
			END {
				if (!m) exit
				pm = med(p, m); rm = med(r, m); sm = med(s, m)
				rs = (tool == "kaload-ws" ? "-" : sprintf("%.0f", rm))
				printf "%7d %-10s %12.1f %9.2f %12s %12s %11.2f\n", n, tool, pm/1024, pm*1.024/n, rs, (rm > 0 && tool != "kaload-ws" ? sprintf("%.2fx", kr/rm) : "-"), sm*1.024/n
			}' "$results"
	done
done
