#!/usr/bin/env bash
# Hostile peers and files against 'kaload hammer' and 'kaload report' (issue 16,
# items 5-12): prints, for each case, the figure a reader needs.
#
#   bench/abuse-hammer.sh                       # this tree's kaload
#   KALOAD_OLD=/path/to/old/kaload bench/abuse-hammer.sh   # also the figures before
#
# Needs: go, /usr/bin/time (GNU). Everything runs on loopback and is bounded in
# time (each case at most ~30 s). Root is needed only for the full-disk case
# (a 1 MiB tmpfs); it is skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	mountpoint -q "$work/full" 2>/dev/null && umount "$work/full"
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/kaload" ./cmd/kaload
go build -o "$work/hostile" ./bench/cmd/hostile
new=$work/kaload
old=${KALOAD_OLD:-}

# peak RSS in MB of a command (stdout and stderr discarded), then its exit code
# (124: stopped by timeout)
peak() {
	local code=0
	/usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/err" || code=$?
	printf '%6.0f MB (exit %d)' "$(($(tail -1 "$work/rss") / 1024))" "$code"
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_hostile() { # mode -> URL in $url
	local p
	p=$(port)
	# shellcheck disable=SC2086 # $1 is a mode and its flags
	"$work/hostile" -listen "127.0.0.1:$p" -mode $1 &
	pids+=($!)
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
	url=http://127.0.0.1:$p/
}

echo "== 7. 100,000 distinct backend names (a server that sends a unique backend header value)"
start_hostile unique-backend
args=(hammer --url "$url" -n 100000 -c 8 --quiet --format json)
echo "hammer peak RSS, --max-backends 1000 (default): $(peak "$new" "${args[@]}")"
echo "hammer peak RSS, --max-backends -1 (no cap)   : $(peak "$new" "${args[@]}" --max-backends -1)"
[ -n "$old" ] && echo "hammer peak RSS, before the fix               : $(peak "$old" "${args[@]}")"
"$new" "${args[@]}" 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print("summary: %d requests, %d backend rows, folded_backends %d" % (s["requests"], len(s["backends"]), s.get("folded_backends", 0)))'

echo "-- the same with 8,000-byte names"
start_hostile "unique-backend -name-len 8000"
args=(hammer --url "$url" -n 100000 -c 8 --quiet --format json)
echo "hammer peak RSS: $(peak "$new" "${args[@]}")"
[ -n "$old" ] && echo "before the fix : $(peak "$old" "${args[@]}")"

echo "== 10. kaload report on a crafted JSON Lines file naming 200,000 backends"
"$work/hostile" -mode unique-jsonl -n 200000 -o "$work/crafted.jsonl"
echo "file: $(($(stat -c %s "$work/crafted.jsonl") / 1024 / 1024)) MB"
for f in json table; do
	echo "report --format $f peak RSS, default cap: $(peak "$new" report "$work/crafted.jsonl" --format "$f")"
	[ -n "$old" ] && echo "report --format $f peak RSS, before      : $(peak timeout 60 "$old" report "$work/crafted.jsonl" --format "$f") "
done
"$work/hostile" -mode unique-kld -n 200000 -o "$work/crafted.kld"
echo "binary file of the same: $(($(stat -c %s "$work/crafted.kld") / 1024)) KB; report --format json peak RSS: $(peak "$new" report "$work/crafted.kld" --format json)"
printf '{"kaload_results":1,"header":{}}\n{"seq":0,"start_ns":0,"latency_ns":1,"backend":"%s"}\n{"kaload_trailer":{"records":1}}\n' \
	"$(head -c 15000000 /dev/zero | tr '\0' n)" >"$work/longname.jsonl"
echo "report of a 15 MB backend name: $(peak "$new" report "$work/longname.jsonl"); $(tail -1 "$work/err")"
[ -n "$old" ] && echo "before the fix                : $(peak "$old" report "$work/longname.jsonl")"

echo "== 11. crafted records"
printf '{"kaload_results":1,"header":{}}\n{"seq":0,"start_ns":0,"latency_ns":1000}\n{"seq":1,"start_ns":-5,"latency_ns":1000}\n{"seq":2,"start_ns":1000,"latency_ns":1000}\n{"kaload_trailer":{"records":3}}\n' >"$work/negative.jsonl"
printf '{"kaload_results":1,"header":{}}\n{"seq":0,"start_ns":0,"latency_ns":4611686018427387904}\n{"kaload_trailer":{"records":1}}\n' >"$work/latency.jsonl"
for f in negative latency; do
	code=0
	"$new" report "$work/$f.jsonl" >/dev/null 2>"$work/err" || code=$?
	echo "$f: exit $code: $(tail -1 "$work/err")"
	[ -n "$old" ] && echo "$f before the fix: $("$old" report "$work/$f.jsonl" --format json 2>&1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print("exit 0, trailer", sys.argv[1], "records, report counts", s["requests"], "requests, duration_seconds", s["duration_seconds"])' "$(grep -o '"records":[0-9]*' "$work/$f.jsonl" | cut -d: -f2)")"
done

echo "== 8. HTTP/2 CONTINUATION flood, hammer --h2c -c 32 for 5 s"
start_hostile continuation-flood
args=(hammer --url "$url" --h2c -c 32 -d 5s --timeout 2s --quiet --format json)
echo "hammer peak RSS: $(peak "$new" "${args[@]}")"
[ -n "$old" ] && echo "before the fix : $(peak "$old" "${args[@]}")"

echo "== 9. -o - into a pipe that closes after 100 bytes"
start_hostile unique-backend
set +o pipefail
"$new" hammer --url "$url" -c 2 -d 10s -o - --quiet 2>"$work/err" | head -c 100 >/dev/null
code=${PIPESTATUS[0]}
set -o pipefail
echo "exit $code; $(grep -c Verdict "$work/err") summary on stderr; $(grep -m1 -o 'output closed[^;]*' "$work/err" || echo 'no message')"
if [ -n "$old" ]; then
	set +o pipefail
	"$old" hammer --url "$url" -c 2 -d 10s -o - --quiet 2>"$work/err" | head -c 100 >/dev/null
	code=${PIPESTATUS[0]}
	set -o pipefail
	echo "before the fix: exit $code; $(grep -c Verdict "$work/err") summary on stderr"
fi

echo "== 5. -o on a full filesystem (1 MiB tmpfs)"
if [ "$(id -u)" = 0 ] && mkdir -p "$work/full" && mount -t tmpfs -o size=1m tmpfs "$work/full" 2>/dev/null; then
	began=$(date +%s.%N)
	code=0
	"$new" hammer --url "$url" -c 2 -d 30s -o "$work/full/run.jsonl" --quiet --format json >"$work/out" 2>"$work/err" || code=$?
	took=$(python3 -c "import time; print('%.1f' % (time.time() - $began))")
	echo "exit $code after ${took}s of a 30s run; summary: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"], "requests")' "$work/out" 2>/dev/null || echo none)"
	echo "stderr at once: $(grep -m1 'stopping the run' "$work/err" | cut -c1-150)"
	"$new" report "$work/full/run.jsonl" --format json >"$work/out" 2>"$work/err" &&
		echo "partial file: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"], "requests readable")' "$work/out"); $(grep -m1 -o 'truncated[^;]*' "$work/err")"
else
	echo "skipped: needs root to mount a tmpfs"
fi

echo "== 6. a second Ctrl-C against a server that never answers (--timeout 10s)"
start_hostile silent
abort_run() { # binary label
	local began code=0 h took
	began=$(date +%s.%N)
	"$1" hammer --url "$url" -c 4 -d 1m --timeout 10s --quiet -o "$work/abort.kld" >/dev/null 2>"$work/err" &
	h=$!
	sleep 1; kill -INT $h; sleep 1; kill -INT $h
	wait $h || code=$?
	took=$(python3 -c "import time; print('%.1f' % (time.time() - $began))")
	echo "$2: exit $code ${took}s after start (Ctrl-C at 1 s and 2 s); $("$new" report "$work/abort.kld" --format json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"], "requests,", s["error_kinds"])')"
}
abort_run "$new" now
[ -n "$old" ] && abort_run "$old" "before the fix"
