#!/usr/bin/python3
"""Per-query overhead of the Python binding: HNSW search on GloVe-100k (cosine, M=16, ef_construction=200)
at the smallest ef reaching recall@10 >= 0.95, three ways over the SAME index object in one process:

  C++ loop     one index->search() per query, timed in C++ (what `quiver bench ann` measures)
  Python 1-q   for q in xq: index.search(q, 10, ef=ef, threads=1)
  Python batch index.search(xq, 10, ef=ef, threads=1)

Runs are interleaved and the best of --repeat kept, with wall-clock QPS and QPS per thread-CPU-second
(robust to other processes on a shared machine). Usage:

  PYTHONPATH=build/release/python /usr/bin/python3 python/bench/binding_overhead.py [--repeat 5] \
      [--index /tmp/glove-hnsw.qvr]
"""
import argparse
import time

import numpy as np

import quiver
from common import glove, glove_hnsw, smallest_ef


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--index", default="/tmp/quiver-glove-hnsw-m16-efc200.qvr")
    ap.add_argument("--target", type=float, default=0.95)
    a = ap.parse_args()
    _, xq, gt = glove()
    idx = glove_hnsw(a.index)
    ef, rec = smallest_ef(idx, xq, gt, a.target)
    print(f"GloVe-100k, {len(xq)} queries, ef={ef}: recall@10 {rec:.4f}; simd={quiver.simd_level()}")
    best = {"C++ loop": (0, 0), "Python 1-q": (0, 0), "Python batch": (0, 0)}
    want = None
    rows = [xq[i] for i in range(len(xq))]
    def cpp_loop():
        labels, wall, cpu = quiver._quiver._bench_search_loop(idx, xq, 10, ef)
        return labels, wall, cpu

    def python_single():
        t0, c0 = time.perf_counter(), time.thread_time()
        got = np.stack([idx.search(q, 10, ef=ef, threads=1)[1] for q in rows])
        return got, time.perf_counter() - t0, time.thread_time() - c0

    def python_batch():
        t0, c0 = time.perf_counter(), time.thread_time()
        _, lab = idx.search(xq, 10, ef=ef, threads=1)
        return lab, time.perf_counter() - t0, time.thread_time() - c0

    paths = [("C++ loop", cpp_loop), ("Python 1-q", python_single), ("Python batch", python_batch)]
    for r in range(a.repeat):
        for name, fn in paths[r % 3:] + paths[:r % 3]:  # rotate the order: no path always runs first
            labels, wall, cpu = fn()
            want = labels if want is None else want
            assert np.array_equal(labels, want), name  # the same graph answers the same
            best[name] = max(best[name], (len(xq) / wall, len(xq) / cpu))
    ref_wall, ref_cpu = best["C++ loop"]
    print(f"{'path':<14}{'QPS':>10}{'QPS/CPU-s':>12}{'C++/this (wall)':>18}{'C++/this (CPU)':>16}")
    for name, (qps, cpu_qps) in best.items():
        print(f"{name:<14}{qps:>10.0f}{cpu_qps:>12.0f}{ref_wall / qps:>18.3f}{ref_cpu / cpu_qps:>16.3f}")
    print("(acceptance: Python 1-q within 1.15x, batched within 1.05x of the C++ loop)")


if __name__ == "__main__":
    main()
