#!/usr/bin/python3
"""Throughput of HNSW search from 1 and 2 Python threads (the GIL is released inside search), on
GloVe-100k (cosine, M=16, ef_construction=200) at the ef of recall@10 >= 0.95. Each thread runs whole
passes over the 1000 queries, one search call per query (threads=1 inside), for --seconds.

  PYTHONPATH=build/release/python /usr/bin/python3 python/bench/threads.py [--seconds 10] [--batched]
"""
import argparse
import threading
import time

from common import glove, glove_hnsw, smallest_ef


def run(idx, xq, ef, nthreads, seconds, batched):
    counts = [0] * nthreads
    stop = time.perf_counter() + seconds
    rows = [xq[i] for i in range(len(xq))]

    def worker(t):
        while time.perf_counter() < stop:
            if batched:
                idx.search(xq, 10, ef=ef, threads=1)
            else:
                for q in rows:
                    idx.search(q, 10, ef=ef, threads=1)
            counts[t] += len(xq)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(counts) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batched", action="store_true", help="one call per pass instead of one per query")
    ap.add_argument("--index", default="/tmp/quiver-glove-hnsw-m16-efc200.qvr")
    a = ap.parse_args()
    _, xq, gt = glove()
    idx = glove_hnsw(a.index)
    ef, rec = smallest_ef(idx, xq, gt, 0.95)
    one = run(idx, xq, ef, 1, a.seconds, a.batched)
    two = run(idx, xq, ef, 2, a.seconds, a.batched)
    print(f"ef={ef} (recall@10 {rec:.4f}), {'batched' if a.batched else 'single-query'} calls:")
    print(f"  1 thread : {one:8.0f} QPS")
    print(f"  2 threads: {two:8.0f} QPS  ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
