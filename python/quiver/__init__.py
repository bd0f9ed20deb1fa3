"""quiver: an embedding-based retrieval engine (dense ANN, BM25, learned sparse, collections).

Native module (built with the C++ library):

* Dense indexes: :class:`FlatIndex` (exact), :class:`HnswIndex`; :func:`open_index` opens any saved one.
  ``index.search(xq, k) -> (distances, labels)`` as FAISS does. numpy float32 C-contiguous arrays are
  viewed without copying; results are returned without copying; the GIL is released while building
  and searching.
* BM25: :class:`Bm25Index` (Lucene-exact scoring).
* Encoders: :func:`load_encoder` (BERT-family, SPLADE, ColBERT, model2vec, word vectors),
  :func:`HashingEncoder`.
* Evaluation: :mod:`quiver.eval` (BEIR/TREC/SMART datasets, trec_eval metrics, run files).
* Collections: :class:`Store`, :class:`Collection` (documents, hybrid search, filters, fusion).
* Vector files: :func:`read_vectors`, :func:`read_ivecs`, :func:`write_vectors`.

Pure Python on top:

* :class:`Client`: the HTTP API of ``quiver serve`` (standard library only).
* :mod:`quiver.compat.hnswlib`: ``Index`` with hnswlib's method names.
* :mod:`quiver.distributed`: sharded build and search on Dask.

Errors are :class:`quiver.Error` subclasses keyed by the library's error codes (see :mod:`quiver.errors`).
"""
from .errors import *  # noqa: F401,F403  (imported before the extension, which raises these)
from .errors import Error
from ._quiver import (  # noqa: F401
    Bm25Index,
    Collection,
    Encoder,
    FlatIndex,
    HashingEncoder,
    HnswIndex,
    Store,
    VectorIndex,
    load_encoder,
    open_index,
    read_ivecs,
    read_vectors,
    simd_level,
    write_vectors,
)
from . import eval  # noqa: F401,E402
from .client import Client  # noqa: F401,E402

__version__ = "0.1.0"
