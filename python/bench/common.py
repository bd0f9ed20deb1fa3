"""Shared helpers of the Python measurement scripts (GloVe-100k from ../shared/data or $QUIVER_DATA_DIR)."""
import os
import pathlib
import time

import numpy as np

import quiver

ROOT = pathlib.Path(__file__).resolve().parents[2]


def data_dir() -> pathlib.Path:
    env = os.environ.get("QUIVER_DATA_DIR")
    return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


def glove():
    d = data_dir() / "glove-6b-100d"
    base, _ = quiver.read_vectors(str(d / "base.fvecs"))
    queries, _ = quiver.read_vectors(str(d / "query.fvecs"))
    gt = quiver.read_ivecs(str(d / "groundtruth_angular.ivecs"))
    return base, queries, gt


def recall_at(labels: np.ndarray, gt: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(labels[i, :k]) & set(gt[i, :k])) / k for i in range(labels.shape[0])]))


def glove_hnsw(cache: str, M: int = 16, ef_construction: int = 200, threads: int = 0):
    """The GloVe-100k cosine HNSW (built once, then opened from `cache`)."""
    if os.path.exists(cache):
        return quiver.HnswIndex.open(cache)
    base, _, _ = glove()
    idx = quiver.HnswIndex(100, "cosine", M=M, ef_construction=ef_construction, threads=threads)
    t0 = time.perf_counter()
    idx.add(base)
    print(f"built HNSW M={M} ef_construction={ef_construction} in {time.perf_counter() - t0:.1f} s")
    idx.save(cache)
    return idx


def smallest_ef(idx, queries, gt, target: float, k: int = 10, efs=(10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)):
    for ef in efs:
        r = recall_at(idx.search(queries, k, ef=ef, threads=0)[1], gt, k)
        if r >= target:
            return ef, r
    return efs[-1], r
