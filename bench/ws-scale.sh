#!/usr/bin/env bash
# Hold many idle WebSockets with one kaload hammer against one kaload serve
# (separate processes, each under its own open-file limit) and report the
# memory each side spends per socket.
#
#   bench/ws-scale.sh                  # 18,000 sockets
#   SOCKETS=5000 RATE=1000 bench/ws-scale.sh
#
# Two figures per side: RSS / sockets at the end (everything included), and
# the slope between two points of the same run (SMALL sockets open, then all),
# from which the fixed cost drops out -- but the hammer starts every slot's
# goroutine at once, so its slope leaves out what a slot costs while it waits
# for its turn to connect. For the server the Go heap+stacks slope comes from
# its /metrics.
set -euo pipefail

SOCKETS=${SOCKETS:-18000}
SMALL=${SMALL:-1000}
RATE=${RATE:-2000}  # --connect-rate: sockets opened per second
HOLD=${HOLD:-10}    # seconds to hold every socket before measuring

. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

limit=$(ulimit -n)
if (( SOCKETS + 100 > limit )); then
	echo "ws-scale: $SOCKETS sockets need more open files than this shell's limit $limit" >&2
	exit 2
fi

(cd "$root" && go build -o "$work/kaload" ./cmd/kaload)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
metric() { # metric NAME: a value from the server's /metrics
	curl -fsS "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

"$work/kaload" serve --listen "127.0.0.1:$port" --hostname pod-a 2>"$work/serve.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

duration=$(( SOCKETS / RATE + HOLD + 20 ))
"$work/kaload" hammer --url "ws://127.0.0.1:$port/ws" --idle --rate 0 -c "$SOCKETS" \
	--connect-rate "$RATE" --ping-interval 20s -d "${duration}s" --timeout 30s \
	--quiet --format json -o "$work/ws.kld" >"$work/hammer.json" 2>"$work/hammer.log" &
hammer=$!
pids+=("$hammer")

open=0
wait_open() { # wait_open N: until the server holds N sockets
	local deadline=$(( SECONDS + 120 ))
	while (( SECONDS < deadline )); do
		open=$(metric kaload_websockets_open)
		open=${open%.*}
		(( ${open:-0} >= $1 )) && return 0
		sleep 0.2
	done
	echo "ws-scale: only ${open:-0} of $1 sockets open after 120s" >&2
	tail -5 "$work/hammer.log" >&2
	return 1
}

sample() { # prints: open server_rss_kb hammer_rss_kb server_heap_stack_bytes
	local heap stack
	heap=$(metric go_memstats_heap_inuse_bytes)
	stack=$(metric go_memstats_stack_inuse_bytes)
	echo "$(metric kaload_websockets_open) $(rss_kb "$server") $(rss_kb "$hammer") $(python3 -c "print(int(float('$heap')+float('$stack')))")"
}

wait_open "$SMALL"
read -r n1 s1 h1 g1 < <(sample)
wait_open "$SOCKETS"
sleep "$HOLD"
read -r n2 s2 h2 g2 < <(sample)
gor=$(metric go_goroutines)

wait "$hammer" || true
python3 - "$work/hammer.json" "$n1" "$s1" "$h1" "$g1" "$n2" "$s2" "$h2" "$g2" "$gor" <<'EOF'
import json, sys
path, n1, s1, h1, g1, n2, s2, h2, g2, gor = sys.argv[1:]
n1, n2 = float(n1), float(n2)
d = n2 - n1
s = json.load(open(path))
sk = s.get("sockets") or {}
print(f"sockets held: {int(n2)} (server gauge); hammer summary: {sk.get('opened')} opened, "
      f"{sk.get('held_at_end')} held at the end, {sk.get('failed_handshakes')} failed handshakes, closed {sk.get('closed')}")
print(f"server:  RSS {int(s2)/1024:.0f} MiB at {int(n2)} sockets = {int(s2)*1024/n2:,.0f} bytes per socket all in; "
      f"slope {(int(s2)-int(s1))*1024/d:,.0f} bytes RSS and {(int(g2)-int(g1))/d:,.0f} bytes Go heap+stacks per socket; {gor} goroutines")
print(f"hammer:  RSS {int(h2)/1024:.0f} MiB at {int(n2)} sockets = {int(h2)*1024/n2:,.0f} bytes per socket all in; "
      f"slope {(int(h2)-int(h1))*1024/d:,.0f} bytes RSS per socket")
EOF
