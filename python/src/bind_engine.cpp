// Collections (engine/): Store, Collection. Requests and results use the HTTP API's JSON shapes
// (docs/api.md) as Python dicts, decoded by the server's codec (server/json_codec.h), so an embedded
// collection and quiver.Client accept the same documents, filters and search bodies.
#include "common.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <optional>

#include "quiver/core/json.h"
#include "quiver/engine/collection.h"
#include "quiver/engine/store.h"
#include "quiver/server/json_codec.h"

namespace quiver::python {
namespace {

using engine::Collection;
using engine::Store;
using json::Value;

/// Python objects -> JSON values: None, bool, int, float, str, dict (str keys), list/tuple, numpy arrays
/// and scalars.
Value to_json(const py::handle& obj, int depth = 0) {
    if (depth > 64) throw py::value_error("value nested too deeply");
    if (obj.is_none()) return Value::null();
    if (py::isinstance<py::bool_>(obj)) return Value::boolean(obj.cast<bool>());
    if (py::isinstance<py::int_>(obj)) {
        // Integers beyond 2^53 lose precision as JSON numbers; ids that large should be strings.
        return Value::number(static_cast<double>(obj.cast<long long>()));
    }
    if (py::isinstance<py::float_>(obj)) return Value::number(obj.cast<double>());
    if (py::isinstance<py::str>(obj)) return Value::string(obj.cast<std::string>());
    if (py::isinstance<py::dict>(obj)) {
        Value o = Value::object();
        for (auto [k, v] : obj.cast<py::dict>()) {
            if (!py::isinstance<py::str>(k)) {
                throw py::type_error(fmt::format("dict keys must be str, got {}",
                                                 py::str(py::type::of(k).attr("__name__")).cast<std::string>()));
            }
            o.set(k.cast<std::string>(), to_json(v, depth + 1));
        }
        return o;
    }
    if (py::isinstance<py::array>(obj)) {
        auto a = py::reinterpret_borrow<py::array>(obj);
        if (a.dtype().kind() == 'f' && a.ndim() == 1) {
            auto d = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
            Value arr = Value::array();
            arr.as_array().reserve(static_cast<std::size_t>(d.size()));
            for (py::ssize_t i = 0; i < d.size(); ++i) arr.as_array().push_back(Value::number(d.data()[i]));
            return arr;
        }
        return to_json(a.attr("tolist")(), depth + 1);
    }
    if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
        Value arr = Value::array();
        for (const py::handle& x : obj) arr.as_array().push_back(to_json(x, depth + 1));
        return arr;
    }
    if (py::hasattr(obj, "item") && py::hasattr(obj, "dtype")) return to_json(obj.attr("item")(), depth + 1);  // numpy scalar
    throw py::type_error(fmt::format("cannot convert {} to a JSON value",
                                     py::str(py::type::of(obj).attr("__name__")).cast<std::string>()));
}

py::object to_python(const Value& v) {
    switch (v.type()) {
        case Value::Type::kNull: return py::none();
        case Value::Type::kBool: return py::bool_(v.as_bool());
        case Value::Type::kNumber:
            if (v.is_integer() && std::abs(v.as_number()) < 9007199254740992.0) return py::int_(v.as_int());
            return py::float_(v.as_number());
        case Value::Type::kString: return py::str(v.as_string());
        case Value::Type::kArray: {
            py::list l;
            for (const auto& x : v.as_array()) l.append(to_python(x));
            return std::move(l);
        }
        case Value::Type::kObject: {
            py::dict d;
            for (const auto& [k, x] : v.as_object()) d[py::str(k)] = to_python(x);
            return std::move(d);
        }
    }
    return py::none();
}

/// A Python Collection: the shared collection plus its name (empty when opened by directory).
struct CollectionHandle {
    std::shared_ptr<Collection> c;
    std::string name;
};

std::vector<engine::Document> documents_from(const engine::Schema& schema, const py::handle& docs, bool keep_nulls) {
    std::vector<engine::Document> out;
    auto add_one = [&](const py::handle& d) {
        if (!py::isinstance<py::dict>(d)) {
            throw py::type_error(fmt::format("document {} must be a dict with an 'id'", out.size()));
        }
        auto r = server::document_from_json(schema, to_json(d), keep_nulls);
        if (!r) raise_error(std::move(r).error().with_context(fmt::format("document {}", out.size())));
        out.push_back(std::move(r).value());
    };
    if (py::isinstance<py::dict>(docs)) add_one(docs);
    else for (const py::handle& d : docs) add_one(d);
    return out;
}


std::optional<engine::Filter> filter_from(const py::handle& f) {
    if (f.is_none()) return std::nullopt;
    return unwrap(server::filter_from_json(to_json(f)));
}

constexpr std::size_t kMaxK = 10000;

py::dict hits_to_python(const engine::Schema& schema, const engine::SearchRequest& r,
                        const std::vector<engine::SearchHit>& hits) {
    py::list list;
    for (const auto& h : hits) {
        py::dict hit;
        hit["id"] = h.id;
        hit["score"] = h.score;
        if (h.relevance) hit["relevance"] = *h.relevance;
        if (h.chunk) hit["chunk"] = *h.chunk;
        py::dict fields = to_python(server::document_to_json(schema, h.document)).cast<py::dict>();
        if (fields.contains("id")) PyDict_DelItemString(fields.ptr(), "id");
        hit["fields"] = std::move(fields);
        list.append(std::move(hit));
    }
    py::dict out;
    out["hits"] = list;
    if (!hits.empty() && hits.size() == r.k) out["next_search_after"] = py::make_tuple(hits.back().score, hits.back().id);
    else out["next_search_after"] = py::none();
    return out;
}

/// A search body: `body` (a dict) merged with keyword arguments.
engine::SearchRequest search_request(const engine::Schema& schema, const py::object& body, const py::kwargs& kw) {
    py::dict merged;
    if (!body.is_none()) {
        if (!py::isinstance<py::dict>(body)) throw py::type_error("the search body must be a dict");
        for (auto [k, v] : body.cast<py::dict>()) merged[k] = v;
    }
    for (auto [k, v] : kw) merged[k] = v;
    return unwrap(server::search_from_json(to_json(merged), kMaxK, schema));
}

py::object document_out(const engine::Schema& schema, engine::Document d,
                        std::optional<std::vector<std::string>> names, bool with_vectors) {
    const auto keep = server::resolve_return_fields(schema, std::move(names), with_vectors);
    if (keep) {
        engine::Document projected;
        projected.id = d.id;
        for (const auto& f : *keep) {
            auto it = d.fields.find(f);
            if (it != d.fields.end()) projected.fields.emplace(f, std::move(it->second));
        }
        d = std::move(projected);
    }
    return to_python(server::document_to_json(schema, d));
}

py::dict stats_to_python(const engine::CollectionStats& s) {
    py::dict d;
    d["documents"] = s.documents;
    d["segments"] = s.segments;
    d["memory_segments"] = s.memory_segments;
    d["deleted_pending"] = s.deleted_pending;
    d["merges"] = s.merges;
    d["writes"] = s.writes;
    d["wal_syncs"] = s.wal_syncs;
    d["write_stalls"] = s.write_stalls;
    d["last_seq"] = s.last_seq;
    d["merge_failures"] = s.merge_failures;
    d["last_merge_error"] = s.last_merge_error;
    d["wal_failed"] = s.wal_failed;
    d["vector_memory_bytes"] = s.vector_memory_bytes;
    d["vector_disk_bytes"] = s.vector_disk_bytes;
    if (!s.vector_budgets.empty()) d["vector_budgets"] = to_python(server::vector_budgets_to_json(s.vector_budgets));
    return d;
}

engine::Schema schema_from(const py::handle& schema) { return unwrap(server::schema_from_json(to_json(schema))); }

engine::CollectionOptions collection_options(bool read_only, bool background_merge) {
    engine::CollectionOptions o;
    o.read_only = read_only;
    o.background_merge = background_merge;
    return o;
}

}  // namespace

void bind_engine(py::module_& m) {
    py::class_<CollectionHandle>(m, "Collection", R"doc(A persistent, crash-safe collection of documents:
text (BM25), vector (flat or HNSW, optionally embedded by an encoder), sparse-vector (optionally
SPLADE-encoded), multi-vector (token vectors scored by MaxSim, optionally ColBERT-encoded) and attribute fields.

Documents, filters and search bodies are the HTTP API's JSON shapes (docs/api.md) as Python values
(numpy arrays are accepted for vectors), so code moves between an embedded collection and
``quiver.Client(url).collection(name)`` unchanged.

    >>> store = quiver.Store("data")
    >>> c = store.create_collection("docs", {"fields": [
    ...     {"name": "body", "type": "text"},
    ...     {"name": "emb", "type": "vector", "dim": 4, "metric": "cosine"},
    ...     {"name": "lang", "type": "keyword"}]})
    >>> c.upsert([{"id": "a", "body": "red fox", "emb": [1, 0, 0, 0], "lang": "en"}])
    >>> c.search(queries=[{"field": "body", "text": "fox"}, {"field": "emb", "vector": q}],
    ...          fusion={"method": "rrf"}, filter={"field": "lang", "eq": "en"}, limit=10)["hits"]

Every write is durable (WAL fsync) when the call returns. Thread-safe; the GIL is released while
the engine works.)doc")
        .def_static(
            "create",
            [](const std::string& dir, const py::handle& schema) {
                engine::Schema s = schema_from(schema);
                return CollectionHandle{unwrap(without_gil([&] { return Collection::create(dir, s); })), ""};
            },
            py::arg("dir"), py::arg("schema"), "Creates a collection in directory ``dir`` (which must not exist).")
        .def_static(
            "open",
            [](const std::string& dir, bool read_only) {
                auto o = collection_options(read_only, true);
                return CollectionHandle{unwrap(without_gil([&] { return Collection::open(dir, o); })), ""};
            },
            py::arg("dir"), py::arg("read_only") = false,
            "Opens and recovers the collection in ``dir`` (``read_only``: beside a running owner; no writes).")
        .def_property_readonly("name", [](const CollectionHandle& h) { return h.name; })
        .def_property_readonly("dir", [](const CollectionHandle& h) { return h.c->dir(); })
        .def_property_readonly("schema", [](const CollectionHandle& h) {
            return to_python(server::schema_to_json(h.c->schema()));
        }, "The schema as a dict (the HTTP API's shape).")
        .def(
            "upsert",
            [](CollectionHandle& h, const py::handle& documents) {
                auto docs = documents_from(h.c->schema(), documents, false);
                const std::size_t n = docs.size();
                unwrap(without_gil([&] { return h.c->upsert(std::move(docs)); }));
                return n;
            },
            py::arg("documents"),
            "Inserts or replaces documents (a dict or a list of dicts with an 'id'); durable on return. "
            "Returns the number upserted.")
        .def(
            "patch",
            [](CollectionHandle& h, const py::handle& documents) {
                auto docs = documents_from(h.c->schema(), documents, true);
                return unwrap(without_gil([&] { return h.c->patch(std::move(docs)); }));
            },
            py::arg("documents"),
            "Partial updates: each dict's fields are merged into the stored document (None removes a field). "
            "NotFoundError if any id is missing (nothing written). Returns the number updated.")
        .def(
            "delete",
            [](CollectionHandle& h, const py::object& ids, const py::object& filter) {
                if (ids.is_none() == filter.is_none()) throw py::value_error("give either ids or filter");
                if (!filter.is_none()) {
                    engine::Filter f = *filter_from(filter);
                    return unwrap(without_gil([&] { return h.c->remove_where(f); }));
                }
                if (py::isinstance<py::str>(ids)) throw py::type_error("ids must be a list (wrap one id: [id])");
                std::vector<std::string> list;
                for (const py::handle& x : ids) list.push_back(unwrap(server::document_id_from_json(to_json(x))));
                return unwrap(without_gil([&] { return h.c->remove(list); }));
            },
            py::arg("ids") = py::none(), py::kw_only(), py::arg("filter") = py::none(),
            "Deletes by ids (unknown ids ignored) or by filter; durable on return. Returns how many were deleted.")
        .def(
            "get",
            [](const CollectionHandle& h, const py::handle& id, std::optional<std::vector<std::string>> fields,
               bool with_vectors) {
                const std::string key = unwrap(server::document_id_from_json(to_json(id)));
                engine::Document d = unwrap(without_gil([&] { return h.c->get(key); }));
                return document_out(h.c->schema(), std::move(d), std::move(fields), with_vectors);
            },
            py::arg("id"), py::kw_only(), py::arg("fields") = py::none(), py::arg("with_vectors") = false,
            "The stored document as a dict (all fields but vectors unless ``fields``/``with_vectors``); "
            "NotFoundError when absent.")
        .def(
            "search",
            [](const CollectionHandle& h, const py::object& body, const py::kwargs& kw) {
                const auto& schema = h.c->schema();
                engine::SearchRequest r = search_request(schema, body, kw);
                auto hits = unwrap(without_gil([&] { return h.c->search(r); }));
                return hits_to_python(schema, r, hits);
            },
            py::arg("body") = py::none(),
            R"doc(search(body=None, **kwargs) -> {"hits": [{"id", "score", "fields"}], "next_search_after"}

The HTTP search body as a dict and/or keyword arguments: one clause (field= and text=, vector=,
sparse= or vectors= (multi_vector token vectors)), several in queries=[...] fused by fusion={"method": "rrf"|"convex", "k", "normalization"},
or none (filter-only); limit (or k), offset, search_after, score_threshold, filter, fields,
with_vectors, ef. A clause may carry prf={"method": "rm3", "fb_docs": 10, "fb_terms": 10,
"original_query_weight": 0.5} (text fields) or prf={"method": "rocchio", "fb_docs": 3, "alpha": 0.9,
"beta": 0.1} (vector fields); cutoff= (a pipeline file's "cutoff") keeps the hits whose calibrated
probability of relevance is >= min_relevance (default: the trained threshold) and adds "relevance"
to each hit. Hits are ordered by score descending, then id.)doc")
        .def(
            "search_batch",
            [](const CollectionHandle& h, const py::list& bodies) {
                const auto& schema = h.c->schema();
                std::vector<engine::SearchRequest> reqs;
                for (const py::handle& b : bodies) reqs.push_back(search_request(schema, py::reinterpret_borrow<py::object>(b), {}));
                auto results = unwrap(without_gil([&] { return h.c->search_batch(reqs); }));
                py::list out;
                for (std::size_t i = 0; i < reqs.size(); ++i) out.append(hits_to_python(schema, reqs[i], results[i]));
                return out;
            },
            py::arg("bodies"), "Several searches over one snapshot; one result per body, in order.")
        .def(
            "count",
            [](const CollectionHandle& h, const py::object& filter) {
                auto f = filter_from(filter);
                return unwrap(without_gil([&] { return h.c->count(f); }));
            },
            py::arg("filter") = py::none(), "Live documents (matching ``filter``).")
        .def(
            "scroll",
            [](const CollectionHandle& h, const py::object& filter, std::size_t limit, std::optional<std::string> cursor,
               std::optional<std::vector<std::string>> fields, bool with_vectors) {
                const auto& schema = h.c->schema();
                engine::ScrollRequest sr;
                sr.filter = filter_from(filter);
                sr.limit = limit;
                if (cursor) sr.after = *cursor;
                sr.return_fields = server::resolve_return_fields(schema, std::move(fields), with_vectors);
                auto page = unwrap(without_gil([&] { return h.c->scroll(sr); }));
                py::list docs;
                for (const auto& d : page.documents) docs.append(to_python(server::document_to_json(schema, d)));
                py::dict out;
                out["documents"] = docs;
                out["next_cursor"] = page.next_after ? py::object(py::str(*page.next_after)) : py::object(py::none());
                return out;
            },
            py::kw_only(), py::arg("filter") = py::none(), py::arg("limit") = 100, py::arg("cursor") = py::none(),
            py::arg("fields") = py::none(), py::arg("with_vectors") = false,
            R"doc(A page of documents in id order: {"documents": [...], "next_cursor": str | None}. Pass
next_cursor as ``cursor`` for the next page; every document unchanged during the walk appears once.)doc")
        .def(
            "flush",
            [](CollectionHandle& h) {
                unwrap(without_gil([&] { return h.c->flush(); }));
                return h.c->stats().documents;
            },
            "Persists in-memory segments and reclaims deletes; returns the live document count.")
        .def(
            "optimize",
            [](CollectionHandle& h) {
                unwrap(without_gil([&] { return h.c->optimize(); }));
                return h.c->stats().documents;
            },
            "Merges everything into one segment; returns the live document count.")
        .def("stats", [](const CollectionHandle& h) { return stats_to_python(h.c->stats()); },
             "Counts as of the latest snapshot (documents, segments, merges, writes, wal_syncs, ...).")
        .def("__len__", [](const CollectionHandle& h) { return h.c->stats().documents; })
        .def(
            "close", [](CollectionHandle& h) { without_gil([&] { h.c->close(); }); },
            "Stops the merger; later writes fail with FailedPreconditionError.")
        .def("__enter__", [](CollectionHandle& h) -> CollectionHandle& { return h; }, py::return_value_policy::reference)
        .def("__exit__", [](CollectionHandle& h, py::args) { without_gil([&] { h.c->close(); }); })
        .def("__repr__", [](const CollectionHandle& h) {
            return fmt::format("<quiver.Collection {} documents={}>", h.name.empty() ? h.c->dir() : h.name,
                               h.c->stats().documents);
        });

    py::class_<Store>(m, "Store", R"doc(Store(dir): a data directory of named collections (what ``quiver serve``
serves). Collections that fail to open (damaged files) are listed by ``unavailable()``.

    >>> store = quiver.Store("data")
    >>> c = store.create_collection("docs", schema)
    >>> store["docs"] is an equal handle; store.list_collections() -> ["docs"])doc")
        .def(py::init([](const std::string& dir, bool background_merge) {
                 auto o = collection_options(false, background_merge);
                 return unwrap(without_gil([&] { return Store::open(dir, o); }));
             }),
             py::arg("dir"), py::arg("background_merge") = true)
        .def_property_readonly("dir", &Store::dir)
        .def(
            "create_collection",
            [](Store& s, const std::string& name, const py::handle& schema) {
                engine::Schema sc = schema_from(schema);
                return CollectionHandle{unwrap(without_gil([&] { return s.create(name, sc); })), name};
            },
            py::arg("name"), py::arg("schema"), "Creates a collection (AlreadyExistsError if the name is taken).")
        .def(
            "collection",
            [](const Store& s, const std::string& name) {
                return CollectionHandle{unwrap(without_gil([&] { return s.get(name); })), name};
            },
            py::arg("name"), "The open collection ``name`` (NotFoundError, or UnavailableError if damaged).")
        .def("__getitem__", [](const Store& s, const std::string& name) {
            return CollectionHandle{unwrap(without_gil([&] { return s.get(name); })), name};
        })
        .def("__contains__", [](const Store& s, const std::string& name) {
            const auto names = s.list();
            return std::find(names.begin(), names.end(), name) != names.end();
        })
        .def(
            "drop_collection",
            [](Store& s, const std::string& name) { unwrap(without_gil([&] { return s.drop(name); })); },
            py::arg("name"), "Drops a collection (open or unavailable) and its files.")
        .def("list_collections", &Store::list, "Names of the open collections.")
        .def(
            "unavailable",
            [](const Store& s) {
                py::dict d;
                for (const auto& u : s.unavailable()) d[py::str(u.name)] = u.error.to_string();
                return d;
            },
            "Collections that failed to open: {name: error}.");
}

}  // namespace quiver::python
