#!/bin/sh
# Profiles `quiver serve` under issue 10's mixed v1 load (mixed_v1.lua, 64 connections): perf samples the
# server process (call graphs) for the middle of the run, then prints the top symbols and the CPU split by
# thread name (request workers, quiver-merge, event loops).
# Usage: scripts/loadtest/profile-mixed.sh BUILD_DIR WORK_DIR [SECONDS]
# WORK_DIR/pristine (as mixed-ab.sh makes it) is copied to WORK_DIR/store first when present; otherwise the
# 100k-document store is ingested. THREADS sets the server's request workers.
set -eu
command -v perf >/dev/null || { echo "profile-mixed.sh needs perf (Debian package linux-perf)" >&2; exit 2; }
build=$1
work=$2
secs=${3:-30}
here=$(cd "$(dirname "$0")" && pwd)
data=${QUIVER_DATA_DIR:-$here/../../../shared/data}
mkdir -p "$work"
[ -f "$work/docs.jsonl" ] || python3 "$here/gen_docs.py" "$data/scifact/corpus.jsonl" 100000 "$work/docs.jsonl"
rm -rf "$work/store"
if [ -d "$work/pristine/load" ]; then
  cp -a "$work/pristine" "$work/store"
  sync  # the copy written back now, not 30 s into the run (see mixed-ab.sh)
else
  "$build/bin/quiver" ingest --data "$work/store" --collection load --input "$work/docs.jsonl" \
    --schema "$here/schema.json" --batch 2000 >/dev/null
fi
"$build/bin/quiver" serve --data "$work/store" --host 127.0.0.1 --port 6399 ${THREADS:+--threads "$THREADS"} &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:6399/healthz >/dev/null && break; sleep 0.2; done
wrk -t 2 -c "${CONNECTIONS:-64}" -d "${secs}s" --latency -s "$here/mixed_v1.lua" http://127.0.0.1:6399 > "$work/wrk.txt" &
wpid=$!
sleep 5
perf record -F ${FREQ:-499} ${CALLGRAPH:--g} -o "$work/perf.data" -p $pid -- sleep $((secs - 10)) 2>/dev/null
wait $wpid
grep -E '^Requests/sec|^p50|^requests' "$work/wrk.txt"
curl -s http://127.0.0.1:6399/collections/load | head -c 700; echo
kill $pid
wait $pid || true
trap - EXIT
echo "== CPU by thread name"
perf report -i "$work/perf.data" --no-children --sort comm -g none 2>/dev/null | grep -v "^#" | grep -v "^$" | head -12
echo "== top symbols (self)"
perf report -i "$work/perf.data" --no-children --sort symbol -g none 2>/dev/null | grep -v "^#" | grep -v "^$" | grep '%' | sed 's/  \+/ /g' | cut -c1-160 | head -45
