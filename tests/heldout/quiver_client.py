"""Minimal quiver HTTP API v1 client, written from docs/openapi.yaml and docs/api.md only."""
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Union

Id = Union[str, int]
Json = Dict[str, Any]


class QuiverError(Exception):
    """An error answer: {"error": {"code", "message"}} with its HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class QuiverClient:
    def __init__(self, base_url: str, api_key: Optional[str] = None, timeout: float = 30.0):
        self.base = base_url.rstrip("/") + "/v1"
        self.api_key, self.timeout = api_key, timeout
        self.last_status = 0

    # -- transport ---------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, raw: Optional[bytes] = None,
                content_type: Optional[str] = None, query: Optional[Dict[str, str]] = None) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                self.last_status = resp.status
                text = resp.read().decode()
                ctype = resp.headers.get("Content-Type", "")
                return json.loads(text) if "json" in ctype or text[:1] in "{[" else text
        except urllib.error.HTTPError as e:
            self.last_status = e.code
            text = e.read().decode(errors="replace")
            try:
                err = json.loads(text)["error"]
                raise QuiverError(e.code, err.get("code", ""), err.get("message", "")) from None
            except (ValueError, KeyError, TypeError):
                raise QuiverError(e.code, "", text) from None

    @staticmethod
    def _seg(s: Id) -> str:
        return urllib.parse.quote(str(s), safe="")

    def _c(self, name: str) -> str:
        return "/collections/" + self._seg(name)

    # -- routes (one per operationId) -------------------------------------
    def healthz(self) -> Json:
        return self.request("GET", "/healthz")

    def metrics(self) -> str:
        return self.request("GET", "/metrics")

    def list_collections(self) -> List[Json]:
        return self.request("GET", "/collections")["collections"]

    def create_collection(self, name: str, fields: List[Json], bm25: Optional[Json] = None) -> Json:
        body: Json = {"fields": fields}
        if bm25 is not None:
            body["bm25"] = bm25
        return self.request("PUT", self._c(name), body)

    def get_collection(self, name: str) -> Json:
        return self.request("GET", self._c(name))

    def drop_collection(self, name: str) -> Json:
        return self.request("DELETE", self._c(name))

    def upsert(self, name: str, documents: List[Json]) -> int:
        return self.request("POST", self._c(name) + "/documents", {"documents": documents})["upserted"]

    def upsert_ndjson(self, name: str, documents: List[Json]) -> int:
        raw = "".join(json.dumps(d) + "\n" for d in documents).encode()
        return self.request("POST", self._c(name) + "/documents", raw=raw,
                            content_type="application/x-ndjson")["upserted"]

    def patch_documents(self, name: str, documents: List[Json]) -> int:
        return self.request("PATCH", self._c(name) + "/documents", documents)["updated"]

    def patch_document(self, name: str, doc_id: Id, fields: Json) -> int:
        return self.request("PATCH", self._c(name) + "/documents/" + self._seg(doc_id), fields)["updated"]

    def get_document(self, name: str, doc_id: Id, fields: Optional[List[str]] = None,
                     with_vectors: bool = False) -> Json:
        q: Dict[str, str] = {}
        if fields is not None:
            q["fields"] = ",".join(fields)
        if with_vectors:
            q["with_vectors"] = "true"
        return self.request("GET", self._c(name) + "/documents/" + self._seg(doc_id), query=q or None)

    def delete_document(self, name: str, doc_id: Id) -> int:
        return self.request("DELETE", self._c(name) + "/documents/" + self._seg(doc_id))["deleted"]

    def delete_ids(self, name: str, ids: List[Id]) -> int:
        return self.request("POST", self._c(name) + "/documents/delete", {"ids": ids})["deleted"]

    def delete_where(self, name: str, filter: Json) -> int:
        return self.request("POST", self._c(name) + "/documents/delete", {"filter": filter})["deleted"]

    def search(self, name: str, **request: Any) -> Json:
        """SearchRequest members as keyword arguments (field, text, vector, queries, fusion, ...)."""
        return self.request("POST", self._c(name) + "/search", request)

    def search_batch(self, name: str, searches: List[Json]) -> List[Json]:
        return self.request("POST", self._c(name) + "/search/batch", {"searches": searches})["results"]

    def count(self, name: str, filter: Optional[Json] = None) -> int:
        body = None if filter is None else {"filter": filter}
        return self.request("POST", self._c(name) + "/count", body)["count"]

    def scroll(self, name: str, **request: Any) -> Json:
        return self.request("POST", self._c(name) + "/scroll", request or None)

    def flush(self, name: str) -> int:
        return self.request("POST", self._c(name) + "/flush")["documents"]

    def optimize(self, name: str) -> int:
        return self.request("POST", self._c(name) + "/optimize")["documents"]
