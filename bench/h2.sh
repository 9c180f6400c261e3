#!/usr/bin/env bash
# kaload hammer next to h2load over HTTP/2 against nginx (http2 on, one
# worker): cleartext prior knowledge (--h2c) and TLS (--http2), one stream
# per connection (h2load -m 1) and ten (-m 10, kaload --streams 10), -c 50.
# Rounds alternate the order. Prints per mode the median req/s and CPU per
# request (user+sys of the tool's process / its requests) of each tool and
# kaload's ratios to h2load. PIN=1 puts nginx on CPU 1 and each tool on CPU 0.
#
#   bench/h2.sh                               # 3 rounds of 5 s per mode
#   ROUNDS=5 DURATION=10 MODES="h2c-m1 tls-m1" PIN=1 bench/h2.sh
#   KALOAD_OLD=/path/to/older/kaload bench/h2.sh   # a third column: an older build
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
MODES=${MODES:-"h2c-m1 h2c-m10 tls-m1 tls-m10"}

command -v h2load >/dev/null || { echo "h2: h2load is not installed (apt-get install -y nghttp2-client)" >&2; exit 2; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "h2: nginx is not installed (apt-get install -y nginx-light)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "h2: /usr/bin/time is needed for CPU figures (apt-get install -y time)" >&2; exit 2; }
. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

echo "building" >&2
if [ -n "${KALOAD:-}" ]; then cp "$KALOAD" "$work/kaload"; else VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"; fi
tools=(kaload h2load)
if [ -n "${KALOAD_OLD:-}" ]; then cp "$KALOAD_OLD" "$work/kaload-old"; tools+=(kaload-old); fi
spin=() tpin=()
if [ "${PIN:-0}" = 1 ]; then spin=(taskset -c 1) tpin=(taskset -c 0); fi

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
	-subj /CN=127.0.0.1 >/dev/null 2>&1
h2c_port=$(free_port) tls_port=$(free_port)
# nginx 1.22: "listen ... http2" on a plain listener is h2c with prior knowledge.
nginx_conf "$work/nginx" 4096 "http2_max_concurrent_streams 128; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;" \
	"127.0.0.1:$h2c_port http2" "127.0.0.1:$tls_port ssl http2"
"${spin[@]}" "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 50); do curl -fsS --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$h2c_port/" 2>/dev/null && break; sleep 0.1; done
curl -fsS --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$h2c_port/" || { echo "nginx did not come up" >&2; cat "$work/nginx/logs/error.log" >&2; exit 1; }

# run TOOL MODE: prints "requests seconds cpu_seconds"
run() {
	local tool=$1 mode=$2 out=$work/out cpu=$work/cpu n url flags=() m=1
	case $mode in
	h2c-*) url=http://127.0.0.1:$h2c_port/ flags=(--h2c) ;;
	tls-*) url=https://127.0.0.1:$tls_port/ flags=(--http2 --insecure) ;;
	esac
	m=${mode#*-m}
	[ "$m" = 1 ] || flags+=(--streams "$m") # an older kaload without --streams runs the -m1 modes only
	case $tool in
	kaload | kaload-old)
		/usr/bin/time -f "%U %S" -o "$cpu" "${tpin[@]}" "$work/$tool" hammer --url "$url" "${flags[@]}" \
			-c "$CONNS" -d "${DURATION}s" -q --format json >"$out" 2>/dev/null || true
		n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests"]-d["errors"], d["duration_seconds"])' "$out" 2>/dev/null || echo "0 0")
		;;
	h2load)
		/usr/bin/time -f "%U %S" -o "$cpu" "${tpin[@]}" h2load -c "$CONNS" -m "$m" -D "$DURATION" "$url" >"$out" 2>&1 || true
		# "requests: N total, N started, N done, N succeeded, ..." and "finished in 5.00s, ..."
		n=$(awk '/^requests:/ {ok=$8} /^finished in/ {t=$3; sub(/s,$/, "", t)} END {print ok+0, t+0}' "$out")
		;;
	esac
	echo "$n $(awk '{print $1+$2}' "$cpu")"
}


results=$work/results
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for mode in $MODES; do
	n=${#tools[@]}
	for round in $(seq "$ROUNDS"); do
		for i in $(seq 0 $((n - 1))); do
			t=${tools[$(((i + round) % n))]}
			read -r reqs secs cpu < <(run "$t" "$mode")
			awk -v s="$mode" -v r="$round" -v t="$t" -v n="$reqs" -v d="$secs" -v c="$cpu" 'BEGIN {
				printf "%s round %d %-10s %8d requests in %5.2f s: %7.0f req/s, %5.1f us CPU/req\n", s, r, t, n, d, (d > 0 ? n/d : 0), (n > 0 ? c/n*1e6 : 0) > "/dev/stderr"
				if (n > 0 && d > 0) printf "%s %s %f %f %d\n", s, t, n/d, c/n*1e6, r
				else printf "%s round %d %s: nothing measured\n", s, r, t > "/dev/stderr" }' >>"$results"
			sleep 1
		done
	done
done

echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); pinned: ${PIN:-0}"
echo "nginx (1 worker, http2), -c $CONNS, medians of $ROUNDS rounds of ${DURATION} s; -mN = h2load -m N = kaload --streams N"
ratio_table "$results" mode h2load req ${MODES}
