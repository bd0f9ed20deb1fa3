"""Dense indexes from Python: FlatIndex and HnswIndex against an independent numpy brute force, numpy
zero-copy in and out, clear errors for layouts that cannot be viewed, errors carrying the library's
codes, save/open, the GIL released during search, and the thread-safety lock."""
import threading
import time

import numpy as np
import pytest

import quiver
from conftest import brute_force, random_matrix, recall


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_flat_matches_brute_force_exactly(metric):
    base = random_matrix(3000, 24, seed=1)
    queries = random_matrix(40, 24, seed=2)
    idx = quiver.FlatIndex(24, metric)
    idx.add(base)
    assert len(idx) == 3000 and idx.dim == 24 and idx.metric == metric and idx.kind == "flat"
    want_d, want_i = brute_force(base, queries, 10, metric)
    for batch in (queries, queries[:5]):  # >= 16 queries runs through BLAS, fewer scan
        d, i = idx.search(batch, 10)
        assert d.shape == (batch.shape[0], 10) and d.dtype == np.float32 and i.dtype == np.int64
        np.testing.assert_array_equal(i, want_i[: batch.shape[0]])
        np.testing.assert_allclose(d, want_d[: batch.shape[0]], rtol=1e-4, atol=1e-4)


def test_one_dimensional_query_gives_one_dimensional_results():
    base = random_matrix(100, 8)
    idx = quiver.FlatIndex(8)
    idx.add(base)
    d, i = idx.search(base[3], 4)
    assert d.shape == (4,) and i.shape == (4,)
    assert i[0] == 3 and d[0] == 0.0


def test_hnsw_recall_and_faiss_shape():
    base = random_matrix(4000, 32, seed=3)
    queries = random_matrix(100, 32, seed=4)
    idx = quiver.HnswIndex(32, "l2", M=16, ef_construction=100, threads=1)
    idx.add(base)
    assert (idx.M, idx.ef_construction, idx.seed, idx.threads) == (16, 100, 100, 1)
    assert idx.max_level >= 1 and idx.slots == 4000 and idx.memory_bytes > 4000 * 32 * 4
    _, truth = brute_force(base, queries, 10)
    d, i = idx.search(queries, 10, ef=200)
    assert recall(i, truth, 10) >= 0.95
    assert (np.diff(d, axis=1) >= 0).all()  # nearest first
    low = recall(idx.search(queries, 10, ef=10)[1], truth, 10)
    assert low < recall(i, truth, 10)  # ef trades accuracy


def test_labels_remove_replace_and_padding():
    base = random_matrix(50, 8)
    idx = quiver.HnswIndex(8, threads=1)
    idx.add(base, labels=np.arange(1000, 1050))
    assert idx.next_label == 1050
    d, i = idx.search(base[7], 1)
    assert i[0] == 1007
    assert idx.remove([1007, 1008, 99999]) == 2
    assert len(idx) == 48
    assert 1007 not in idx.search(base[7], 48, ef=100)[1]
    idx.add(base[7], labels=[5])  # one row as 1-D
    assert idx.search(base[7], 1)[1][0] == 5
    d, i = idx.search(base[7], 60, ef=100)  # more than exist: padded
    assert (i[49:] == -1).all() and np.isinf(d[49:]).all()
    assert (i[:49] >= 0).all()
    # allowed-label filter
    d, i = idx.search(base[:3], 2, allowed=[1010, 1020])
    assert set(i.ravel()) <= {1010, 1020}


def test_add_without_labels_continues_from_next_label():
    idx = quiver.FlatIndex(4)
    idx.add(random_matrix(3, 4))
    idx.add(random_matrix(2, 4, seed=9))
    assert idx.search(random_matrix(2, 4, seed=9), 1)[1].ravel().tolist() == [3, 4]


@pytest.mark.parametrize("cls", [quiver.FlatIndex, quiver.HnswIndex])
def test_save_open_round_trip(tmp_path, cls):
    base = random_matrix(500, 16)
    idx = cls(16, "cosine")
    idx.add(base)
    idx.ids = [f"doc{i}" for i in range(500)]
    path = str(tmp_path / "x.qvr")
    idx.save(path)
    for opened in (cls.open(path), quiver.open_index(path)):
        assert type(opened) is cls and isinstance(opened, quiver.VectorIndex)
        assert len(opened) == 500 and opened.metric == "cosine" and opened.ids[42] == "doc42"
        a, b = idx.search(base[:20], 5), opened.search(base[:20], 5)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    opened.add(base[:1], [777])  # copy-on-write after mapping
    assert len(opened) == 501


def test_zero_copy_in_and_out():
    x = random_matrix(64, 16)
    assert quiver._quiver._view_address(x) == x.ctypes.data  # the bindings read the caller's buffer
    row = x[5]  # a contiguous row view
    assert quiver._quiver._view_address(row) == row.ctypes.data
    idx = quiver.FlatIndex(16)
    idx.add(x)
    d, i = idx.search(x, 3)
    # Results are the C++ vectors themselves, owned by a capsule: no copy was made.
    assert not d.flags.owndata and type(d.base).__name__ == "PyCapsule"
    assert not i.flags.owndata and type(i.base).__name__ == "PyCapsule"
    enc = quiver.HashingEncoder(32)
    e = enc.encode(["a b c"])
    assert type(e.base).__name__ == "PyCapsule"


def test_layout_errors_are_clear():
    idx = quiver.FlatIndex(16)
    x = random_matrix(10, 32)
    with pytest.raises(ValueError, match="C-contiguous"):
        idx.add(x[:, ::2])  # strided: cannot be viewed
    with pytest.raises(ValueError, match="C-contiguous"):
        idx.add(np.asfortranarray(random_matrix(10, 16)))
    with pytest.raises(TypeError, match="float32"):
        idx.add(x[:, :16].astype(np.float64))
    with pytest.raises(TypeError, match="numpy array"):
        idx.add([[0.0] * 16])
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        idx.add(np.zeros((2, 2, 16), np.float32))
    with pytest.raises(ValueError, match="32 columns, the index has dimension 16"):
        idx.add(x)
    with pytest.raises(ValueError, match="labels has 2 entries for 10 vectors"):
        idx.add(np.ascontiguousarray(x[:, :16]), [1, 2])
    with pytest.raises(ValueError, match="negative"):
        idx.add(np.ascontiguousarray(x[:1, :16]), [-3])
    with pytest.raises(TypeError, match="integers"):
        idx.add(np.ascontiguousarray(x[:1, :16]), [1.5])
    with pytest.raises(ValueError, match="C-contiguous"):
        idx.search(random_matrix(4, 32)[:, ::2], 1)


def test_library_errors_carry_code_and_message(tmp_path):
    bad = random_matrix(2, 4)
    bad[1, 2] = np.nan
    idx = quiver.HnswIndex(4)
    with pytest.raises(quiver.InvalidArgumentError) as e:
        idx.add(bad)
    assert e.value.code == "invalid_argument" and isinstance(e.value, ValueError)
    assert len(idx) == 0  # refused without changing the index
    with pytest.raises(quiver.NotFoundError) as e:
        quiver.open_index(str(tmp_path / "missing.qvr"))
    assert isinstance(e.value, quiver.Error) and e.value.code in ("not_found",)
    # A corrupt file is data loss.
    p = tmp_path / "c.qvr"
    quiver.FlatIndex(4).save(str(p))
    raw = bytearray(p.read_bytes())
    raw[20] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(quiver.DataLossError) as e:
        quiver.FlatIndex.open(str(p))
    assert "c.qvr" in e.value.message
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.FlatIndex(4, "hamming-ish")
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.FlatIndex(0)


def test_help_is_useful():
    doc = quiver.HnswIndex.__doc__
    for word in ("ef_construction", "M:", "search", "cosine"):
        assert word in doc
    assert "(distances, labels)" in quiver.HnswIndex.search.__doc__
    assert "C-contiguous" in quiver.VectorIndex.search.__doc__


def test_search_releases_the_gil():
    # While one thread is inside a long C++ search, the main thread keeps running Python code. If the
    # binding held the GIL, the counter could not advance between "started" and "finished".
    base = random_matrix(20000, 64, seed=5)
    queries = random_matrix(2000, 64, seed=6)
    idx = quiver.FlatIndex(64)
    idx.add(base)
    state = {"started": False, "done": False}

    def worker():
        state["started"] = True
        idx.search(queries, 10, threads=1)
        state["done"] = True

    t = threading.Thread(target=worker)
    t.start()
    while not state["started"]:
        time.sleep(0)
    ticks = 0
    while not state["done"]:
        ticks += 1
    t.join()
    assert ticks > 10000


def test_concurrent_searches_and_writes_are_serialised():
    # Many threads search while another adds and removes: the handle's lock keeps the C++ contract
    # (no search during a mutation), so every search sees a consistent index.
    base = random_matrix(2000, 16, seed=8)
    idx = quiver.HnswIndex(16, threads=1)
    idx.add(base[:1000])
    errors = []

    def searcher():
        try:
            for _ in range(50):
                d, i = idx.search(base[:50], 5, threads=1)
                assert (i >= 0).all()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for s in range(1000, 2000, 100):
        idx.add(base[s:s + 100], np.arange(s, s + 100))
        idx.remove(np.arange(s - 1000, s - 950))
    for t in threads:
        t.join()
    assert not errors
    assert len(idx) == 2000 - 500
