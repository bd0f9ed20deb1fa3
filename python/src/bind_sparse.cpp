// Sparse retrieval (sparse/): the BM25 index (Lucene-exact scoring, block-max MaxScore).
#include "common.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <shared_mutex>

#include "quiver/core/thread_pool.h"
#include "quiver/sparse/bm25_index.h"

namespace quiver::python {
namespace {

using sparse::Bm25Index;

/// Searches are concurrent (shared lock, GIL released); set_params is exclusive.
struct Bm25Handle {
    Bm25Index index;
    mutable std::shared_mutex mu;
    explicit Bm25Handle(Bm25Index i) : index(std::move(i)) {}
};

py::list hits_to_list(const Bm25Index& index, const std::vector<sparse::Bm25Hit>& hits) {
    py::list out;
    for (const auto& h : hits) {
        const std::string_view id = index.doc_id(h.doc);
        out.append(py::make_tuple(py::str(id.data(), id.size()), h.score));
    }
    return out;
}

}  // namespace

void bind_sparse(py::module_& m) {
    py::class_<Bm25Handle>(m, "Bm25Index", R"doc(A BM25 index with Lucene 9's BM25Similarity exactly (Lucene
English analysis: StandardTokenizer, possessives, lower case, stop words, Porter stemming; title and
text indexed as one field, as Pyserini's BEIR indexes).

    >>> bm25 = quiver.Bm25Index.build([("d1", "Title", "some text"), ...], k1=0.9, b=0.4)
    >>> bm25.search("query text", k=10)            # [("d1", 3.21), ...]
    >>> run = bm25.search_batch({"q1": "text", ...}, k=1000)   # {qid: {docid: score}}

Searches run with the GIL released and may run from many threads.)doc")
        .def_static(
            "build",
            [](const py::iterable& docs, float k1, float b, std::size_t threads) {
                // Documents: (id, title, text) tuples, (id, text) pairs, dicts with _id/id, title, text,
                // or quiver.eval.Document objects. Strings are copied once, then viewed by the build.
                std::vector<std::string> owned;
                std::vector<std::size_t> starts;
                for (const py::handle& d : docs) {
                    std::string id, title, text;
                    if (py::isinstance<py::tuple>(d) || py::isinstance<py::list>(d)) {
                        auto t = d.cast<py::sequence>();
                        if (t.size() == 2) {
                            id = py::str(t[0]).cast<std::string>();
                            text = t[1].cast<std::string>();
                        } else if (t.size() == 3) {
                            id = py::str(t[0]).cast<std::string>();
                            title = t[1].cast<std::string>();
                            text = t[2].cast<std::string>();
                        } else {
                            throw py::value_error("a document tuple is (id, text) or (id, title, text)");
                        }
                    } else if (py::isinstance<py::dict>(d)) {
                        auto o = d.cast<py::dict>();
                        py::object idv = py::none();
                        if (o.contains("_id")) idv = o["_id"];
                        else if (o.contains("id")) idv = o["id"];
                        if (idv.is_none()) throw py::value_error("a document dict needs '_id' or 'id'");
                        id = py::str(idv).cast<std::string>();
                        if (o.contains("title") && !o["title"].is_none()) title = o["title"].cast<std::string>();
                        if (o.contains("text") && !o["text"].is_none()) text = o["text"].cast<std::string>();
                    } else if (py::hasattr(d, "id") && py::hasattr(d, "text")) {
                        id = d.attr("id").cast<std::string>();
                        text = d.attr("text").cast<std::string>();
                        if (py::hasattr(d, "title")) title = d.attr("title").cast<std::string>();
                    } else {
                        throw py::type_error("documents must be (id, [title,] text) tuples, dicts or eval.Document");
                    }
                    starts.push_back(owned.size());
                    owned.push_back(std::move(id));
                    owned.push_back(std::move(title));
                    owned.push_back(std::move(text));
                }
                std::vector<sparse::Bm25Document> views;
                views.reserve(starts.size());
                for (std::size_t s : starts) views.push_back({owned[s], owned[s + 1], owned[s + 2]});
                Bm25Index::BuildOptions options;
                options.params = {.k1 = k1, .b = b};
                options.threads = threads;
                return std::make_unique<Bm25Handle>(
                    unwrap(without_gil([&] { return Bm25Index::build(views, options); })));
            },
            py::arg("documents"), py::kw_only(), py::arg("k1") = 0.9f, py::arg("b") = 0.4f, py::arg("threads") = 0,
            "Analyses and indexes documents ((id, text), (id, title, text), dicts with _id/title/text, or "
            "quiver.eval.Document). InvalidArgumentError for an empty or duplicate id.")
        .def_static(
            "open",
            [](const std::string& path) {
                return std::make_unique<Bm25Handle>(unwrap(without_gil([&] { return Bm25Index::open(path); })));
            },
            py::arg("path"), "Opens a saved index (memory-mapped).")
        .def(
            "save",
            [](const Bm25Handle& h, const std::string& path) {
                unwrap(without_gil([&] {
                    std::shared_lock lock(h.mu);
                    return h.index.save(path);
                }));
            },
            py::arg("path"))
        .def(
            "search",
            [](const Bm25Handle& h, const std::string& query, std::size_t k) {
                std::vector<sparse::Bm25Hit> hits = unwrap(without_gil([&]() -> Result<std::vector<sparse::Bm25Hit>> {
                    std::shared_lock lock(h.mu);
                    QUIVER_ASSIGN_OR_RETURN(auto searcher, sparse::Bm25Searcher::create(h.index));
                    return searcher.search(query, k);
                }));
                return hits_to_list(h.index, hits);
            },
            py::arg("query"), py::arg("k") = 10, "Top-k [(doc_id, score)], best first (ties by document order).")
        .def(
            "search_batch",
            [](const Bm25Handle& h, const py::dict& queries, std::size_t k, std::size_t threads) {
                std::vector<std::string> ids, texts;
                for (auto [qid, text] : queries) {
                    ids.push_back(py::str(qid).cast<std::string>());
                    texts.push_back(text.cast<std::string>());
                }
                std::vector<std::vector<sparse::Bm25Hit>> results(texts.size());
                unwrap(without_gil([&]() -> Status {
                    std::shared_lock lock(h.mu);
                    ThreadPool pool(threads);
                    std::vector<std::unique_ptr<sparse::Bm25Searcher>> searchers(pool.size());
                    for (auto& s : searchers) {
                        QUIVER_ASSIGN_OR_RETURN(auto made, sparse::Bm25Searcher::create(h.index));
                        s = std::make_unique<sparse::Bm25Searcher>(std::move(made));
                    }
                    pool.parallel_for(texts.size(), [&](std::size_t i, std::size_t worker) {
                        results[i] = searchers[worker]->search(texts[i], k);
                    });
                    return ok_status();
                }));
                py::dict run;
                for (std::size_t i = 0; i < ids.size(); ++i) {
                    py::dict hits;
                    for (const auto& hit : results[i]) {
                        const std::string_view id = h.index.doc_id(hit.doc);
                        hits[py::str(id.data(), id.size())] = hit.score;
                    }
                    run[py::str(ids[i])] = std::move(hits);
                }
                return run;
            },
            py::arg("queries"), py::arg("k") = 1000, py::kw_only(), py::arg("threads") = 0,
            "Searches {qid: text} on `threads` threads (0 = all cores); returns the run {qid: {doc_id: score}} "
            "for quiver.eval.evaluate.")
        .def(
            "set_params",
            [](Bm25Handle& h, float k1, float b) {
                unwrap(without_gil([&] {
                    std::unique_lock lock(h.mu);
                    return h.index.set_params({.k1 = k1, .b = b});
                }));
            },
            py::arg("k1"), py::arg("b"), "Changes k1 and b (recomputes norms and block bounds; O(postings)).")
        .def_property_readonly("k1", [](const Bm25Handle& h) { return h.index.params().k1; })
        .def_property_readonly("b", [](const Bm25Handle& h) { return h.index.params().b; })
        .def_property_readonly("num_terms", [](const Bm25Handle& h) { return h.index.num_terms(); })
        .def_property_readonly("average_length", [](const Bm25Handle& h) { return h.index.average_length(); })
        .def("__len__", [](const Bm25Handle& h) { return h.index.num_docs(); })
        .def("__repr__", [](const Bm25Handle& h) {
            return fmt::format("<quiver.Bm25Index documents={} terms={} k1={} b={}>", h.index.num_docs(),
                               h.index.num_terms(), h.index.params().k1, h.index.params().b);
        });
}

}  // namespace quiver::python
