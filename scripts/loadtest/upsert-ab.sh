#!/bin/sh
# Interleaved A/B of acknowledged-write scaling (upsert-scaling.sh) between two builds: each round runs
# BUILD_A then BUILD_B, each with 1 and 16 connections on a fresh collection, so both meet the host's
# noisy phases alike. Usage: scripts/loadtest/upsert-ab.sh BUILD_A BUILD_B WORK_DIR [ROUNDS] [SECONDS]
# (BUILD_*: directories with bin/quiver). Prints upsert-scaling.sh's lines under one header per run.
set -eu
a=$1
b=$2
work=$3
rounds=${4:-3}
secs=${5:-10}
here=$(cd "$(dirname "$0")" && pwd)
i=0
while [ "$i" -lt "$rounds" ]; do
  for side in A B; do
    if [ "$side" = A ]; then build=$a; else build=$b; fi
    echo "== $side $build round $((i + 1)) $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    "$here/upsert-scaling.sh" "$build" "$work/$side" "$secs" 1 16
  done
  i=$((i + 1))
done
