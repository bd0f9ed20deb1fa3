#!/bin/sh
# Load test of `quiver serve`: 100k documents, then 60 s of wrk (4 connections, 2 threads) mixing
# searches and upserts against 127.0.0.1. Usage: scripts/loadtest/run.sh BUILD_DIR WORK_DIR [SECONDS]
# REUSE_STORE=1 skips the ingest when WORK_DIR/store already holds the collection. SCRIPT=mixed_v1.lua
# runs the v1 mix (search, batch search, upsert, patch, scroll); CONNECTIONS sets wrk's connections (4).
# THREADS sets the server's request workers (default: serve's own, 8; the runs up to session 8 used 4).
set -eu
build=$1
work=$2
secs=${3:-60}
here=$(cd "$(dirname "$0")" && pwd)
data=${QUIVER_DATA_DIR:-$here/../../../shared/data}
mkdir -p "$work"
[ -f "$work/docs.jsonl" ] || python3 "$here/gen_docs.py" "$data/scifact/corpus.jsonl" 100000 "$work/docs.jsonl"
if [ "${REUSE_STORE:-0}" != 1 ] || [ ! -d "$work/store/load" ]; then
rm -rf "$work/store"
/usr/bin/time -f "ingest: %e s, max RSS %M KiB" "$build/bin/quiver" ingest --data "$work/store" --collection load \
  --input "$work/docs.jsonl" --schema "$here/schema.json" --batch 2000
fi
"$build/bin/quiver" serve --data "$work/store" --host 127.0.0.1 --port 6399 ${THREADS:+--threads "$THREADS"} &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:6399/healthz >/dev/null && break; sleep 0.2; done
wrk -t 2 -c "${CONNECTIONS:-4}" -d "${secs}s" --latency -s "$here/${SCRIPT:-mixed.lua}" http://127.0.0.1:6399
curl -s http://127.0.0.1:6399/collections/load | head -c 600; echo
curl -s http://127.0.0.1:6399/metrics | grep -E '^quiver_http_requests_total|^quiver_collection' || true
kill $pid
wait $pid || true
