"""quiver.compat.hnswlib against Debian's hnswlib binding on the same data and parameters."""
import numpy as np
import pytest

from conftest import brute_force, random_matrix, recall
from quiver.compat import hnswlib as qhnsw

hnswlib = pytest.importorskip("hnswlib")


def build(module, space, data, M=16, ef_construction=100):
    p = module.Index(space=space, dim=data.shape[1])
    p.init_index(max_elements=data.shape[0], M=M, ef_construction=ef_construction, random_seed=100)
    p.add_items(data, np.arange(data.shape[0]), num_threads=1)
    return p


@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_exhaustive_search_gives_identical_results(space):
    # With ef >= the index size both libraries visit every node: results must be identical.
    data = random_matrix(400, 12, seed=11)
    queries = random_matrix(30, 12, seed=12)
    ours, theirs = build(qhnsw, space, data), build(hnswlib, space, data)
    for p in (ours, theirs):
        p.set_ef(400)
    l1, d1 = ours.knn_query(queries, k=10)
    l2, d2 = theirs.knn_query(queries, k=10)
    assert l1.dtype == l2.dtype == np.uint64 and d1.dtype == d2.dtype == np.float32
    assert l1.shape == l2.shape == (30, 10)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(d1, d2, rtol=1e-4, atol=1e-5)


def test_same_recall_as_hnswlib_at_equal_parameters():
    data = random_matrix(5000, 32, seed=13)
    queries = random_matrix(200, 32, seed=14)
    _, truth = brute_force(data, queries, 10, "cosine")
    ours, theirs = build(qhnsw, "cosine", data), build(hnswlib, "cosine", data)
    for ef in (20, 100):
        ours.set_ef(ef)
        theirs.set_ef(ef)
        r_ours = recall(ours.knn_query(queries, k=10)[0].astype(np.int64), truth, 10)
        r_theirs = recall(theirs.knn_query(queries, k=10)[0].astype(np.int64), truth, 10)
        # Same algorithm and parameters, different level draws: recall within a small margin.
        assert abs(r_ours - r_theirs) <= 0.03, (ef, r_ours, r_theirs)
    assert r_ours >= 0.95


def test_method_names_and_behaviour(tmp_path):
    data = random_matrix(100, 8, seed=15)
    p = qhnsw.Index(space="l2", dim=8)
    p.init_index(max_elements=100, ef_construction=50, M=8)
    assert (p.M, p.ef_construction, p.get_max_elements(), p.get_current_count()) == (8, 50, 100, 0)
    p.add_items(data[:60].astype(np.float64))  # converted like hnswlib; ids default to 0..59
    p.add_items(data[60:])
    assert p.get_current_count() == p.element_count == 100
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(data[:1], [500])
    p.resize_index(200)
    p.add_items(data[:1], [500])
    labels, dist = p.knn_query(data[42], k=1)
    assert labels.shape == (1, 1) and labels[0, 0] in (42,)
    p.mark_deleted(42)
    assert 42 not in p.knn_query(data[42], k=5)[0]
    with pytest.raises(RuntimeError):
        p.mark_deleted(42)
    path = str(tmp_path / "p.bin")
    p.save_index(path)
    q = qhnsw.Index(space="l2", dim=8)
    q.load_index(path, max_elements=300)
    assert q.get_max_elements() == 300 and q.get_current_count() == 100
    q.set_ef(50)
    p.set_ef(50)  # the same graph searched with the same ef (p's default ef 10 may miss a neighbour)
    np.testing.assert_array_equal(q.knn_query(data[:5], k=3)[0], p.knn_query(data[:5], k=3)[0])
    with pytest.raises(RuntimeError, match="contigious"):
        small = qhnsw.Index(space="l2", dim=8)
        small.init_index(3)
        small.add_items(data[:3])
        small.knn_query(data[:1], k=5)
    with pytest.raises(ValueError):
        qhnsw.Index(space="hamming", dim=8)
