#!/usr/bin/env bash
# Cost of 'kaload report' on a large results file: CPU seconds and peak memory
# of one process limited to one core (GOMAXPROCS=1), median of ROUNDS runs.
# The issue's budget: under 2 s per 10 million records, memory independent of
# the record count.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000000}
ROUNDS=${ROUNDS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

VERSION=bench OUT="$work/kaload" scripts/build.sh
go run ./bench/cmd/genresults -n "$N" -o "$work/results.kld"
ls -l "$work/results.kld" | awk -v n="$N" '{printf "file: %d records, %.1f MB, %.1f bytes/record\n", n, $5/1e6, $5/n}'

cpu=() rss=()
for _ in $(seq "$ROUNDS"); do
  out=$(GOMAXPROCS=1 /usr/bin/env time -f '%U %S %M' "$work/kaload" report "$work/results.kld" --format json 2>&1 >/dev/null | tail -n 1)
  read -r user sys maxkb <<<"$out"
  cpu+=("$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')")
  rss+=("$maxkb")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "kaload report, GOMAXPROCS=1, $ROUNDS rounds: median CPU $(median "${cpu[@]}") s (all: ${cpu[*]}), median peak RSS $(( $(median "${rss[@]}") / 1024 )) MB"
