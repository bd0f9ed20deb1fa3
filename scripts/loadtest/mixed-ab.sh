#!/bin/sh
# Interleaved A/B of issue 10's mixed load (mixed_v1.lua, 64 connections) between two builds, each run on
# a fresh copy of one pristine 100k-document store (writes during a run change the store).
# Usage: scripts/loadtest/mixed-ab.sh BUILD_A BUILD_B WORK_DIR [ROUNDS] [SECONDS]
# The first call ingests WORK_DIR/pristine with BUILD_A's quiver (the stores must be readable by both).
# SEPARATE_STORES=1 ingests one pristine store per side with its own quiver (WORK_DIR/pristine-A and
# pristine-B), for builds whose segment formats differ (each side then reads the format it writes).
# Prints two lines per run: build, req/s, p50/p90/p99/max, errors; then the server's CPU seconds and
# milliseconds per request, mean handler times per route, segments and write stalls at the end; with
# mixed_v1.lua, a third line of latency percentiles per request kind. CONNECTIONS overrides 64, SCRIPT
# mixed_v1.lua (search_v1.lua: its text searches alone, no writes); THREADS_A and
# THREADS_B set each side's server workers (default: serve's own), SERVE_ARGS_A and SERVE_ARGS_B
# other `quiver serve` options.
set -eu
a=$1
b=$2
work=$3
rounds=${4:-3}
secs=${5:-30}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
data=${QUIVER_DATA_DIR:-$here/../../../shared/data}
[ -f "$work/docs.jsonl" ] || python3 "$here/gen_docs.py" "$data/scifact/corpus.jsonl" 100000 "$work/docs.jsonl"
ingest() {  # ingest BUILD DIR
  if [ ! -d "$2/load" ]; then
    rm -rf "$2"
    "$1/bin/quiver" ingest --data "$2" --collection load --input "$work/docs.jsonl" \
      --schema "$here/schema.json" --batch 2000 >/dev/null
  fi
}
if [ "${SEPARATE_STORES:-0}" = 1 ]; then
  ingest "$a" "$work/pristine-A"
  ingest "$b" "$work/pristine-B"
else
  ingest "$a" "$work/pristine"
fi
i=0
while [ "$i" -lt "$rounds" ]; do
  for side in A B; do
    if [ "$side" = A ]; then
      build=$a; threads=${THREADS_A:-}; args=${SERVE_ARGS_A:-}
    else
      build=$b; threads=${THREADS_B:-}; args=${SERVE_ARGS_B:-}
    fi
    rm -rf "$work/store"
    if [ "${SEPARATE_STORES:-0}" = 1 ]; then
      cp -a "$work/pristine-$side" "$work/store"
    else
      cp -a "$work/pristine" "$work/store"
    fi
    # The copy is dirty page cache: written back 30 s later (vm.dirty_expire_centisecs), it held every
    # log fdatasync, and so all 64 connections, for 150-280 ms in each run (session 22). Synced first.
    sync
    out=$(REUSE_STORE=1 SCRIPT="${SCRIPT:-mixed_v1.lua}" CONNECTIONS="${CONNECTIONS:-64}" THREADS="$threads" SERVE_ARGS="$args" \
      "$here/run.sh" "$build" "$work" "$secs" 2>&1)
    rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *//p')
    lat=$(printf '%s\n' "$out" | grep '^p50 ' || true)
    err=$(printf '%s\n' "$out" | grep '^requests ' || true)
    non2xx=$(printf '%s\n' "$out" | grep 'Non-2xx' || true)
    handler=$(printf '%s\n' "$out" | grep '^handler ms:' || true)
    kinds=$(printf '%s\n' "$out" | grep '^per kind' || true)
    cpu=$(printf '%s\n' "$out" | sed -n 's/^server cpu: \([0-9.]*\) s$/\1/p')
    nreq=$(printf '%s\n' "$out" | sed -n 's/^requests \([0-9]*\),.*/\1/p')
    per=$(awk -v c="$cpu" -v n="$nreq" 'BEGIN {if (n > 0) printf "%.3f", 1000 * c / n}')
    stats=$(printf '%s\n' "$out" | grep -o '"segments":[0-9]*,"memory_segments":[0-9]*\|"write_stalls":[0-9]*' | tr '\n' ' ')
    echo "== $build threads ${threads:-default} ${args} req/s $rps | $lat | $err $non2xx"
    echo "   server cpu ${cpu} s, ${per} ms/request | $handler | $stats"
    [ -z "$kinds" ] || echo "   $kinds"
  done
  i=$((i + 1))
done
