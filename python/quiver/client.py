"""A client for ``quiver serve`` (docs/api.md, docs/openapi.yaml), standard library only.

    c = quiver.Client("http://127.0.0.1:6333", api_key="secret")
    docs = c.create_collection("docs", {"fields": [{"name": "body", "type": "text"}]})
    docs.upsert([{"id": 1, "body": "red fox"}])
    docs.search(field="body", text="fox", limit=5)["hits"]

``c.collection(name)`` has the same methods as an embedded :class:`quiver.Collection` (upsert, patch,
delete, get, search, search_batch, count, scroll, flush, optimize, stats) plus the routes that only
exist over HTTP. Error responses raise :class:`quiver.errors.HttpError` subclasses chosen by the
response's error code (``BadRequestError``, ``HttpNotFoundError``, ``ConflictError``, ...), each also an
instance of the matching library error (``NotFoundError``, ``AlreadyExistsError``, ...). A server that
cannot be reached raises :class:`quiver.UnavailableError`.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

from . import errors

__all__ = ["Client", "RemoteCollection"]


def _default(obj: Any):
    # numpy arrays and scalars without importing numpy
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _quote(segment: Any) -> str:
    return urllib.parse.quote(str(segment), safe="")


class Client:
    """Client(url, api_key=None, timeout=60).

    url: the server's base address, e.g. ``http://127.0.0.1:6333``.
    api_key: sent as ``Authorization: Bearer KEY`` on every request.
    timeout: seconds per request.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # --- transport ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, query: dict | None = None,
                content_type: str = "application/json", raw: bool = False) -> Any:
        """Sends one request to ``/v1`` + ``path``; returns the decoded JSON (or text with ``raw``)."""
        url = self.url + "/v1" + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            if isinstance(body, (bytes, str)):
                data = body.encode() if isinstance(body, str) else body
            else:
                data = json.dumps(body, default=_default, allow_nan=False).encode()
            headers["Content-Type"] = content_type
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
                if raw:
                    return payload.decode()
                return json.loads(payload) if payload else None
        except urllib.error.HTTPError as e:
            raise self._error(e) from None
        except urllib.error.URLError as e:
            raise errors.UnavailableError(f"cannot reach {self.url}: {e.reason}") from e
        except (ConnectionError, TimeoutError) as e:
            raise errors.UnavailableError(f"cannot reach {self.url}: {e}") from e

    @staticmethod
    def _error(e: urllib.error.HTTPError) -> errors.HttpError:
        payload = e.read()
        request_id = e.headers.get("X-Request-Id") if e.headers else None
        try:
            err = json.loads(payload)["error"]
            code, message = str(err["code"]), str(err["message"])
        except (ValueError, KeyError, TypeError):
            code, message = f"http_{e.code}", payload.decode(errors="replace") or str(e.reason)
        return errors._from_http(e.code, code, message, request_id)

    # --- server routes ----------------------------------------------------------------------------------
    def healthz(self) -> dict:
        """GET /v1/healthz: ``{"status": "ok"}`` (never needs the API key)."""
        return self.request("GET", "/healthz")

    def metrics(self) -> str:
        """GET /v1/metrics: Prometheus text."""
        return self.request("GET", "/metrics", raw=True)

    def list_collections(self) -> list[dict]:
        """GET /v1/collections: ``[{"name", "documents", "status"[, "error"]}]``."""
        return self.request("GET", "/collections")["collections"]

    def create_collection(self, name: str, schema: dict) -> "RemoteCollection":
        """PUT /v1/collections/{name} (ConflictError if it exists)."""
        self.request("PUT", f"/collections/{_quote(name)}", schema)
        return RemoteCollection(self, name)

    def get_collection(self, name: str) -> dict:
        """GET /v1/collections/{name}: ``{"name", "schema", "stats"}``."""
        return self.request("GET", f"/collections/{_quote(name)}")

    def drop_collection(self, name: str) -> None:
        """DELETE /v1/collections/{name}."""
        self.request("DELETE", f"/collections/{_quote(name)}")

    def collection(self, name: str) -> "RemoteCollection":
        """A handle on collection ``name`` (no request is sent)."""
        return RemoteCollection(self, name)

    def __getitem__(self, name: str) -> "RemoteCollection":
        return self.collection(name)

    def __repr__(self) -> str:
        return f"<quiver.Client {self.url}>"


class RemoteCollection:
    """One collection on a server; the methods of quiver.Collection over HTTP."""

    def __init__(self, client: Client, name: str):
        self.client = client
        self.name = name
        self._base = f"/collections/{_quote(name)}"

    def _post(self, route: str, body: Any = None, method: str = "POST", **kw) -> Any:
        return self.client.request(method, self._base + route, body, **kw)

    # --- writes -----------------------------------------------------------------------------------------
    def upsert(self, documents: dict | list[dict], *, ndjson: bool = False) -> int:
        """POST /documents: inserts or replaces; durable on return. ``ndjson`` streams one document per line."""
        if isinstance(documents, dict):
            documents = [documents]
        if ndjson:
            body = "".join(json.dumps(d, default=_default, allow_nan=False) + "\n" for d in documents)
            return self._post("/documents", body, content_type="application/x-ndjson")["upserted"]
        return self._post("/documents", {"documents": list(documents)})["upserted"]

    def patch(self, documents: dict | list[dict]) -> int:
        """PATCH /documents: merges fields into stored documents (None removes a field)."""
        if isinstance(documents, dict):
            documents = [documents]
        return self._post("/documents", {"documents": list(documents)}, method="PATCH")["updated"]

    def update(self, id: str | int, fields: dict) -> int:
        """PATCH /documents/{id}: partial update of one document."""
        return self._post(f"/documents/{_quote(id)}", fields, method="PATCH")["updated"]

    def delete(self, ids: list | None = None, *, filter: dict | None = None) -> int:
        """POST /documents/delete: by ids (unknown ones ignored) or by filter. Returns how many."""
        if (ids is None) == (filter is None):
            raise ValueError("give either ids or filter")
        if isinstance(ids, (str, int)):
            raise TypeError("ids must be a list (wrap one id: [id])")
        body = {"filter": filter} if filter is not None else {"ids": list(ids)}
        return self._post("/documents/delete", body)["deleted"]

    def delete_document(self, id: str | int) -> int:
        """DELETE /documents/{id}: 1 if it existed, else 0."""
        return self._post(f"/documents/{_quote(id)}", method="DELETE")["deleted"]

    # --- reads ------------------------------------------------------------------------------------------
    def get(self, id: str | int, *, fields: list[str] | None = None, with_vectors: bool = False) -> dict:
        """GET /documents/{id} (HttpNotFoundError when absent)."""
        query = {}
        if fields is not None:
            query["fields"] = ",".join(fields)
        if with_vectors:
            query["with_vectors"] = "true"
        return self._post(f"/documents/{_quote(id)}", method="GET", query=query or None)

    def search(self, body: dict | None = None, **kwargs) -> dict:
        """POST /search: ``{"hits": [{"id", "score", "fields"}], "next_search_after"}``."""
        merged = dict(body or {})
        merged.update(kwargs)
        result = self._post("/search", merged)
        if result.get("next_search_after") is not None:
            result["next_search_after"] = tuple(result["next_search_after"])
        return result

    def search_batch(self, bodies: list[dict]) -> list[dict]:
        """POST /search/batch: one result per body, over one snapshot."""
        results = self._post("/search/batch", {"searches": list(bodies)})["results"]
        for r in results:
            if r.get("next_search_after") is not None:
                r["next_search_after"] = tuple(r["next_search_after"])
        return results

    def count(self, filter: dict | None = None) -> int:
        """POST /count."""
        return self._post("/count", {"filter": filter} if filter is not None else None)["count"]

    def scroll(self, *, filter: dict | None = None, limit: int = 100, cursor: str | None = None,
               fields: list[str] | None = None, with_vectors: bool = False) -> dict:
        """POST /scroll: ``{"documents": [...], "next_cursor": str | None}``."""
        body: dict[str, Any] = {"limit": limit}
        if filter is not None:
            body["filter"] = filter
        if cursor is not None:
            body["cursor"] = cursor
        if fields is not None:
            body["fields"] = fields
        if with_vectors:
            body["with_vectors"] = True
        return self._post("/scroll", body)

    def iter_documents(self, **kwargs) -> Iterator[dict]:
        """Every document (matching ``filter``), paging with scroll()."""
        cursor = None
        while True:
            page = self.scroll(cursor=cursor, **kwargs)
            yield from page["documents"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    # --- maintenance --------------------------------------------------------------------------------------
    def flush(self) -> int:
        """POST /flush; returns the live document count."""
        return self._post("/flush")["documents"]

    def optimize(self) -> int:
        """POST /optimize; returns the live document count."""
        return self._post("/optimize")["documents"]

    def info(self) -> dict:
        """GET /collections/{name}: name, schema and stats."""
        return self.client.get_collection(self.name)

    def stats(self) -> dict:
        return self.info()["stats"]

    @property
    def schema(self) -> dict:
        return self.info()["schema"]

    def __len__(self) -> int:
        return self.stats()["documents"]

    def __repr__(self) -> str:
        return f"<quiver.RemoteCollection {self.name} at {self.client.url}>"
