"""Chunked text fields through the Python package: the schema's `chunking` round-trips, and hits carry
the index of their document's best chunk."""
import pytest

import quiver

SCHEMA = {"fields": [
    {"name": "title", "type": "text", "indexed": False},
    {"name": "body", "type": "text", "indexed": False},
    {"name": "contents", "type": "text", "sources": ["title", "body"],
     "chunking": {"unit": "tokens", "size": 4, "overlap": 1}},
]}


def test_chunked_field(tmp_path):
    store = quiver.Store(str(tmp_path / "data"))
    c = store.create_collection("docs", SCHEMA)
    assert c.schema["fields"][2]["chunking"] == {
        "unit": "tokens", "size": 4, "overlap": 1, "situated": False, "context": 0, "aggregation": "maxp"}
    # "long": units a b c d | d e f g | g h owl i -> owl is in chunk 2 (windows of 4, stride 3)
    c.upsert([{"id": "long", "title": "T", "body": "a b c d e f g h owl i"},
              {"id": "short", "title": "U", "body": "no birds here"}])
    r = c.search(field="contents", text="owl", limit=5)
    assert [h["id"] for h in r["hits"]] == ["long"]
    assert r["hits"][0]["chunk"] == 2
    # A bad spec is refused.
    with pytest.raises(quiver.InvalidArgumentError):
        store.create_collection("bad", {"fields": [
            {"name": "t", "type": "text", "chunking": {"size": 2, "overlap": 2}}]})


def test_chunked_vector_field(tmp_path):
    """A vector field with an encoder and `chunking`: each chunk is embedded and indexed, hits carry
    their best chunk, `get` returns the chunk vectors, and they can be sent back as they are."""
    store = quiver.Store(str(tmp_path / "data"))
    schema = {"fields": [
        {"name": "title", "type": "text", "indexed": False},
        {"name": "body", "type": "text", "indexed": False},
        {"name": "dense", "type": "vector", "dim": 128, "metric": "cosine", "index": "flat",
         "encoder": "hashing", "sources": ["title", "body"], "chunking": "tokens:size=4,overlap=1"},
    ]}
    c = store.create_collection("vecs", schema)
    assert c.schema["fields"][2]["chunking"] == {
        "unit": "tokens", "size": 4, "overlap": 1, "situated": False, "context": 0, "aggregation": "maxp"}
    c.upsert([{"id": "long", "title": "T", "body": "a b c d e f g h owl i"},
              {"id": "short", "title": "U", "body": "no birds here"}])
    r = c.search(field="dense", text="owl", limit=1)
    assert [h["id"] for h in r["hits"]] == ["long"]
    assert r["hits"][0]["chunk"] == 2  # "g h owl i"
    doc = c.get("long", with_vectors=True)
    assert len(doc["dense"]) == 3 and all(len(row) == 128 for row in doc["dense"])
    # The stored chunk vectors go back in unchanged (an upsert of what `get` returned).
    c.upsert([doc])
    r = c.search(field="dense", text="owl", limit=1)
    assert r["hits"][0]["id"] == "long" and r["hits"][0]["chunk"] == 2
    # Chunking needs an encoder; a single vector for a chunked field is refused.
    with pytest.raises(quiver.InvalidArgumentError):
        store.create_collection("bad", {"fields": [
            {"name": "v", "type": "vector", "dim": 4, "chunking": "tokens"}]})
    with pytest.raises(quiver.InvalidArgumentError):
        c.upsert([{"id": "x", "dense": [0.5] * 128}])
