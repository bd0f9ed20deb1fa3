"""Shared fixtures of the Python suite (run through ctest: PYTHONPATH points at build/<type>/python)."""
import os
import pathlib

import numpy as np
import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("QUIVER_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))


def data_dir() -> pathlib.Path:
    """Real data: $QUIVER_DATA_DIR, or ../shared/data beside the source tree."""
    env = os.environ.get("QUIVER_DATA_DIR")
    return pathlib.Path(env) if env else SOURCE_DIR.parent / "shared" / "data"


def need(path: pathlib.Path) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"data not found: {path} (set QUIVER_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def glove():
    """GloVe-100k: (base, queries, ground truth top-100 for cosine) as float32 / int32 arrays."""
    import quiver
    d = need(data_dir() / "glove-6b-100d")
    base, _ = quiver.read_vectors(str(d / "base.fvecs"))
    queries, _ = quiver.read_vectors(str(d / "query.fvecs"))
    gt = quiver.read_ivecs(str(d / "groundtruth_angular.ivecs"))
    return base, queries, gt


@pytest.fixture(scope="session")
def encode_fixtures() -> pathlib.Path:
    return SOURCE_DIR / "tests" / "data" / "encode"


def random_matrix(rows: int, dim: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)


def brute_force(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "l2"):
    """Exact top-k in float64 (ties by lower label): the independent reference."""
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "l2":
        d = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None, :]
    elif metric == "ip":
        d = 1 - q @ b.T
    else:
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = 1 - qn @ bn.T
    labels = np.tile(np.arange(b.shape[0]), (q.shape[0], 1))
    order = np.lexsort((labels, d), axis=-1)[:, :k]
    return np.take_along_axis(d, order, 1), order


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = sum(len(set(found[i, :k]) & set(truth[i, :k])) for i in range(found.shape[0]))
    return hits / (found.shape[0] * k)
