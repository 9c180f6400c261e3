#!/usr/bin/env bash
# Where kaload's fixed memory goes, this tree against a baseline build (the
# release build's flags for both): the RSS of a kaload process that has run
# every package initialiser and waits ('kaload report' opening a FIFO nobody
# writes), split by mapping: the binary's code, its read-only data (type
# descriptors, itabs, the pc-line table), its writable data, and anonymous
# memory (heap, stacks). Next to it the size of the code and read-only data
# in the file, and the packages whose initialisers run (GODEBUG=inittrace=1)
# with the heap they allocate. bench/report.sh's "'version' RSS" column is
# this fixed cost; this script says what it is made of.
#
#   bench/startup.sh                # against BASE (default: the commit issue 11 measured)
#   BASE=HEAD~5 bench/startup.sh
#   BASE= bench/startup.sh          # this tree only
#
# File-backed pages count in RSS once mapped, and the kernel maps up to 16
# pages around each page a process touches when they are in the page cache
# (fault-around): an initialiser that touches one page of code maps 64 KB.
set -euo pipefail

BASE=${BASE-57eaec1}

. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

build() { CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1" ./cmd/kaload; }
echo "building this tree" >&2
(cd "$root" && build "$work/kaload-this")
builds=(this)
if [ -n "$BASE" ]; then
	echo "building the baseline $BASE" >&2
	mkdir -p "$work/base"
	git -C "$root" archive "$BASE" | tar -x -C "$work/base"
	(cd "$work/base" && build "$work/kaload-base")
	builds=(this base)
fi

# section_mb BIN NAME...: the summed size of the ELF sections, in MB.
section_mb() {
	local bin=$1
	shift
	size -A "$bin" | awk -v names=" $* " 'index(names, " " $1 " ") {s += $2} END {printf "%.1f", s / 1048576}'
}

printf "%-6s %7s %9s %9s %9s %9s %10s %10s %7s %12s\n" build "RSS MB" "code MB" "rodata MB" "data MB" "anon MB" "code file" "ro file" inits "init heap KB"
for b in "${builds[@]}"; do
	bin=$work/kaload-$b
	fifo=$work/fifo-$b
	mkfifo "$fifo"
	"$bin" report "$fifo" >/dev/null 2>&1 &
	pid=$!
	pids+=("$pid")
	# Wait until one of its threads blocks in open(2) on the FIFO (the
	# kernel's wait_for_partner): every initialiser has run.
	ready=
	for _ in $(seq 100); do
		cat /proc/"$pid"/task/*/wchan 2>/dev/null | grep -q partner && ready=1 && break
		sleep 0.05
	done
	if [ -z "$ready" ]; then
		# Its memory now is not the start-up cost: say so, print no figure.
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		printf "%-6s not measured: it never waited on the FIFO within 5 s\n" "$b"
		continue
	fi
	rss=$(awk -v bin="$bin" '
		/^[0-9a-f]+-[0-9a-f]+ / { perms = $2; path = $6; cls = "anon"
			if (path == bin) cls = (perms ~ /x/) ? "code" : (perms ~ /w/) ? "data" : "rodata" }
		/^Rss:/ { kb[cls] += $2; total += $2 }
		END { printf "%.1f %.1f %.1f %.1f %.1f", total / 1024, kb["code"] / 1024, kb["rodata"] / 1024, kb["data"] / 1024, kb["anon"] / 1024 }' "/proc/$pid/smaps")
	kill -KILL "$pid" 2>/dev/null || true # it handles SIGTERM, and waits in open(2)
	wait "$pid" 2>/dev/null || true
	read -r inits heap < <(GODEBUG=inittrace=1 "$bin" version 2>&1 >/dev/null |
		awk '/^init / {n++; for (i = 1; i < NF; i++) if ($(i + 1) == "bytes,") h += $i} END {printf "%d %d\n", n, h / 1024}')
	read -r total code ro data anon <<<"$rss"
	printf "%-6s %7s %9s %9s %9s %9s %10s %10s %7s %12s\n" "$b" "$total" "$code" "$ro" "$data" "$anon" \
		"$(section_mb "$bin" .text)" "$(section_mb "$bin" .rodata .typelink .itablink .gopclntab)" "$inits" "$heap"
done
echo "(code/rodata/data: the binary's pages mapped in this process; 'file': the sections' size; inits: packages with initialisation work)"
