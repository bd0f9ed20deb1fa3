"""Encoders (against the PyTorch float64 references of tests/data/encode) and evaluation (datasets,
metrics by hand, run files)."""
import json
import math

import numpy as np
import pytest

import quiver


@pytest.fixture(scope="module")
def reference(encode_fixtures):
    return json.loads((encode_fixtures / "reference.json").read_text())


def test_dense_matches_pytorch(encode_fixtures, reference):
    enc = quiver.load_encoder(str(encode_fixtures / "bert-mean"), max_length=32, threads=2, batch=3)
    assert enc.family == "bert" and "dense" in enc.outputs and enc.normalized
    x = enc.encode(reference["texts"])
    want = np.array(reference["dense"]["bert-mean"], dtype=np.float64)
    assert x.shape == want.shape and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.abs(x - want).max() <= 1e-4
    q = quiver.load_encoder(str(encode_fixtures / "bert-cls"), max_length=32).encode_queries(reference["texts"])
    assert np.abs(q - np.array(reference["query_dense"]["bert-cls"])).max() <= 1e-4


def test_sparse_dicts_match_pytorch(encode_fixtures, reference):
    enc = quiver.load_encoder(str(encode_fixtures / "splade"), max_length=32)
    by_id = enc.encode(reference["texts"], kind="sparse", term_ids=True)
    by_term = enc.encode(reference["texts"], kind="sparse")
    for got, got_terms, want in zip(by_id, by_term, reference["splade"]):
        expected = {i: w for i, w in zip(want["ids"], want["weights"]) if w > 0}
        assert set(got) <= set(want["ids"])
        for i, w in expected.items():
            assert abs(got.get(i, 0.0) - w) <= 1e-4
        assert len(got_terms) == len(got)  # same weights keyed by vocabulary tokens
        assert sorted(got_terms.values()) == sorted(got.values())
        assert all(isinstance(t, str) for t in got_terms)


def test_multivector_matrices(encode_fixtures, reference):
    enc = quiver.load_encoder(str(encode_fixtures / "colbert"), max_length=32)
    docs = reference["texts"][: len(reference["colbert"]["documents"])]
    mats = enc.encode(docs, kind="multivector")
    for got, want in zip(mats, reference["colbert"]["documents"]):
        want = np.array(want)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4


def test_encoder_errors(encode_fixtures, tmp_path):
    with pytest.raises(quiver.NotFoundError):
        quiver.load_encoder(str(tmp_path / "nope"))
    enc = quiver.HashingEncoder(16)
    with pytest.raises(quiver.InvalidArgumentError):
        enc.encode(["x"], kind="multivector")
    with pytest.raises(quiver.InvalidArgumentError):
        enc.encode(["x"], kind="banana")
    with pytest.raises(TypeError, match="list of str"):
        enc.encode("a single string")
    with pytest.raises(TypeError, match="expected str"):
        enc.encode(["ok", 3])
    with pytest.raises(ValueError, match="role"):
        enc.encode(["x"], role="reader")


def test_hashing_encoder_is_deterministic():
    a, b = quiver.HashingEncoder(64, seed=3), quiver.HashingEncoder(64, seed=3)
    x = a.encode(["red fox", "Red  FOX!", ""])
    np.testing.assert_array_equal(x, b.encode(["red fox", "Red  FOX!", ""]))
    np.testing.assert_array_equal(x[0], x[1])  # case and punctuation folded
    assert abs(np.linalg.norm(x[0]) - 1) < 1e-6 and not x[2].any()
    assert a.dim == 64 and a.family == "hashing"


def test_metrics_by_hand():
    qrels = {"q1": {"d1": 1, "d3": 2}, "q2": {"d9": 1}}
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": [("d5", 1.0)]}
    r = quiver.eval.evaluate(qrels, run, "ndcg@3,recall@2,recip_rank,p@2")
    # q1: gains [1, 0, 2] -> DCG = 1 + 2/log2(4) = 2; ideal [2, 1] -> 2 + 1/log2(3)
    ndcg_q1 = 2 / (2 + 1 / math.log2(3))
    assert r.per_query["ndcg@3"]["q1"] == pytest.approx(ndcg_q1, abs=1e-12)
    assert r["ndcg@3"] == pytest.approx(ndcg_q1 / 2, abs=1e-12)
    assert r["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert r["recip_rank"] == pytest.approx(0.5)
    assert r["p@2"] == pytest.approx(0.25)
    assert r.queries_evaluated == 2 and set(r.metrics) == {"ndcg@3", "recall@2", "recip_rank", "p@2"}
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.eval.evaluate(qrels, run, "ndcg@x")


def test_run_file_round_trip(tmp_path):
    run = {"q1": {"d1": 0.5, "d2": 1.25}, "q2": {"d3": -1.0}}
    path = str(tmp_path / "run.txt")
    quiver.eval.write_run(path, run, "test")
    assert quiver.eval.read_run(path) == run
    text = quiver.eval.format_run(run, "t")
    assert text.splitlines()[0] == "q1 Q0 d2 1 1.25 t"
    (tmp_path / "bad.txt").write_text("q1 Q0 d1 1\n")
    with pytest.raises(quiver.InvalidArgumentError, match="bad.txt"):
        quiver.eval.read_run(str(tmp_path / "bad.txt"))


def test_load_beir_dataset():
    from conftest import data_dir, need
    ds = quiver.eval.load_dataset(str(need(data_dir() / "scifact")))
    assert ds.layout == "beir" and len(ds.documents) == 5183 and len(ds.queries) == 300
    assert sum(len(v) for v in ds.qrels.values()) == 339
    d = ds.documents[0]
    assert d.id and d.text
    q = quiver.eval.load_dataset(str(data_dir() / "scifact"), load_documents=False)
    assert len(q.documents) == 0 and len(q.queries) == 300
