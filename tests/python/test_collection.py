"""Embedded collections: Store/Collection create/open, upsert, patch, delete, get, search with filters
and fusion, count, scroll, persistence across reopen, and typed errors."""
import numpy as np
import pytest

import quiver

SCHEMA = {"fields": [
    {"name": "title", "type": "text"},
    {"name": "emb", "type": "vector", "dim": 4, "metric": "cosine", "index": "flat"},
    {"name": "lang", "type": "keyword"},
    {"name": "year", "type": "integer"},
    {"name": "tags", "type": "keyword_list"},
]}

DOCS = [
    {"id": "a", "title": "red fox jumps", "emb": [1, 0, 0, 0], "lang": "en", "year": 2001, "tags": ["x"]},
    {"id": "b", "title": "blue whale swims", "emb": [0, 1, 0, 0], "lang": "en", "year": 2010, "tags": ["y"]},
    {"id": "c", "title": "red panda sleeps", "emb": [0.9, 0.1, 0, 0], "lang": "fr", "year": 2020,
     "tags": ["x", "y"]},
    {"id": 7, "title": "green frog", "emb": np.array([0, 0, 1, 0], np.float32), "lang": "de", "year": 1999},
]


@pytest.fixture
def store(tmp_path):
    s = quiver.Store(str(tmp_path / "data"))
    yield s


def test_crud_and_search(store):
    c = store.create_collection("docs", SCHEMA)
    assert store.list_collections() == ["docs"] and "docs" in store
    assert c.upsert(DOCS) == 4 and len(c) == 4
    assert c.get(7) == {"id": "7", "title": "green frog", "lang": "de", "year": 1999}  # vectors hidden
    assert c.get("a", with_vectors=True)["emb"] == [1.0, 0.0, 0.0, 0.0]
    assert c.get("a", fields=["lang"]) == {"id": "a", "lang": "en"}
    # text
    r = c.search(field="title", text="red", limit=10)
    assert [h["id"] for h in r["hits"]] == ["a", "c"]  # equal BM25 scores: ids ascending
    assert r["hits"][0]["score"] == r["hits"][1]["score"] > 0
    assert r["next_search_after"] is None
    # vector (numpy query), nearest first; score = -(1 - cos)
    r = c.search({"field": "emb", "vector": np.array([1, 0, 0, 0], np.float32), "limit": 2})
    assert [h["id"] for h in r["hits"]] == ["a", "c"]
    assert r["hits"][0]["score"] == pytest.approx(0.0, abs=1e-6)
    assert r["next_search_after"] == (r["hits"][1]["score"], "c")
    # filters
    r = c.search(field="emb", vector=[1, 0, 0, 0], filter={"field": "lang", "eq": "fr"})
    assert [h["id"] for h in r["hits"]] == ["c"]
    r = c.search(field="emb", vector=[1, 0, 0, 0],
                 filter={"and": [{"field": "year", "range": {"gte": 2000}}, {"field": "tags", "in": ["y"]}]})
    assert [h["id"] for h in r["hits"]] == ["c", "b"]
    # hybrid: RRF of text and vector (c is 2nd in both lists -> 2/(60+2)); a is 1st and 1st
    r = c.search(queries=[{"field": "title", "text": "red"}, {"field": "emb", "vector": [1, 0, 0, 0]}],
                 fusion={"method": "rrf", "k": 60}, limit=3)
    assert r["hits"][0]["id"] in ("a", "c")
    scores = {h["id"]: h["score"] for h in r["hits"]}
    assert max(scores.values()) == pytest.approx(2 / 61)
    r = c.search(queries=[{"field": "title", "text": "red"}, {"field": "emb", "vector": [1, 0, 0, 0], "weight": 0}],
                 fusion={"method": "convex", "normalization": "min_max"})
    assert r["hits"][0]["score"] == pytest.approx(1.0)
    # filter-only, count, batch
    assert [h["id"] for h in c.search(filter={"field": "lang", "eq": "en"})["hits"]] == ["a", "b"]
    assert c.count() == 4 and c.count({"field": "lang", "eq": "en"}) == 2
    batch = c.search_batch([{"field": "title", "text": "frog"}, {"field": "title", "text": "whale"}])
    assert [b["hits"][0]["id"] for b in batch] == ["7", "b"]
    # patch, delete
    assert c.patch({"id": "a", "lang": "fr", "year": None}) == 1
    assert c.get("a") == {"id": "a", "title": "red fox jumps", "lang": "fr", "tags": ["x"]}
    assert c.delete(["b", "zzz"]) == 1
    assert c.delete(filter={"field": "lang", "eq": "de"}) == 1
    assert c.count() == 2
    with pytest.raises(quiver.NotFoundError):
        c.get("b")
    with pytest.raises(quiver.NotFoundError):
        c.patch([{"id": "nope", "lang": "en"}])


def test_scroll_pages_every_document(store):
    c = store.create_collection("s", SCHEMA)
    c.upsert([{"id": f"d{i:03d}", "lang": "en" if i % 2 else "fr"} for i in range(25)])
    seen, cursor = [], None
    while True:
        page = c.scroll(limit=7, cursor=cursor)
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"d{i:03d}" for i in range(25)]
    assert len(c.scroll(filter={"field": "lang", "eq": "en"}, limit=100)["documents"]) == 12


def test_persistence_and_reopen(tmp_path):
    d = str(tmp_path / "data")
    s = quiver.Store(d)
    c = s.create_collection("p", SCHEMA)
    c.upsert(DOCS)
    assert c.flush() == 4
    c.optimize()
    assert c.stats()["segments"] == 1
    c.close()
    del c, s
    s2 = quiver.Store(d)
    c2 = s2["p"]
    assert c2.count() == 4 and c2.get("c")["lang"] == "fr"
    assert c2.schema["fields"][1]["dim"] == 4
    ro = quiver.Collection.open(str(tmp_path / "data" / "p"), read_only=True)
    assert ro.count() == 4
    with pytest.raises(quiver.FailedPreconditionError):
        ro.upsert([{"id": "z"}])
    s2.drop_collection("p")
    assert s2.list_collections() == []


def test_collection_without_store(tmp_path):
    with quiver.Collection.create(str(tmp_path / "c"), {"fields": [
            {"name": "body", "type": "text"},
            {"name": "v", "type": "vector", "dim": 32, "encoder": "hashing", "sources": ["body"]}]}) as c:
        c.upsert([{"id": 1, "body": "the quick brown fox"}, {"id": 2, "body": "lazy dogs sleep"}])
        # the vector field embeds text at upsert and at query time
        assert c.search(field="v", text="quick fox", limit=1)["hits"][0]["id"] == "1"
    with pytest.raises(quiver.FailedPreconditionError):
        c.upsert([{"id": 3, "body": "x"}])


def test_errors_are_typed(store):
    c = store.create_collection("e", SCHEMA)
    with pytest.raises(quiver.AlreadyExistsError):
        store.create_collection("e", SCHEMA)
    with pytest.raises(quiver.NotFoundError):
        store["missing"]
    with pytest.raises(quiver.InvalidArgumentError, match="dim"):
        store.create_collection("bad", {"fields": [{"name": "v", "type": "vector"}]})
    with pytest.raises(quiver.InvalidArgumentError, match="document 'x'.*dimension 2"):
        c.upsert([{"id": "ok"}, {"id": "x", "emb": [1, 2]}])  # wrong dimension names the document
    assert c.count() == 0  # the whole batch was refused
    with pytest.raises(quiver.InvalidArgumentError, match="unknown"):
        c.search(field="nope", text="x")
    with pytest.raises(quiver.InvalidArgumentError):
        c.search(field="title", text="x", bogus=1)
    with pytest.raises(TypeError):
        c.upsert([object()])
    with pytest.raises(ValueError, match="either ids or filter"):
        c.delete()


def test_multi_vector_and_encoded_sparse_fields(tmp_path):
    """multi_vector fields take token vectors (lists or 2-D numpy arrays) scored by MaxSim; with the
    committed SPLADE / ColBERT fixture models, sparse_vector and multi_vector fields take text."""
    import os
    s = quiver.Store(str(tmp_path / "data"))
    c = s.create_collection("mv", {"fields": [{"name": "tv", "type": "multi_vector", "dim": 2, "index": "exact"},
                                              {"name": "lang", "type": "keyword"}]})
    c.upsert([{"id": "x", "tv": [[1, 0], [0, 1]], "lang": "en"},
              {"id": "y", "tv": np.array([[0.5, 0.5]], np.float32), "lang": "fr"}])
    r = c.search(field="tv", vectors=np.array([[1, 0], [0, 2]], np.float32), limit=5)
    assert [(h["id"], h["score"]) for h in r["hits"]] == [("x", 3.0), ("y", 1.5)]
    r = c.search(field="tv", vectors=[[1, 0], [0, 2]], filter={"field": "lang", "eq": "fr"})
    assert [h["id"] for h in r["hits"]] == ["y"]
    assert c.get("y", with_vectors=True)["tv"] == [[0.5, 0.5]]
    with pytest.raises(quiver.InvalidArgumentError):
        c.search(field="tv", vectors=[[1, 0, 0]])  # wrong dimension
    models = os.path.join(os.environ["QUIVER_SOURCE_DIR"], "tests", "data", "encode")
    e = s.create_collection("enc", {"fields": [
        {"name": "body", "type": "text"},
        {"name": "splade", "type": "sparse_vector", "encoder": os.path.join(models, "splade"), "sources": ["body"]},
        {"name": "colbert", "type": "multi_vector", "dim": 16, "encoder": os.path.join(models, "colbert"),
         "sources": ["body"]}]})
    e.upsert([{"id": "p", "body": "protein cell gene"}, {"id": "d", "body": "the quick brown fox"}])
    stored = e.get("p", with_vectors=True)
    assert len(stored["colbert"][0]) == 16 and all(w > 0 for w in stored["splade"].values())
    for field in ("splade", "colbert"):  # (the fixture models are tiny: a document's own text finds it)
        r = e.search(field=field, text="protein cell gene", limit=2)
        assert r["hits"][0]["id"] == "p"
        r = e.search(field=field, text="the quick brown fox", limit=2)
        assert r["hits"][0]["id"] == "d"
    r = e.search(queries=[{"field": "body", "text": "fox"}, {"field": "splade", "text": "fox"},
                          {"field": "colbert", "text": "fox"}], fusion={"method": "rrf"}, limit=1)
    assert r["hits"][0]["id"] == "d"


def test_prf_and_calibrated_cutoff(store):
    c = store.create_collection("docs", SCHEMA)
    c.upsert(DOCS)
    # vector Rocchio with alpha 0, beta 1 and 2 feedback documents: the query becomes mean(a, c) = [.95, .05, 0, 0]
    prf = {"method": "rocchio", "fb_docs": 2, "alpha": 0, "beta": 1}
    r = c.search(field="emb", vector=[0.8, 0.6, 0, 0], prf=prf, limit=4)
    moved = np.array([0.95, 0.05, 0, 0]) / np.linalg.norm([0.95, 0.05, 0, 0])
    for h in r["hits"]:
        v = np.array(c.get(h["id"], with_vectors=True)["emb"])
        assert h["score"] == pytest.approx(float(moved @ v / np.linalg.norm(v)) - 1.0, abs=1e-5)
    with pytest.raises(quiver.InvalidArgumentError, match="rocchio"):
        c.search(field="emb", vector=[1, 0, 0, 0], prf={"method": "rm3"})
    # a cut-off with slope 1 and no bias: P = sigmoid(score - top score); only ties with the top reach 0.5
    six = [0, 0, 0, 0, 0, 0]
    cut = {"method": "calibrated", "depth": 4, "threshold": 0.5, "feature_mean": six, "feature_scale": [1] * 6,
           "wa": six, "wb": six}
    r = c.search(field="title", text="red", cutoff=cut)
    assert [h["id"] for h in r["hits"]] == ["a", "c"] and all(h["relevance"] == 0.5 for h in r["hits"])
    assert "relevance" not in c.search(field="title", text="red")["hits"][0]
