#!/usr/bin/env bash
# kaload hammer next to ghz, unary gRPC against grpc-go's helloworld
# greeter_server (built from the grpc examples module), -c 50, kaload
# recording every RPC to -o. Two setups: defaults (nothing pinned) and
# pinned (server on CPU 1, each tool on CPU 0). Rounds alternate the order.
# Prints per setup the median RPC/s and CPU per RPC (user+sys of the tool's
# process / its RPCs) of each tool, and kaload's ratios to ghz.
#
#   bench/grpc.sh                        # 3 rounds of 8 s per setup
#   ROUNDS=5 DURATION=10 SETUPS=pinned bench/grpc.sh
#   KALOAD_OLD=/path/to/older/kaload bench/grpc.sh   # a third column: an older build
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-50}
SETUPS=${SETUPS:-"default pinned"}
EXAMPLES=${EXAMPLES:-google.golang.org/grpc/examples@v0.0.0-20260825154716-030ee8becb20}

PATH=$PATH:$(go env GOPATH)/bin
command -v ghz >/dev/null || { echo "grpc: ghz is not installed (go install github.com/bojand/ghz/cmd/ghz@latest)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "grpc: /usr/bin/time is needed for CPU figures (apt-get install -y time)" >&2; exit 2; }
. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

echo "building" >&2
if [ -n "${KALOAD:-}" ]; then cp "$KALOAD" "$work/kaload"; else VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"; fi
(cd "$work" && mkdir greeter && cd greeter && go mod init greeter >/dev/null 2>&1 &&
	go get "google.golang.org/grpc/examples/helloworld/greeter_server@${EXAMPLES#*@}" >/dev/null 2>&1 &&
	go build -o "$work/greeter-bin" google.golang.org/grpc/examples/helloworld/greeter_server)
proto=$(go env GOMODCACHE)/$EXAMPLES/helloworld/helloworld/helloworld.proto
[ -f "$proto" ] || { echo "grpc: no $proto" >&2; exit 1; }
tools=(kaload ghz)
if [ -n "${KALOAD_OLD:-}" ]; then cp "$KALOAD_OLD" "$work/kaload-old"; tools+=(kaload-old); fi

# run TOOL PIN ADDR: prints "RPCs seconds cpu_seconds"
run() {
	local tool=$1 pin=$2 addr=$3 out=$work/out cpu=$work/cpu n secs
	local pre=()
	[ -n "$pin" ] && pre=(taskset -c "$pin")
	case $tool in
	kaload | kaload-old)
		/usr/bin/time -f "%U %S" -o "$cpu" "${pre[@]}" "$work/$tool" hammer --url "grpc://$addr" \
			--call helloworld.Greeter/SayHello --proto "$proto" --data '{"name":"kaload"}' \
			-c "$CONNS" -d "${DURATION}s" -q -o "$work/run.kld" --format json >"$out" 2>/dev/null
		n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests"]-d["errors"], d["duration_seconds"])' "$out")
		;;
	ghz)
		/usr/bin/time -f "%U %S" -o "$cpu" "${pre[@]}" ghz --insecure --proto "$proto" \
			--call helloworld.Greeter/SayHello -d '{"name":"kaload"}' -c "$CONNS" --connections "$CONNS" \
			-z "${DURATION}s" "$addr" >"$out" 2>&1
		# ghz's few errors are its own cancellations at -z's end: count OK only
		n=$(awk '/^  Total:/ {t=$2} /\[OK\]/ {gsub(/[^0-9]/,"",$2); ok=$2} END {print ok+0, t+0}' "$out")
		;;
	esac
	echo "$n $(awk '{print $1+$2}' "$cpu")"
}


results=$work/results
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for setup in $SETUPS; do
	spin="" tpin=""
	if [ "$setup" = pinned ]; then spin=1 tpin=0; fi
	p=$(free_port)
	if [ -n "$spin" ]; then taskset -c "$spin" "$work/greeter-bin" -port "$p" >"$work/greeter.log" 2>&1 & else "$work/greeter-bin" -port "$p" >"$work/greeter.log" 2>&1 & fi
	gpid=$!
	pids+=($gpid)
	sleep 0.5
	n=${#tools[@]}
	for round in $(seq "$ROUNDS"); do
		for i in $(seq 0 $((n - 1))); do
			t=${tools[$(((i + round) % n))]}
			read -r rpcs secs cpu < <(run "$t" "$tpin" "127.0.0.1:$p")
			awk -v s="$setup" -v r="$round" -v t="$t" -v n="$rpcs" -v d="$secs" -v c="$cpu" 'BEGIN {
				printf "%s round %d %-10s %8d RPCs in %5.2f s: %7.0f RPC/s, %5.1f us CPU/RPC\n", s, r, t, n, d, (d > 0 ? n/d : 0), (n > 0 ? c/n*1e6 : 0) > "/dev/stderr"
				if (n > 0 && d > 0) printf "%s %s %f %f %d\n", s, t, n/d, c/n*1e6, r
				else printf "%s round %d %s: nothing measured\n", s, r, t > "/dev/stderr" }' >>"$results"
			sleep 1
		done
	done
	kill "$gpid" 2>/dev/null || true
	wait "$gpid" 2>/dev/null || true
done

echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo "unary SayHello, -c $CONNS, medians of $ROUNDS rounds of ${DURATION} s; kaload records every RPC to -o"
ratio_table "$results" setup ghz RPC ${SETUPS}
