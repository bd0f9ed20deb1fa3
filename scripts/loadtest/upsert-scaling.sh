#!/bin/sh
# Acknowledged-write scaling of `quiver serve`: upserts/s of 1-document batches (every request one
# durable write, fsynced before its 200) with 1, 4 and 16 concurrent connections (wrk).
# Usage: scripts/loadtest/upsert-scaling.sh BUILD_DIR WORK_DIR [SECONDS] [CONNECTIONS...]
#   BUILD_DIR: a build with bin/quiver (e.g. build/release); WORK_DIR: scratch space (wiped).
# Each connection count runs against a fresh empty collection (schema.json: BM25 text, attributes, a
# 32-dim HNSW vector field). Prints one line per connection count and the ratio to 1 connection.
set -eu
build=$1
work=$2
secs=${3:-10}
shift 3 2>/dev/null || shift $#
conns=${*:-"1 4 16"}
here=$(cd "$(dirname "$0")" && pwd)
port=${PORT:-6398}
base=""
mkdir -p "$work"
for c in $conns; do
  rm -rf "$work/store"
  "$build/bin/quiver" serve --data "$work/store" --host 127.0.0.1 --port "$port" --threads 32 >"$work/serve.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf -X PUT -H 'Content-Type: application/json' --data-binary "@$here/schema.json" \
    "http://127.0.0.1:$port/collections/load" >/dev/null
  threads=$c
  [ "$threads" -gt 4 ] && threads=4
  # The server's CPU time (user + system) over the run, per acknowledged write: steadier than the rate
  # on a shared machine (work still queued in memory at the end is not counted).
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(wrk -t "$threads" -c "$c" -d "${secs}s" -s "$here/upsert.lua" "http://127.0.0.1:$port")
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  line=$(echo "$out" | grep '^RESULT')
  rate=$(echo "$line" | sed 's/.* rate=\([0-9.]*\).*/\1/')
  # documents, writes per log fsync (group commit), writes that stalled behind flushes, segments
  # (in memory) and merges at the end of the run.
  stats=$(curl -sf "http://127.0.0.1:$port/collections/load" | python3 -c '
import json, sys
s = json.load(sys.stdin).get("stats", {})
keys = ["documents", "write_stalls", "segments", "memory_segments", "merges"]
per_sync = s.get("writes", 0) / max(s.get("wal_syncs", 0), 1)
print(" ".join("%s=%s" % (k, s.get(k, "?")) for k in keys) + " writes_per_fsync=%.1f" % per_sync)' 2>/dev/null ||
    echo "documents=?")
  [ -z "$base" ] && base=$rate
  ratio=$(python3 -c "print(f'{float($rate)/float($base):.2f}')")
  reqs=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
  cpu=$(python3 -c "print(round(($cpu1 - $cpu0) / $(getconf CLK_TCK) * 1e6 / max(1, $reqs)))")
  # The same including the flush of what the run left in memory (its merges' work all counted): steadier
  # between builds whose merges fall behind differently (write_stalls).
  curl -sf -X POST "http://127.0.0.1:$port/collections/load/flush" >/dev/null || true
  cpu2=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  cpu_all=$(python3 -c "print(round(($cpu2 - $cpu0) / $(getconf CLK_TCK) * 1e6 / max(1, $reqs)))")
  echo "connections=$c upserts_per_s=$rate vs_1_connection=${ratio}x $stats server_cpu_us_per_write=$cpu with_flush=$cpu_all $line"
  kill $pid
  wait $pid 2>/dev/null || true
  trap - EXIT
done
