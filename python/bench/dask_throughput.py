#!/usr/bin/python3
"""quiver.distributed build and query throughput on a Dask LocalCluster with 1 and 2 worker processes
(one thread each): GloVe-100k (or its first --rows) in --shards HNSW shards (cosine, M=16,
ef_construction=--efc), then --repeat passes of the 1000 queries (k=10, ef=--ef) as one batch each.

  PYTHONPATH=build/release/python /usr/bin/python3 python/bench/dask_throughput.py [--rows 100000] \
      [--shards 4] [--efc 100] [--ef 64] [--repeat 3] [--workers 1,2]
"""
import argparse
import os
import tempfile
import time

import numpy as np
from dask.distributed import Client, LocalCluster

import quiver.distributed as qd
from common import glove, recall_at


def worker_cpu(client) -> float:
    """CPU seconds used so far by all worker processes (robust to other load on a shared machine)."""
    return sum(client.run(time.process_time).values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--efc", type=int, default=100)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    a = ap.parse_args()
    base, xq, gt = glove()
    tmp = tempfile.mkdtemp(prefix="quiver-dask-")
    src = os.path.join(tmp, "base.npy")
    np.save(src, np.ascontiguousarray(base[: a.rows]))
    if a.rows != base.shape[0]:
        import quiver
        flat = quiver.FlatIndex(100, "cosine")
        flat.add(base[: a.rows])
        gt = flat.search(xq, 10)[1]
    print(f"{a.rows} x 100 GloVe vectors, {a.shards} HNSW shards (M=16, ef_construction={a.efc}), "
          f"{len(xq)} queries, k=10, ef={a.ef}")
    # The reference the acceptance names: one HNSW over the whole corpus at the same settings.
    import quiver
    single = quiver.HnswIndex(100, "cosine", M=16, ef_construction=a.efc, threads=1)
    t0 = time.perf_counter()
    single.add(np.ascontiguousarray(base[: a.rows]))
    single_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, lab = single.search(xq, 10, ef=a.ef, threads=1)
    single_qps = len(xq) / (time.perf_counter() - t0)
    print(f"  one HNSW in this process (1 thread): build {single_build:6.1f} s; query {single_qps:7.0f} QPS; "
          f"recall@10 {recall_at(lab, gt, 10):.4f}")
    del single
    for n in [int(x) for x in a.workers.split(",")]:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            out = os.path.join(tmp, f"shards-{n}")
            t0, c0 = time.perf_counter(), worker_cpu(client)
            m = qd.build(client, src, out, a.shards, index="hnsw", metric="cosine", M=16, ef_construction=a.efc)
            build_s, build_cpu = time.perf_counter() - t0, worker_cpu(client) - c0
            index = qd.ShardedIndex(client, out)
            index.warm()
            best, best_cpu = 0.0, 0.0
            for _ in range(a.repeat):
                t0, c0 = time.perf_counter(), worker_cpu(client)
                _, lab = index.search(xq, 10, ef=a.ef)
                best = max(best, len(xq) / (time.perf_counter() - t0))
                best_cpu = max(best_cpu, len(xq) / (worker_cpu(client) - c0))
            rec = recall_at(lab, gt, 10)
            per_shard = np.mean([s["build_seconds"] for s in m["shards"]])
            print(f"  {n} worker(s): build {build_s:6.1f} s ({a.rows / build_s:7.0f} vectors/s, "
                  f"{a.rows / build_cpu:7.0f} per worker CPU-s, {per_shard:.1f} s per shard); "
                  f"query {best:7.0f} QPS ({best_cpu:7.0f} per worker CPU-s); recall@10 {rec:.4f}")


if __name__ == "__main__":
    main()
