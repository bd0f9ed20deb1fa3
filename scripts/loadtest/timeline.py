#!/usr/bin/python3
"""Per-second throughput and latency of a mixed_v1.lua run, from its LAT_DUMP file.

Usage: timeline.py LAT_DUMP_FILE
Prints one line per second of the run (requests completed, p50 and p99 in ms), then the whole run's
p50/p99. A tail that comes from a stretch of the run (a merge, a write stall) shows as seconds whose
throughput falls and whose p99 rises, which the run's overall percentiles cannot tell apart from a
uniformly wide distribution.
"""
import collections
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            kind, end_us, lat_us = line.split()
            rows.append((kind, int(end_us), int(lat_us) / 1000.0))
    if not rows:
        sys.exit("no requests in " + sys.argv[1])
    t0 = min(r[1] for r in rows)
    by_second = collections.defaultdict(list)
    for _, end_us, ms in rows:
        by_second[(end_us - t0) // 1_000_000].append(ms)

    def pct(v, p):
        return v[min(len(v) - 1, int(len(v) * p / 100))]

    print("second  requests  p50 ms  p99 ms")
    for s in sorted(by_second):
        v = sorted(by_second[s])
        print(f"{s:6d}  {len(v):8d}  {pct(v, 50):6.1f}  {pct(v, 99):6.1f}")
    v = sorted(r[2] for r in rows)
    print(f"run: {len(v)} requests, p50 {pct(v, 50):.1f} ms, p99 {pct(v, 99):.1f} ms")


if __name__ == "__main__":
    main()
