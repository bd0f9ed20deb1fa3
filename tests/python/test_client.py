"""quiver.Client against a real `quiver serve` (the binary from $QUIVER_BINARY, set by ctest): every
route of docs/openapi.yaml is exercised (checked against the spec's list), with typed errors."""
import os
import pathlib
import re
import subprocess
import time

import numpy as np
import pytest

import quiver
from quiver import errors
from conftest import SOURCE_DIR

SCHEMA = {"fields": [
    {"name": "title", "type": "text"},
    {"name": "emb", "type": "vector", "dim": 3, "metric": "l2", "index": "hnsw"},
    {"name": "color", "type": "keyword"},
]}


def spec_routes():
    """(method, path regex) of every operation in docs/openapi.yaml."""
    routes, path = [], None
    for line in (SOURCE_DIR / "docs" / "openapi.yaml").read_text().splitlines():
        m = re.match(r"^  (/\S+):\s*$", line)
        if m:
            path = m.group(1)
            continue
        m = re.match(r"^    (get|put|post|patch|delete):\s*$", line)
        if m and path:
            rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"
            routes.append((m.group(1).upper(), path, re.compile(rx)))
    return routes


def start_server(data_dir, *extra):
    binary = os.environ.get("QUIVER_BINARY") or str(SOURCE_DIR / "build" / "release" / "bin" / "quiver")
    if not pathlib.Path(binary).exists():
        pytest.skip(f"quiver binary not found: {binary}")
    proc = subprocess.Popen([binary, "serve", "--data", str(data_dir), "--port", "0", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("quiver serve exited: " + proc.stderr.read().decode())
        try:
            m = re.search(r"address (http://\S+:(\d+))", (data_dir / "OWNER").read_text())
            if m and m.group(2) != "0":
                return proc, m.group(1)
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("quiver serve did not publish its address")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    proc, url = start_server(data, "--api-key", "s3cret")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


class Recorder(quiver.Client):
    """Records (method, /v1 path) of every request sent, to check coverage of the spec."""
    seen: list = []

    def request(self, method, path, body=None, **kw):
        Recorder.seen.append((method, "/v1" + path.split("?")[0]))
        return super().request(method, path, body, **kw)


def test_every_route(server):
    c = Recorder(server, api_key="s3cret")
    assert c.healthz() == {"status": "ok"}
    assert quiver.Client(server).healthz() == {"status": "ok"}  # no key needed
    docs = c.create_collection("docs", SCHEMA)
    info = c.get_collection("docs")
    assert info["name"] == "docs" and info["schema"]["fields"][1]["dim"] == 3
    assert docs.upsert([{"id": "a", "title": "red fox", "emb": [0, 0, 0], "color": "red"},
                        {"id": 2, "title": "blue sea", "emb": np.array([1, 0, 0], np.float32), "color": "blue"}]) == 2
    assert docs.upsert([{"id": "c", "title": "red sun", "emb": [2, 0, 0], "color": "red"}], ndjson=True) == 1
    assert [x["name"] for x in c.list_collections()] == ["docs"]
    assert c.list_collections()[0]["documents"] == 3
    assert docs.get(2) == {"id": "2", "title": "blue sea", "color": "blue"}
    assert docs.get("a", with_vectors=True)["emb"] == [0, 0, 0]
    assert docs.get("a", fields=["color"]) == {"id": "a", "color": "red"}
    r = docs.search(field="emb", vector=[0.1, 0, 0], limit=2)
    assert [h["id"] for h in r["hits"]] == ["a", "2"] and r["next_search_after"][1] == "2"
    r = docs.search({"field": "title", "text": "red"}, filter={"field": "color", "eq": "red"})
    assert {h["id"] for h in r["hits"]} == {"a", "c"} and r["next_search_after"] is None
    r = docs.search(queries=[{"field": "title", "text": "red"}, {"field": "emb", "vector": [2, 0, 0]}],
                    fusion={"method": "rrf"}, limit=1)
    assert r["hits"][0]["id"] == "c"
    b = docs.search_batch([{"field": "title", "text": "sea"}, {"field": "title", "text": "fox"}])
    assert [x["hits"][0]["id"] for x in b] == ["2", "a"]
    assert docs.count() == 3 and docs.count({"field": "color", "eq": "red"}) == 2
    page = docs.scroll(limit=2)
    assert [d["id"] for d in page["documents"]] == ["2", "a"] and page["next_cursor"] == "a"
    assert [d["id"] for d in docs.iter_documents(limit=1)] == ["2", "a", "c"]
    assert docs.patch([{"id": "a", "color": "green"}]) == 1
    assert docs.update("c", {"title": "red moon"}) == 1
    assert docs.get("c")["title"] == "red moon" and docs.get("a")["color"] == "green"
    assert docs.delete(["a", "nope"]) == 1
    assert docs.delete(filter={"field": "color", "eq": "blue"}) == 1
    assert docs.delete_document("c") == 1
    assert docs.flush() == 0 and docs.optimize() == 0
    assert "quiver_http_requests_total" in c.metrics()
    assert docs.stats()["documents"] == 0 and len(docs) == 0
    c.drop_collection("docs")
    assert c.list_collections() == []
    # Every operation of the spec was sent.
    sent = {(m, p) for m, p in Recorder.seen}
    missing = [f"{m} {p}" for m, p, rx in spec_routes() if not any(sm == m and rx.match(sp) for sm, sp in sent)]
    assert not missing, missing
    assert len(spec_routes()) >= 18  # the parser found the spec's operations


def test_typed_errors(server):
    c = quiver.Client(server, api_key="s3cret")
    with pytest.raises(errors.UnauthorizedError) as e:
        quiver.Client(server).list_collections()
    assert e.value.status == 401 and e.value.request_id
    with pytest.raises(errors.UnauthorizedError):
        quiver.Client(server, api_key="wrong").list_collections()
    with pytest.raises(errors.HttpNotFoundError) as e:
        c.get_collection("nothing")
    assert isinstance(e.value, quiver.NotFoundError) and e.value.status == 404 and e.value.code == "not_found"
    coll = c.create_collection("errs", SCHEMA)
    with pytest.raises(errors.ConflictError) as e:
        c.create_collection("errs", SCHEMA)
    assert isinstance(e.value, quiver.AlreadyExistsError) and e.value.status == 409
    with pytest.raises(errors.BadRequestError) as e:
        coll.search(field="title", text="x", bogus=True)
    assert "bogus" in e.value.message and isinstance(e.value, ValueError)
    with pytest.raises(errors.UnprocessableError) as e:
        coll.upsert([{"id": "x", "emb": [1, 2]}])
    assert e.value.status == 422
    with pytest.raises(errors.HttpNotFoundError):
        coll.get("missing")
    with pytest.raises(errors.UnsupportedMediaTypeError):
        c.request("POST", "/collections/errs/search", "{}", content_type="text/plain")
    with pytest.raises(errors.MethodNotAllowedError):
        c.request("PUT", "/collections/errs/search", {})
    c.drop_collection("errs")


def test_unreachable_server():
    with pytest.raises(quiver.UnavailableError, match="cannot reach"):
        quiver.Client("http://127.0.0.1:9", timeout=2).healthz()
