#!/usr/bin/env bash
# Cost of 'kaload report' on a large results file, this tree against a
# baseline build, side by side: CPU seconds, records per CPU-second and peak
# memory of one process limited to one core (GOMAXPROCS=1), medians of ROUNDS
# rounds that alternate which build goes first. Exits 1 when this tree is a
# regression: under 0.95x the baseline's records per CPU-second, or a peak
# RSS above 1.1x the baseline's plus 2 MB; 2 when a build's CPU is below
# what time(1) resolves (raise N). "own RSS" is the peak minus the 'kaload
# version' RSS: what reading the file adds to the process the binary makes.
#
#   bench/report.sh                 # 10M records, 5 rounds, against BASE
#   N=1000000 ROUNDS=3 bench/report.sh
#   BASE=HEAD~5 bench/report.sh     # any git ref; BASE= (empty) skips it
#
# The default baseline is the commit issue 11 measured "about 31 million
# records per CPU-second, 15 MB peak" against. Both builds read the same
# file, written by the baseline's own generator (older formats stay
# readable; a newer one would not be readable by the baseline).
set -euo pipefail

N=${N:-10000000}
ROUNDS=${ROUNDS:-5}
BASE=${BASE-57eaec1}

. "$(dirname "$0")/lib.sh" # root, work, pids, cleanup on exit

echo "building this tree" >&2
# The release build's flags (scripts/build.sh, which the baseline may not have).
build() { CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1" ./cmd/kaload; }
(cd "$root" && build "$work/kaload" && go build -o "$work/genresults" ./bench/cmd/genresults)
builds=(this)
gen=$work/genresults
if [ -n "$BASE" ]; then
	echo "building the baseline $BASE" >&2
	mkdir -p "$work/base"
	git -C "$root" archive "$BASE" | tar -x -C "$work/base"
	(cd "$work/base" && build "$work/kaload-base" && go build -o "$work/genresults-base" ./bench/cmd/genresults)
	builds=(this base)
	gen=$work/genresults-base
fi

"$gen" -n "$N" -o "$work/results.kld"
size=$(stat -c %s "$work/results.kld")
awk -v n="$N" -v s="$size" 'BEGIN {printf "file: %d records, %.1f MB, %.1f bytes/record\n", n, s/1e6, s/n}'

bin() { if [ "$1" = base ]; then echo "$work/kaload-base"; else echo "$work/kaload"; fi; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/rounds"
for round in $(seq "$ROUNDS"); do
	order=("${builds[@]}")
	if (( round % 2 == 0 )) && (( ${#builds[@]} == 2 )); then order=(base this); fi
	for b in "${order[@]}"; do
		out=$(GOMAXPROCS=1 /usr/bin/env time -f '%U %S %M' "$(bin "$b")" report "$work/results.kld" --format json 2>&1 >/dev/null | tail -n 1)
		read -r user sys maxkb <<<"$out"
		cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u+s}')
		echo "round $round $b: $cpu s CPU, $((maxkb / 1024)) MB peak" >&2
		# The binary's fixed cost: what the same process holds before it reads a record.
		base_kb=$(/usr/bin/env time -f '%M' "$(bin "$b")" version 2>&1 >/dev/null | tail -n 1)
		echo "$b $cpu $maxkb $base_kb" >>"$work/rounds"
	done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "kaload report, GOMAXPROCS=1, $N records, medians of $ROUNDS rounds; load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
printf "%-6s %10s %14s %12s %18s %14s\n" build "CPU s" "records/CPU-s" "peak RSS MB" "'version' RSS MB" "own RSS MB"
for b in "${builds[@]}"; do
	cpu=$(awk -v b="$b" '$1==b {print $2}' "$work/rounds" | median)
	kb=$(awk -v b="$b" '$1==b {print $3}' "$work/rounds" | median)
	vkb=$(awk -v b="$b" '$1==b {print $4}' "$work/rounds" | median)
	printf -v "cpu_$b" %s "$cpu"
	printf -v "kb_$b" %s "$kb"
	printf -v "vkb_$b" %s "$vkb"
	# own: what reading the file adds to the process the binary makes (peak minus 'version').
	awk -v b="$b" -v c="$cpu" -v k="$kb" -v v="$vkb" -v n="$N" 'BEGIN {printf "%-6s %10.2f %14.1fM %12.1f %18.1f %14.1f\n", b, c, (c > 0 ? n/c/1e6 : 0), k/1024, v/1024, (k-v)/1024}'
done
[ -z "$BASE" ] && exit 0
# Speed is records per CPU-second: base CPU / this CPU.
awk -v ct="$cpu_this" -v cb="$cpu_base" -v kt="$kb_this" -v kb="$kb_base" -v vt="$vkb_this" -v vb="$vkb_base" -v base="$BASE" 'BEGIN {
	if (ct <= 0 || cb <= 0) { print "not measured: a build used under 10 ms of CPU (time'"'"'s resolution); raise N"; exit 2 }
	speed = cb / ct; mem = (kb > 0 ? kt / kb : 0)
	printf "this ÷ base (%s): records per CPU-second %.2fx, peak RSS %.2fx ('"'"'version'"'"' RSS %.2fx, own RSS %+.1f MB)\n", base, speed, mem, (vb > 0 ? vt / vb : 0), ((kt - vt) - (kb - vb)) / 1024
	bad = 0
	if (speed < 0.95) { print "REGRESSION: records per CPU-second under 0.95x the baseline"; bad = 1 }
	if (kt > kb * 1.1 + 2048) { print "REGRESSION: peak RSS above 1.1x the baseline + 2 MB"; bad = 1 }
	if (!bad) print "no regression"
	exit bad
}'
