"""hnswlib's Python API over quiver's HNSW, so existing code swaps with one import::

    from quiver.compat import hnswlib        # instead of: import hnswlib
    p = hnswlib.Index(space="cosine", dim=100)
    p.init_index(max_elements=100_000, ef_construction=200, M=16)
    p.add_items(data, ids)
    p.set_ef(100)
    labels, distances = p.knn_query(queries, k=10)

Same parameters, same distances ("l2" squared, "ip" = 1 - inner product, "cosine" = 1 - cosine
similarity) and shapes (uint64 labels, float32 distances, (n, k)). Differences: files are quiver's
format (``save_index``/``load_index`` round-trip, but do not read hnswlib's files); ``mark_deleted``
removes for good (no ``unmark_deleted``); ``get_items`` and ``get_ids_list`` are not offered; the level
generator differs, so graphs are not bit-identical to hnswlib's (results agree at equal parameters
up to the approximation; exactly when ef reaches the index size).
"""
from __future__ import annotations

import numpy as np

from .. import _quiver

__all__ = ["Index"]


def _threads(num_threads: int) -> int:
    return 0 if num_threads is None or num_threads < 0 else int(num_threads)


class Index:
    """hnswlib.Index(space, dim): space is "l2", "ip" or "cosine"."""

    def __init__(self, space: str, dim: int):
        if space not in ("l2", "ip", "cosine"):
            raise ValueError(f"space must be 'l2', 'ip' or 'cosine', got {space!r}")
        self.space = space
        self.dim = int(dim)
        self.num_threads = -1
        self._index = None
        self._params = None
        self._max_elements = 0
        self._ef = 10

    # --- construction -------------------------------------------------------------------------------
    def init_index(self, max_elements: int, M: int = 16, ef_construction: int = 200, random_seed: int = 100):
        """Prepares an empty index for up to ``max_elements`` items."""
        self._max_elements = int(max_elements)
        self._params = dict(M=int(M), ef_construction=int(ef_construction), seed=int(random_seed))
        self._index = None  # created by the first add_items (its num_threads is the build's thread count)

    def _native(self, num_threads: int):
        if self._index is None:
            if self._params is None:
                raise RuntimeError("the index is not initialised: call init_index or load_index first")
            self._index = _quiver.HnswIndex(self.dim, self.space, threads=_threads(num_threads), **self._params)
        return self._index

    def add_items(self, data, ids=None, num_threads: int = -1):
        """Adds rows of ``data`` (converted to float32) under ``ids`` (default: 0, 1, ... after the current count)."""
        x = np.ascontiguousarray(data, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise RuntimeError(f"wrong dimensionality of the vectors: expected {self.dim}, got shape {x.shape}")
        index = self._native(num_threads if num_threads != -1 else self.num_threads)
        if ids is None:
            labels = np.arange(len(index), len(index) + x.shape[0], dtype=np.int64)
        else:
            labels = np.atleast_1d(np.asarray(ids)).astype(np.int64, copy=False)
            if labels.shape[0] != x.shape[0]:
                raise RuntimeError("wrong dimensionality of the labels")
        if len(index) + x.shape[0] > self._max_elements:
            # hnswlib refuses to grow past max_elements (resize_index raises it).
            raise RuntimeError("The number of elements exceeds the specified limit")
        index.add(x, labels)

    # --- search -------------------------------------------------------------------------------------
    def set_ef(self, ef: int):
        self._ef = int(ef)

    @property
    def ef(self) -> int:
        return self._ef

    @ef.setter
    def ef(self, value: int):
        self._ef = int(value)

    def set_num_threads(self, num_threads: int):
        self.num_threads = int(num_threads)

    def knn_query(self, data, k: int = 1, num_threads: int = -1):
        """Returns (labels uint64 (n, k), distances float32 (n, k)), nearest first."""
        x = np.ascontiguousarray(data, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        index = self._native(self.num_threads)
        threads = num_threads if num_threads != -1 else self.num_threads
        distances, labels = index.search(x, int(k), ef=max(self._ef, int(k)), threads=_threads(threads))
        if labels.size and (labels < 0).any():
            raise RuntimeError("Cannot return the results in a contigious 2D array. "
                               "Probably ef or M is too small")
        return labels.view(np.uint64), distances

    # --- maintenance ----------------------------------------------------------------------------------
    def mark_deleted(self, label: int):
        """Removes ``label`` from search results (permanently; quiver reclaims the slot later)."""
        if self._native(self.num_threads).remove([int(label)]) == 0:
            raise RuntimeError("Label not found")

    def resize_index(self, new_size: int):
        """Raises the capacity (quiver indexes grow on demand; this only moves the limit)."""
        if new_size < self.get_current_count():
            raise RuntimeError("Cannot resize, max element is less than the current number of elements")
        self._max_elements = int(new_size)

    def save_index(self, path: str):
        self._native(self.num_threads).save(path)

    def load_index(self, path: str, max_elements: int = 0):
        """Loads a file written by save_index; ``max_elements`` raises the capacity (0 = current size)."""
        index = _quiver.HnswIndex.open(path)
        if index.dim != self.dim:
            raise RuntimeError(f"the file holds dimension {index.dim}, this index has {self.dim}")
        if index.metric != self.space:
            raise RuntimeError(f"the file holds space {index.metric!r}, this index has {self.space!r}")
        self._index = index
        self._params = dict(M=index.M, ef_construction=index.ef_construction, seed=index.seed)
        self._max_elements = max(int(max_elements), len(index))

    # --- properties -----------------------------------------------------------------------------------
    def get_max_elements(self) -> int:
        return self._max_elements

    def get_current_count(self) -> int:
        return 0 if self._index is None else len(self._index)

    @property
    def max_elements(self) -> int:
        return self._max_elements

    @property
    def element_count(self) -> int:
        return self.get_current_count()

    @property
    def M(self) -> int:
        return self._params["M"] if self._params else 0

    @property
    def ef_construction(self) -> int:
        return self._params["ef_construction"] if self._params else 0

    @property
    def native(self):
        """The underlying quiver.HnswIndex (None before the first add)."""
        return self._index

    def __repr__(self) -> str:
        return (f"<quiver.compat.hnswlib.Index(space='{self.space}', dim={self.dim}) "
                f"count={self.get_current_count()} max_elements={self._max_elements}>")
