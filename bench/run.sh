#!/usr/bin/env bash
# Compare kaload hammer's engine with other HTTP load generators, side by side.
#
# Builds kaload, starts nginx (if installed) and `kaload serve` on loopback,
# then runs kaload hammer and every installed tool among wrk, hey, fortio,
# bombardier and vegeta against each target, in a rotating order, for
# several rounds. Prints the median requests/s and CPU seconds per 1k
# requests of each tool, and kaload's requests/s divided by the tool's.
#
#   bench/run.sh                 # 3 rounds of 5 s at -c 50
#   ROUNDS=5 DURATION=10 CONNS=50 bench/run.sh
#   TOOLS="kaload wrk" TARGETS=nginx bench/run.sh
#   PIN=1 bench/run.sh           # servers on CPU 0, each tool on CPU 1 only
#
# kaload records every response to a results file (-o), as in real use.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
TOOLS=${TOOLS:-"kaload kaload-allcpu kaload-1cpu wrk hey fortio bombardier vegeta"}
TARGETS=${TARGETS:-"nginx kaload-serve"}
PIN=${PIN:-0}

. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

gobin=$(go env GOPATH)/bin
PATH=$PATH:$gobin
have() { command -v "$1" >/dev/null 2>&1; }

# With PIN=1 every tool gets the same single CPU and the servers the other,
# so a tool cannot win by taking more of a shared machine.
server_cpu=() tool_cpu=()
if [ "$PIN" = 1 ]; then
	have taskset || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 2; }
	server_cpu=(taskset -c 0) tool_cpu=(taskset -c 1)
fi

NGINX_PORT=${NGINX_PORT:-$(free_port)}
SERVE_PORT=${SERVE_PORT:-$(free_port)}

echo "building kaload" >&2
VERSION=bench OUT="$work/kaload" "$root/scripts/build.sh"
kaload=$work/kaload

# --- targets ---------------------------------------------------------------
declare -A url
for t in $TARGETS; do
	case $t in
	nginx)
		if ! have nginx && [ ! -x /usr/sbin/nginx ]; then
			echo "nginx not installed; skipping that target (see bench/README.md)" >&2
			continue
		fi
		nginx_conf "$work/nginx" 4096 "" "127.0.0.1:$NGINX_PORT"
		"${server_cpu[@]}" "$(command -v nginx || echo /usr/sbin/nginx)" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
		pids+=($!)
		url[nginx]=http://127.0.0.1:$NGINX_PORT/
		;;
	kaload-serve)
		"${server_cpu[@]}" "$kaload" serve --listen 127.0.0.1:$SERVE_PORT --hostname bench >"$work/serve.log" 2>&1 &
		pids+=($!)
		url[kaload-serve]=http://127.0.0.1:$SERVE_PORT/
		;;
	*) echo "unknown target $t" >&2; exit 2 ;;
	esac
done
for t in "${!url[@]}"; do
	for _ in $(seq 50); do curl -fsS -o /dev/null "${url[$t]}" 2>/dev/null && break; sleep 0.1; done
	curl -fsS -o /dev/null "${url[$t]}" || { echo "target $t did not come up" >&2; exit 1; }
done

# --- tools -----------------------------------------------------------------
tools=()
for tool in $TOOLS; do
	case $tool in
	kaload | kaload-1cpu | kaload-allcpu) tools+=("$tool") ;;
	*) if have "$tool"; then tools+=("$tool"); else echo "$tool not installed; skipped" >&2; fi ;;
	esac
done

# run_tool TOOL URL: prints requests/s to stdout; its output goes to $work/out.
run_tool() {
	local tool=$1 u=$2 d=${DURATION}
	case $tool in
	kaload | kaload-1cpu | kaload-allcpu)
		# kaload: default flags (a target on this host gets 1 CPU by itself);
		# kaload-1cpu: --cpus 1 (wrk -t1's budget); kaload-allcpu: --cpus 0.
		local cpus=()
		[ "$tool" = kaload-1cpu ] && cpus=(--cpus 1)
		[ "$tool" = kaload-allcpu ] && cpus=(--cpus 0)
		"${tool_cpu[@]}" "$kaload" hammer --url "$u" -c "$CONNS" -d "${d}s" "${cpus[@]}" -o "$work/run.kld" --quiet --format json >"$work/out" 2>"$work/err"
		grep -o '"rps": *[0-9.e+]*' "$work/out" | head -1 | sed 's/.*: *//'
		;;
	wrk)
		"${tool_cpu[@]}" wrk -t1 -c "$CONNS" -d "${d}s" "$u" >"$work/out"
		awk '/^Requests\/sec:/ {print $2}' "$work/out"
		;;
	hey)
		"${tool_cpu[@]}" hey -c "$CONNS" -z "${d}s" "$u" >"$work/out"
		awk '/Requests\/sec:/ {print $2}' "$work/out"
		;;
	fortio)
		"${tool_cpu[@]}" fortio load -qps 0 -c "$CONNS" -t "${d}s" "$u" >"$work/out" 2>&1
		grep -o '[0-9.]* qps' "$work/out" | tail -1 | awk '{print $1}'
		;;
	bombardier)
		"${tool_cpu[@]}" bombardier -c "$CONNS" -d "${d}s" -p r "$u" >"$work/out"
		awk '/Reqs\/sec/ {print $2}' "$work/out"
		;;
	vegeta)
		echo "GET $u" | "${tool_cpu[@]}" vegeta attack -rate=0 -max-workers="$CONNS" -workers="$CONNS" -duration="${d}s" | vegeta report >"$work/out"
		awk -F'[ ,]+' '/^Requests/ {print $NF}' "$work/out"
		;;
	esac
}


tick=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=$work/results
: >"$results"
n=${#tools[@]}
for round in $(seq "$ROUNDS"); do
	for t in "${!url[@]}"; do
		for i in $(seq 0 $((n - 1))); do
			tool=${tools[$(((i + round) % n))]}   # rotate the order every round
			before=$(awk '{print $16+$17}' /proc/$$/stat)
			rps=$(run_tool "$tool" "${url[$t]}")
			after=$(awk '{print $16+$17}' /proc/$$/stat)
			cpu=$(awk -v a="$after" -v b="$before" -v k="$tick" 'BEGIN {printf "%.3f", (a-b)/k}')
			echo "round $round $t $tool: ${rps:-?} req/s, ${cpu} CPU s" >&2
			echo "$t $tool ${rps:-0} $cpu" >>"$results"
			sleep 1
		done
	done
done

# --- summary ---------------------------------------------------------------
echo
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
printf "%-13s %-13s %12s %14s %16s\n" target tool "req/s (med)" "CPU s/1k req" "kaload / tool"
for t in "${!url[@]}"; do
	kmed=$(awk -v t="$t" '$1==t && $2=="kaload" {print $3}' "$results" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
	for tool in "${tools[@]}"; do
		awk -v t="$t" -v tool="$tool" -v d="$DURATION" -v k="${kmed:-0}" '
			$1==t && $2==tool { r[++n]=$3; c[n]=($3>0 ? $4/($3*d/1000) : 0) }
			function med(x, m,  i, j, tmp) {
				for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { tmp = x[i]; x[i] = x[j]; x[j] = tmp }
				return m % 2 ? x[(m+1)/2] : (x[m/2] + x[m/2+1]) / 2
			}
			END {
				if (!n) exit
				rm = med(r, n); cm = med(c, n)
				printf "%-13s %-13s %12.0f %14.4f %16s\n", t, tool, rm, cm, (rm > 0 ? sprintf("%.2fx", k/rm) : "-")
			}' "$results"
	done
done
