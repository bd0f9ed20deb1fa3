"""BM25 from Python: SciFact nDCG@10 equals `quiver eval --retriever bm25` (0.6789, Pyserini's figure),
the single-query and batched paths agree, save/open round-trips, and errors are typed."""
import pytest

import quiver
from conftest import data_dir, need


@pytest.fixture(scope="module")
def scifact():
    return quiver.eval.load_dataset(str(need(data_dir() / "scifact")))


def test_scifact_ndcg_matches_the_cli(scifact, tmp_path):
    bm25 = quiver.Bm25Index.build(scifact.documents, k1=0.9, b=0.4)
    assert len(bm25) == 5183 and (bm25.k1, bm25.b) == (pytest.approx(0.9), pytest.approx(0.4))
    run = bm25.search_batch({q.id: q.text for q in scifact.queries}, k=1001)
    report = quiver.eval.evaluate(scifact.qrels, run, "ndcg@10")  # query ids dropped from their lists
    assert report["ndcg@10"] == pytest.approx(0.6789, abs=5e-5)
    q = scifact.queries[0]
    single = bm25.search(q.text, k=20)
    # Same hits and scores (MaxScore sums a document's terms in an order that depends on k: float ulps).
    assert [s for _, s in single] == pytest.approx(sorted(run[q.id].values(), reverse=True)[:20], rel=1e-6)
    assert all(run[q.id][d] == pytest.approx(s, rel=1e-6) for d, s in single)
    path = str(tmp_path / "sci.bm25")
    bm25.save(path)
    again = quiver.Bm25Index.open(path)
    assert again.search(q.text, k=20) == single


def test_inputs_and_errors(tmp_path):
    docs = [("a", "Red Foxes", "jump over dogs"), {"_id": "b", "title": "", "text": "a red panda"}, ("c", "dogs bark")]
    bm25 = quiver.Bm25Index.build(docs)
    assert [d for d, _ in bm25.search("fox", 5)] == ["a"]  # stemmed: foxes -> fox
    assert {d for d, _ in bm25.search("red dog", 5)} == {"a", "b", "c"}
    assert bm25.search("the of and", 5) == []  # only stop words
    bm25.set_params(1.2, 0.75)
    assert bm25.k1 == pytest.approx(1.2)
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.Bm25Index.build([("a", "x"), ("a", "y")])  # duplicate id
    with pytest.raises(ValueError):
        quiver.Bm25Index.build([("a",)])
    with pytest.raises(quiver.NotFoundError):
        quiver.Bm25Index.open(str(tmp_path / "none.bm25"))
