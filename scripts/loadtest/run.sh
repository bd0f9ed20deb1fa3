#!/bin/sh
# Load test of `quiver serve`: 100k documents, then 60 s of wrk (4 connections, 2 threads) mixing
# searches and upserts against 127.0.0.1. Usage: scripts/loadtest/run.sh BUILD_DIR WORK_DIR [SECONDS]
# REUSE_STORE=1 skips the ingest when WORK_DIR/store already holds the collection. SCRIPT=mixed_v1.lua
# runs the v1 mix (search, batch search, upsert, patch, scroll); CONNECTIONS sets wrk's connections (4).
# THREADS sets the server's request workers (default: serve's own, 8; the runs up to session 8 used 4);
# SERVE_ARGS adds `quiver serve` options (e.g. "--write-threads 4 --read-nice 0").
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
# shellcheck disable=SC2086 # SERVE_ARGS: extra `quiver serve` options, split on spaces
"$build/bin/quiver" serve --data "$work/store" --host 127.0.0.1 --port 6399 ${THREADS:+--threads "$THREADS"} \
  ${SERVE_ARGS:-} &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:6399/healthz >/dev/null && break; sleep 0.2; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks0=$(cpu_ticks)
wrk -t 2 -c "${CONNECTIONS:-4}" -d "${secs}s" --latency -s "$here/${SCRIPT:-mixed.lua}" http://127.0.0.1:6399
# The server's CPU time (user + system, all threads, merges included) during wrk's run: with wrk's request
# count, the CPU cost of a request, which the host's other load disturbs far less than latency.
awk -v a="$ticks0" -v b="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "server cpu: %.2f s\n", (b - a) / hz}'
curl -s http://127.0.0.1:6399/collections/load | head -c 600; echo
curl -s http://127.0.0.1:6399/metrics > "$work/metrics.txt" || true
grep -E '^quiver_http_requests_total|^quiver_collection' "$work/metrics.txt" || true
# Mean time in the handler per route (after the worker queue; wrk's latency adds the queue wait).
awk '/^quiver_http_request_duration_seconds_(sum|count)/ {
    r = $0; sub(/^[^"]*"/, "", r); sub(/".*/, "", r); sub(/^\/v1/, "", r); sub(/^\/collections\/\{name\}/, "", r)
    if (r == "") r = "/"
    if ($0 ~ /_sum/) sum[r] = $NF; else n[r] = $NF }
  END {line = "handler ms:"; for (r in n) if (n[r] > 0) line = line sprintf(" %s %.2f", r, 1000 * sum[r] / n[r]); print line}' \
  "$work/metrics.txt"
kill $pid
wait $pid || true
