"""quiver.distributed on a Dask LocalCluster of 2 worker processes: exact shards give exactly the top-10
of one flat index over GloVe-100k, HNSW shards the recall of one HNSW at the same settings, a worker
killed during a query batch still yields complete (identical) results, and BEIR evaluation of a
sharded text corpus equals the single-index evaluation."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import quiver
from quiver import distributed as qd
from conftest import brute_force, data_dir, need, recall

dask_distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = dask_distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=40)
    c = dask_distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_partition():
    assert qd.partition(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert qd.partition(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError):
        qd.partition(3, 4)


def test_merge_topk_orders_by_distance_then_label():
    d1, l1 = np.array([[0.1, 0.5, np.inf]], np.float32), np.array([[7, 3, -1]])
    d2, l2 = np.array([[0.5, 0.6, 0.7]], np.float32), np.array([[1, 9, 4]])
    d, lab = qd.merge_topk([d1, d2], [l1, l2], 4)
    assert lab.tolist() == [[7, 1, 3, 9]] and d.tolist()[0][:2] == [pytest.approx(0.1), 0.5]


def test_exact_shards_equal_one_flat_index(client, glove, tmp_path):
    base, queries, _ = glove
    src = str(need(data_dir() / "glove-6b-100d" / "base.fvecs"))
    manifest = qd.build(client, src, str(tmp_path / "flat"), 4, index="flat", metric="cosine")
    assert manifest["rows"] == 100000 and [s["stop"] - s["start"] for s in manifest["shards"]] == [25000] * 4
    sharded = qd.ShardedIndex(client, str(tmp_path / "flat"))
    assert len(sharded.warm()) == 4
    d, lab = sharded.search(queries, 10)
    single = quiver.FlatIndex(100, "cosine")
    single.add(base)
    want_d, want_l = single.search(queries, 10)
    np.testing.assert_array_equal(lab, want_l)  # exactly the same top-10, same order
    np.testing.assert_array_equal(d, want_d)
    one_d, one_l = sharded.search(queries[3], 10)  # a single query
    np.testing.assert_array_equal(one_l, want_l[3])


@pytest.fixture(scope="module")
def hnsw_setup(client, glove, tmp_path_factory):
    base, queries, _ = glove
    tmp = tmp_path_factory.mktemp("hnsw")
    sub = np.ascontiguousarray(base[:12000])
    np.save(tmp / "base.npy", sub)
    params = dict(M=16, ef_construction=100, seed=100)
    qd.build(client, str(tmp / "base.npy"), str(tmp / "shards"), 4, index="hnsw", metric="cosine", **params)
    single = quiver.HnswIndex(100, "cosine", threads=1, **params)
    single.add(sub)
    _, truth = brute_force(sub, queries[:300], 10, "cosine")
    return qd.ShardedIndex(client, str(tmp / "shards")), single, truth, queries


def test_hnsw_shards_recall_matches_one_hnsw(hnsw_setup):
    sharded, single, truth, queries = hnsw_setup
    for ef in (16, 64):
        r_sharded = recall(sharded.search(queries[:300], 10, ef=ef)[1], truth, 10)
        r_single = recall(single.search(queries[:300], 10, ef=ef)[1], truth, 10)
        # Four graphs of a quarter each, searched at the same ef, do at least as well as one graph.
        assert r_sharded >= r_single - 0.02, (ef, r_sharded, r_single)
    assert r_sharded >= 0.9


def test_killed_worker_mid_batch_still_gives_complete_results(client, hnsw_setup):
    sharded, _, _, queries = hnsw_setup
    batch = np.ascontiguousarray(np.tile(queries, (2, 1)))  # 2000 queries: about a second of work per shard
    want_d, want_l = sharded.search(batch, 10, ef=200)
    pids = client.run(os.getpid)
    out = {}
    t = threading.Thread(target=lambda: out.update(r=sharded.search(batch, 10, ef=200)))
    t.start()
    victim = None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline:
        busy = [w for w, tasks in client.processing().items() if any("_search_shard" in k for k in tasks)]
        if busy:
            victim = busy[0]
        else:
            time.sleep(0.01)
    assert victim is not None, "no search task was seen running"
    os.kill(pids[victim], signal.SIGKILL)
    t.join(timeout=240)
    assert not t.is_alive()
    d, lab = out["r"]
    np.testing.assert_array_equal(lab, want_l)  # complete and identical: the lost shard ran elsewhere
    np.testing.assert_array_equal(d, want_d)
    assert (lab >= 0).all()
    # The nanny restarts the killed worker in the background; the tests after this one work with
    # whichever workers are up.


def test_beir_corpus_sharded_evaluation_equals_single_index(client, tmp_path):
    scifact = need(data_dir() / "scifact")
    qd.build(client, str(scifact), str(tmp_path / "sci"), 3, index="flat", metric="cosine", encoder="hashing:256")
    sharded = qd.ShardedIndex(client, str(tmp_path / "sci"))
    assert len(sharded.doc_ids) == 5183
    report, run = qd.evaluate(sharded, str(scifact), k=100, metrics="ndcg@10,recall@100")
    # The same retrieval on one machine.
    ds = quiver.eval.load_dataset(str(scifact))
    enc = quiver.HashingEncoder(256)
    flat = quiver.FlatIndex(256, "cosine")
    flat.add(enc.encode([f"{d.title} {d.text}" if d.title else d.text for d in ds.documents]))
    d, lab = flat.search(enc.encode([q.text for q in ds.queries], role="query"), 100)
    ids = [x.id for x in ds.documents]
    assert sharded.doc_ids == ids
    single_run = {q.id: {ids[l]: -float(x) for x, l in zip(d[i], lab[i])} for i, q in enumerate(ds.queries)}
    want = quiver.eval.evaluate(ds.qrels, single_run, "ndcg@10,recall@100")
    assert report["ndcg@10"] == want["ndcg@10"] and report["recall@100"] == want["recall@100"]
    assert report["ndcg@10"] > 0.1  # hashing words still finds SciFact's lexical matches


def test_errors(client, tmp_path):
    with pytest.raises(quiver.InvalidArgumentError, match="encoder"):
        qd.build(client, str(need(data_dir() / "scifact")), str(tmp_path / "x"), 2)
    with pytest.raises(quiver.InvalidArgumentError, match="unknown corpus"):
        qd.build(client, str(tmp_path / "a.txt"), str(tmp_path / "x"), 2)
    with pytest.raises(FileNotFoundError):
        qd.ShardedIndex(client, str(tmp_path / "none"))
