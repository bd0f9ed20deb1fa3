#!/bin/sh
# Interleaved A/B of issue 10's mixed load (mixed_v1.lua, 64 connections) between two builds, each run on
# a fresh copy of one pristine 100k-document store (writes during a run change the store).
# Usage: scripts/loadtest/mixed-ab.sh BUILD_A BUILD_B WORK_DIR [ROUNDS] [SECONDS]
# The first call ingests WORK_DIR/pristine with BUILD_A's quiver (the stores must be readable by both).
# Prints one line per run: build, req/s, p50/p90/p99/max, errors. CONNECTIONS overrides 64; THREADS_A and
# THREADS_B set each side's server workers (default: serve's own).
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
if [ ! -d "$work/pristine/load" ]; then
  rm -rf "$work/pristine"
  "$a/bin/quiver" ingest --data "$work/pristine" --collection load --input "$work/docs.jsonl" \
    --schema "$here/schema.json" --batch 2000 >/dev/null
fi
i=0
while [ "$i" -lt "$rounds" ]; do
  for side in A B; do
    if [ "$side" = A ]; then build=$a; threads=${THREADS_A:-}; else build=$b; threads=${THREADS_B:-}; fi
    rm -rf "$work/store"
    cp -a "$work/pristine" "$work/store"
    out=$(REUSE_STORE=1 SCRIPT=mixed_v1.lua CONNECTIONS="${CONNECTIONS:-64}" THREADS="$threads" \
      "$here/run.sh" "$build" "$work" "$secs" 2>&1)
    rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *//p')
    lat=$(printf '%s\n' "$out" | grep '^p50 ' || true)
    err=$(printf '%s\n' "$out" | grep '^requests ' || true)
    non2xx=$(printf '%s\n' "$out" | grep 'Non-2xx' || true)
    echo "== $build threads ${threads:-default} req/s $rps | $lat | $err $non2xx"
  done
  i=$((i + 1))
done
