#!/bin/sh
# What each kind of request of issue 10's mix costs: each kind of mixed_v1.lua alone (KIND=...), 64
# connections for SECONDS on a fresh copy of WORK_DIR/pristine (as mixed-ab.sh makes it), and the
# server's CPU time (user + system, from /proc) divided by the requests answered. Prints one line per
# kind and writes WORK_DIR/kind-cost.txt. The mix's cost per request is the kinds' costs weighted by
# their shares (hybrid 10%, text 40%, vector, batch, upsert, patch and scroll 10% each).
# Usage: scripts/loadtest/kind-cost.sh BUILD_DIR WORK_DIR [SECONDS=20] [KINDS="hybrid text ..."]
set -eu
build=$1
work=$2
secs=${3:-20}
kinds=${4:-"hybrid text vector batch upsert patch scroll"}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$work/pristine/load" ] || { echo "kind-cost.sh: $work/pristine/load missing (make it with mixed-ab.sh)" >&2; exit 2; }
tick=$(getconf CLK_TCK)
: > "$work/kind-cost.txt"
for kind in $kinds; do
  rm -rf "$work/store"
  mkdir "$work/store"
  cp -a "$work/pristine/." "$work/store/"  # the contents: a symlinked pristine is copied, not linked
  sync  # the copy written back now, not during the run (see mixed-ab.sh)
  "$build/bin/quiver" serve --data "$work/store" --host 127.0.0.1 --port 6399 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:6399/healthz >/dev/null && break; sleep 0.2; done
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  KIND=$kind wrk -t 2 -c 64 -d "${secs}s" -s "$here/mixed_v1.lua" http://127.0.0.1:6399 > "$work/kind-$kind.txt" 2>&1
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  n=$(sed -n 's/^requests \([0-9]*\),.*/\1/p' "$work/kind-$kind.txt")
  rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/kind-$kind.txt")
  awk -v k="$kind" -v n="$n" -v r="$rps" -v t="$((t1 - t0))" -v hz="$tick" \
    'BEGIN { printf "%-7s %9d requests  %9.1f req/s  %.3f ms CPU per request\n", k, n, r, 1000 * t / hz / n }' |
    tee -a "$work/kind-cost.txt"
done
