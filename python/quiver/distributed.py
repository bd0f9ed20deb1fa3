"""Sharded build and search on a Dask cluster (``dask.distributed``).

A corpus is cut into contiguous shards; each shard is encoded (for text) and indexed on a Dask worker,
which writes ``shard-NNNN.qvr`` into a directory every worker can read (a shared file system, or
copies at the same path on every machine). :class:`ShardedIndex` sends a query batch to the workers
holding the shards, merges the per-shard top-k exactly (distance, then lower label — the flat index's
order), and re-runs a shard on another worker when the one running it dies.

Labels are global row numbers of the corpus (shard ranges are contiguous), so merged results need no
translation; text corpora keep their document ids per shard (``ShardedIndex.doc_ids``).

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster(n_workers=2))
    manifest = quiver.distributed.build(client, "base.npy", "/shared/glove", num_shards=4,
                                        index="hnsw", metric="cosine", M=16, ef_construction=200)
    sharded = quiver.distributed.ShardedIndex(client, "/shared/glove")
    D, I = sharded.search(xq, k=10, ef=128)

Sources: ``.npy`` / ``.fvecs`` vector files (rows read in place), a JSONL corpus (``{"_id", "title",
"text"}`` per line), or a BEIR folder (its ``corpus.jsonl``); texts are embedded on the workers with
``encoder`` (a model folder readable by every worker, or ``"hashing:DIM"``).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import errors

__all__ = ["partition", "build", "ShardedIndex", "evaluate", "merge_topk"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------------
# Partitioning and reading

def partition(num_rows: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous, balanced [start, stop) ranges covering 0..num_rows (sizes differ by at most one)."""
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    if num_rows < num_shards:
        raise ValueError(f"{num_rows} rows cannot fill {num_shards} shards")
    bounds = [num_rows * i // num_shards for i in range(num_shards + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(num_shards)]


def _source_kind(path: str) -> str:
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "corpus.jsonl")):
            return "beir"
        raise errors.NotFoundError(f"'{path}' is a folder without corpus.jsonl (expected a BEIR folder)")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".npy", ".fvecs"):
        return ext[1:]
    if ext in (".jsonl", ".json"):
        return "jsonl"
    raise errors.InvalidArgumentError(f"'{path}': unknown corpus type (use .npy, .fvecs, .jsonl or a BEIR folder)")


def _vector_rows(path: str) -> tuple[int, int]:
    """(rows, dim) of a .npy or .fvecs file without reading it."""
    if path.endswith(".npy"):
        a = np.load(path, mmap_mode="r")
        if a.ndim != 2:
            raise errors.InvalidArgumentError(f"'{path}': expected a 2-D array, got shape {a.shape}")
        return a.shape[0], a.shape[1]
    dim = int(np.fromfile(path, dtype=np.int32, count=1)[0])
    size = os.path.getsize(path)
    if dim <= 0 or size % (4 + 4 * dim) != 0:
        raise errors.DataLossError(f"'{path}': size {size} is not a multiple of the row size for dim {dim}")
    return size // (4 + 4 * dim), dim


def _read_vector_rows(path: str, start: int, stop: int) -> np.ndarray:
    if path.endswith(".npy"):
        a = np.load(path, mmap_mode="r")[start:stop]
        return np.ascontiguousarray(a, dtype=np.float32)
    rows, dim = _vector_rows(path)
    m = np.memmap(path, dtype=np.int32, mode="r", shape=(rows, dim + 1))[start:stop]
    if (m[:, 0] != dim).any():
        raise errors.DataLossError(f"'{path}': a row in {start}..{stop} has a dimension other than {dim}")
    return np.ascontiguousarray(m[:, 1:]).view(np.float32)


def _jsonl_path(path: str) -> str:
    return os.path.join(path, "corpus.jsonl") if os.path.isdir(path) else path


def _line_offsets(path: str) -> list[int]:
    """Byte offset of every non-empty line."""
    offsets, pos = [], 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                offsets.append(pos)
            pos += len(line)
    return offsets


def _read_texts(path: str, offset: int, count: int) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with open(path, "rb") as f:
        f.seek(offset)
        while len(ids) < count:
            line = f.readline()
            if not line:
                raise errors.DataLossError(f"'{path}': ended before {count} documents from byte {offset}")
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                doc_id = doc.get("_id", doc.get("id"))
            except (ValueError, AttributeError) as e:
                raise errors.InvalidArgumentError(f"'{path}' at byte {offset}: {e}") from None
            if doc_id is None:
                raise errors.InvalidArgumentError(f"'{path}': a document without '_id' near byte {offset}")
            title, text = doc.get("title") or "", doc.get("text") or ""
            ids.append(str(doc_id))
            texts.append(f"{title} {text}" if title else text)
    return ids, texts


# ---------------------------------------------------------------------------------------------------
# Worker-side state: encoders and opened shards are cached per worker process.

_CACHE_LOCK = threading.Lock()
_ENCODERS: dict[str, Any] = {}
_SHARDS: dict[str, tuple[float, Any]] = {}


def _encoder(spec: str):
    import quiver
    with _CACHE_LOCK:
        enc = _ENCODERS.get(spec)
        if enc is None:
            if spec.startswith("hashing:"):
                enc = quiver.HashingEncoder(int(spec.split(":", 1)[1]))
            else:
                enc = quiver.load_encoder(spec)
            _ENCODERS[spec] = enc
        return enc


def _open_shard(path: str):
    import quiver
    mtime = os.stat(path).st_mtime
    with _CACHE_LOCK:
        hit = _SHARDS.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
    index = quiver.open_index(path)
    with _CACHE_LOCK:
        _SHARDS[path] = (mtime, index)
    return index


def _worker_address() -> str:
    try:
        from dask.distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return ""


def _build_shard(task: dict) -> dict:
    """Runs on a worker: reads rows [start, stop), embeds them if they are texts, builds and saves."""
    import quiver
    t0 = time.perf_counter()
    ids = None
    if task["source_kind"] in ("npy", "fvecs"):
        x = _read_vector_rows(task["source"], task["start"], task["stop"])
    else:
        ids, texts = _read_texts(task["source"], task["offset"], task["stop"] - task["start"])
        x = _encoder(task["encoder"]).encode(texts, role="document")
    t_read = time.perf_counter() - t0
    p = task["params"]
    if task["index"] == "flat":
        index = quiver.FlatIndex(x.shape[1], task["metric"])
    elif task["index"] == "hnsw":
        index = quiver.HnswIndex(x.shape[1], task["metric"], M=p.get("M", 16),
                                 ef_construction=p.get("ef_construction", 200), seed=p.get("seed", 100),
                                 threads=p.get("threads", 1))
    else:
        raise errors.InvalidArgumentError(f"unknown index kind {task['index']!r} (flat, hnsw)")
    index.add(x, np.arange(task["start"], task["stop"], dtype=np.int64))
    path = os.path.join(task["dir"], task["file"])
    index.save(path)
    if ids is not None:
        with open(path + ".ids.json.tmp", "w") as f:
            json.dump(ids, f)
        os.replace(path + ".ids.json.tmp", path + ".ids.json")
    return {"shard": task["shard"], "file": task["file"], "start": task["start"], "stop": task["stop"],
            "dim": int(x.shape[1]), "worker": _worker_address(), "read_seconds": t_read,
            "build_seconds": time.perf_counter() - t0, "ids": task["file"] + ".ids.json" if ids is not None else None}


def _search_shard(path: str, queries: np.ndarray, k: int, ef: int, threads: int):
    index = _open_shard(path)
    # Dask may hand over a deserialised buffer that is not 4-byte aligned: copy only then.
    return index.search(np.require(queries, np.float32, ["C", "A"]), k, ef=ef, threads=threads)


def _warm_shard(path: str) -> str:
    _open_shard(path)
    return _worker_address()


# ---------------------------------------------------------------------------------------------------
# Build

def build(client, source: str, shard_dir: str, num_shards: int, *, index: str = "hnsw", metric: str = "l2",
          M: int = 16, ef_construction: int = 200, seed: int = 100, threads: int = 1,
          encoder: str | None = None) -> dict:
    """Builds one index per shard on the cluster behind ``client`` and writes ``shard_dir/manifest.json``.

    source: ``.npy`` / ``.fvecs`` vectors, a ``.jsonl`` corpus or a BEIR folder (texts need ``encoder``).
    shard_dir: a directory every worker can write and read at the same path.
    index: "flat" (exact) or "hnsw"; metric: "l2", "ip" or "cosine"; M, ef_construction, seed: HNSW.
    threads: insertion threads per shard build (1 suits one task per worker thread).
    Shard tasks are spread over the workers round-robin; a task whose worker dies is re-run by Dask
    elsewhere. Returns the manifest (a dict), which also records per-shard build times and workers.
    """
    kind = _source_kind(source)
    os.makedirs(shard_dir, exist_ok=True)
    tasks = []
    if kind in ("npy", "fvecs"):
        rows, _ = _vector_rows(source)
        offsets = None
    else:
        if encoder is None:
            raise errors.InvalidArgumentError("a text corpus needs an encoder (a model folder or 'hashing:DIM')")
        source = _jsonl_path(source)
        offsets = _line_offsets(source)
        rows = len(offsets)
    ranges = partition(rows, num_shards)
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise errors.UnavailableError("the Dask cluster has no workers")
    for s, (start, stop) in enumerate(ranges):
        tasks.append({"shard": s, "file": f"shard-{s:04d}.qvr", "dir": shard_dir, "source": source,
                      "source_kind": kind, "start": start, "stop": stop,
                      "offset": offsets[start] if offsets is not None else 0,
                      "index": index, "metric": metric, "encoder": encoder,
                      "params": {"M": M, "ef_construction": ef_construction, "seed": seed, "threads": threads}})
    t0 = time.perf_counter()
    futures = [client.submit(_build_shard, t, key=f"quiver-build-{os.path.basename(shard_dir)}-{t['shard']}-{time.time_ns()}",
                             workers=[workers[t["shard"] % len(workers)]], allow_other_workers=True, retries=2,
                             pure=False)
               for t in tasks]
    results = sorted(client.gather(futures), key=lambda r: r["shard"])
    manifest = {"format": "quiver-shards", "version": FORMAT_VERSION, "index": index, "metric": metric,
                "dim": results[0]["dim"], "rows": rows, "num_shards": num_shards, "source": source,
                "encoder": encoder, "params": tasks[0]["params"], "shards": results,
                "build_seconds": time.perf_counter() - t0}
    tmp = os.path.join(shard_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(shard_dir, MANIFEST))
    return manifest


# ---------------------------------------------------------------------------------------------------
# Search

def merge_topk(distances: Sequence[np.ndarray], labels: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merges per-shard (nq, k_s) results into the global top ``k``: by distance, ties by lower label,
    padding (label -1, distance +inf) last."""
    d = np.concatenate(distances, axis=1)
    lab = np.concatenate(labels, axis=1)
    # -1 padding must sort after every real label at equal (infinite) distance.
    tie = np.where(lab < 0, np.iinfo(np.int64).max, lab)
    order = np.lexsort((tie, d), axis=-1)[:, :k]
    d = np.take_along_axis(d, order, axis=1)
    lab = np.take_along_axis(lab, order, axis=1)
    if d.shape[1] < k:  # fewer candidates than k in total
        pad = k - d.shape[1]
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.inf)
        lab = np.pad(lab, ((0, 0), (0, pad)), constant_values=-1)
    return np.ascontiguousarray(d, dtype=np.float32), np.ascontiguousarray(lab)


@dataclass
class SearchStats:
    """What the last ShardedIndex.search did: tasks submitted and re-submitted after failures."""
    tasks: int = 0
    resubmitted: int = 0
    seconds: float = 0.0


class ShardedIndex:
    """ShardedIndex(client, shard_dir, search_threads=1, max_attempts=3).

    The shards listed by ``shard_dir/manifest.json`` searched on the Dask cluster: each shard is searched
    by the worker that built it (it caches the opened file), or by any other worker when that one is gone.
    ``search(xq, k, ef=0) -> (distances, labels)`` as the single-machine indexes. ``doc_ids`` maps labels
    to document ids for text corpora.
    """

    def __init__(self, client, shard_dir: str, *, search_threads: int = 1, max_attempts: int = 3):
        with open(os.path.join(shard_dir, MANIFEST)) as f:
            self.manifest = json.load(f)
        if self.manifest.get("format") != "quiver-shards" or self.manifest.get("version") != FORMAT_VERSION:
            raise errors.FailedPreconditionError(
                f"'{shard_dir}/{MANIFEST}': not a quiver shard manifest of version {FORMAT_VERSION}")
        self.client = client
        self.shard_dir = shard_dir
        self.search_threads = search_threads
        self.max_attempts = max_attempts
        self.last = SearchStats()
        self._doc_ids: list[str] | None = None

    @property
    def dim(self) -> int:
        return self.manifest["dim"]

    @property
    def num_shards(self) -> int:
        return len(self.manifest["shards"])

    def __len__(self) -> int:
        return self.manifest["rows"]

    def _path(self, shard: dict) -> str:
        return os.path.join(self.shard_dir, shard["file"])

    def _preferred(self, shard: dict, alive: list[str]) -> list[str]:
        if shard.get("worker") in alive:
            return [shard["worker"]]
        return [alive[shard["shard"] % len(alive)]] if alive else []

    def warm(self) -> dict[int, str]:
        """Opens every shard on its worker (so the first search does not pay for it); shard -> worker."""
        alive = sorted(self.client.scheduler_info()["workers"])
        futures = {s["shard"]: self.client.submit(_warm_shard, self._path(s), workers=self._preferred(s, alive),
                                                   allow_other_workers=True, pure=False)
                   for s in self.manifest["shards"]}
        return {s: f.result() for s, f in futures.items()}

    def search(self, queries: np.ndarray, k: int = 10, *, ef: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of every query over all shards, exactly merged; shape (nq, k) (or (k,) for 1-D)."""
        from dask.distributed import wait
        q = np.asarray(queries)
        if q.dtype != np.float32 or not q.flags.c_contiguous:
            raise TypeError("queries must be a C-contiguous float32 array (numpy.ascontiguousarray(x, dtype=numpy.float32))")
        one = q.ndim == 1
        q2 = q.reshape(1, -1) if one else q
        if q2.ndim != 2 or q2.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (n, {self.dim}), got {q.shape}")
        t0 = time.perf_counter()
        stats = SearchStats()
        alive = sorted(self.client.scheduler_info()["workers"])
        if not alive:
            raise errors.UnavailableError("the Dask cluster has no workers")
        # One copy of the batch per worker instead of one per task.
        (q_future,) = self.client.scatter([q2], broadcast=True, hash=False)
        pending: dict[Any, tuple[dict, int]] = {}

        def submit(shard: dict, attempt: int, avoid: set[str]):
            candidates = [w for w in sorted(self.client.scheduler_info()["workers"]) if w not in avoid] or alive
            fut = self.client.submit(_search_shard, self._path(shard), q_future, k, ef, self.search_threads,
                                     workers=self._preferred(shard, candidates), allow_other_workers=True,
                                     pure=False, retries=1)
            pending[fut] = (shard, attempt)
            stats.tasks += 1

        for shard in self.manifest["shards"]:
            submit(shard, 1, set())
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        while pending:
            done, _ = wait(list(pending), return_when="FIRST_COMPLETED")
            for fut in done:
                shard, attempt = pending.pop(fut)
                try:
                    results[shard["shard"]] = fut.result()
                except Exception as e:  # noqa: BLE001 - worker death surfaces as KilledWorker, CommClosedError, ...
                    if attempt >= self.max_attempts or isinstance(e, errors.Error):
                        raise
                    who = self.client.who_has(fut).get(fut.key, ()) if hasattr(self.client, "who_has") else ()
                    stats.resubmitted += 1
                    submit(shard, attempt + 1, set(who) | {shard.get("worker", "")})
        self.client.cancel([q_future])
        d, lab = merge_topk([results[s][0] for s in sorted(results)], [results[s][1] for s in sorted(results)], k)
        stats.seconds = time.perf_counter() - t0
        self.last = stats
        return (d[0], lab[0]) if one else (d, lab)

    @property
    def doc_ids(self) -> list[str]:
        """Document id of every label (text corpora; KeyError for vector corpora)."""
        if self._doc_ids is None:
            ids: list[str] = []
            for s in self.manifest["shards"]:
                if not s.get("ids"):
                    raise KeyError("this corpus has no document ids (it was built from vectors)")
                with open(os.path.join(self.shard_dir, s["ids"])) as f:
                    ids.extend(json.load(f))
            self._doc_ids = ids
        return self._doc_ids


# ---------------------------------------------------------------------------------------------------
# Evaluation

def evaluate(index: ShardedIndex, dataset: str, *, encoder: str | None = None, k: int = 100,
             metrics: str = "ndcg@10,recall@100", split: str = "test", ef: int = 0, batch: int = 1024):
    """BEIR-style evaluation of a sharded text index: encodes the dataset's queries (with ``encoder``,
    default the one the shards were built with), searches in batches of ``batch``, and scores the run
    with :func:`quiver.eval.evaluate` (score = -distance). Returns (EvalReport, run)."""
    import quiver
    spec = encoder or index.manifest.get("encoder")
    if not spec:
        raise errors.InvalidArgumentError("evaluate needs the query encoder (the shards were built from vectors)")
    ds = quiver.eval.load_dataset(dataset, split=split, load_documents=False)
    queries = ds.queries
    enc = _encoder(spec)
    doc_ids = index.doc_ids
    run: dict[str, dict[str, float]] = {}
    for b in range(0, len(queries), batch):
        part = queries[b:b + batch]
        xq = enc.encode([q.text for q in part], role="query")
        d, lab = index.search(xq, k, ef=ef)
        for qi, q in enumerate(part):
            run[q.id] = {doc_ids[int(l)]: -float(dist) for dist, l in zip(d[qi], lab[qi]) if l >= 0}
    return quiver.eval.evaluate(ds.qrels, run, metrics), run
