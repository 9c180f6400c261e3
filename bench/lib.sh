# Sourced by the bench scripts: the repository root, a scratch directory,
# background processes (append their pids to pids) stopped on exit, a free
# port, and the side-by-side table of medians and ratios.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# nginx_conf DIR CONNECTIONS HTTP_DIRECTIVES LISTEN...: writes DIR/nginx.conf,
# the reference nginx every script measures against: one worker, keep-alive
# without a request limit, "return 200" with the backend header, one server
# per LISTEN argument ("127.0.0.1:8080", "127.0.0.1:8443 ssl http2", ...).
# HTTP_DIRECTIVES go in the http block (certificates, HTTP/2 settings).
nginx_conf() {
	local dir=$1 conns=$2 extra=$3 listen
	shift 3
	mkdir -p "$dir/logs"
	{
		printf 'worker_processes 1;\nworker_rlimit_nofile %d;\ndaemon off;\npid %s/nginx.pid;\n' $((conns + 100)) "$dir"
		printf 'error_log %s/logs/error.log warn;\nevents { worker_connections %d; }\n' "$dir" "$conns"
		printf 'http {\n\taccess_log off;\n\tkeepalive_requests 1000000;\n\tkeepalive_timeout 60s;\n'
		[ -n "$extra" ] && printf '\t%s\n' "$extra"
		for listen in "$@"; do
			printf '\tserver {\n\t\tlisten %s;\n' "$listen"
			printf '\t\tlocation / { add_header Accept-Request-hostname nginx; return 200 "ok\\n"; }\n\t}\n'
		done
		printf '}\n'
	} >"$dir/nginx.conf"
}

# free_port: a loopback TCP port nobody listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ratio_table FILE COLUMN REF UNIT GROUP...: FILE holds one line per run,
# "GROUP TOOL RATE CPU_US ROUND" (a run that measured nothing writes none).
# Prints, per group and tool of the array tools, the median rate and CPU
# per UNIT and their ratios to the REF tool's medians in the same group,
# then per group kaload's rate over REF's round by round. A figure with no
# data is "-", never a zero.
ratio_table() {
	local file=$1 col=$2 ref=$3 unit=$4
	shift 4
	awk -v col="$col" -v ref="$ref" -v unit="$unit" -v groups="$*" -v order="${tools[*]}" '
	function med(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n ? a[int((n + 1) / 2)] : ""
	}
	function ratio(x, y) { return (x != "" && y != "" && y > 0) ? sprintf("%.2fx", x / y) : "-" }
	function num(x, f) { return x == "" ? "-" : sprintf(f, x) }
	{ rate[$1, $2] = rate[$1, $2] " " $3; cpu[$1, $2] = cpu[$1, $2] " " $4; r[$1, $2, $5] = $3; if ($5 > rounds) rounds = $5 }
	END {
		ng = split(groups, g, " "); nt = split(order, t, " ")
		printf "%-8s %-10s %10s %12s %13s %12s\n", col, "tool", unit "/s", "us CPU/" unit, unit "/s÷" ref, "CPU÷" ref
		for (i = 1; i <= ng; i++) {
			rr = med(rate[g[i], ref]); rc = med(cpu[g[i], ref])
			for (j = 1; j <= nt; j++) {
				x = med(rate[g[i], t[j]]); c = med(cpu[g[i], t[j]])
				printf "%-8s %-10s %10s %12s %13s %12s\n", g[i], t[j], num(x, "%.0f"), num(c, "%.1f"), ratio(x, rr), ratio(c, rc)
			}
		}
		for (i = 1; i <= ng; i++) {
			line = g[i] " per-round " unit "/s ratios (kaload ÷ " ref "):"
			for (k = 1; k <= rounds; k++) line = line " " ratio(r[g[i], "kaload", k], r[g[i], ref, k])
			print line
		}
	}' "$file"
}
