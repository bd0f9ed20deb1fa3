// Dense indexes (index/vector_index.h): the VectorIndex base class and one subclass per family.
//
// Adding a family (IVF, a codec, ...) is: a `struct XHandle : IndexHandle {}`, a `py::class_<XHandle,
// IndexHandle>` with its constructor/parameters, and one `register_family("x", wrap<XHandle>)` line so
// that `quiver.open_index` returns it. Everything generic (add/remove/search/save, numpy, GIL, locking)
// lives on the base.
#include "common.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/index/vector_index.h"

namespace quiver::python {
namespace {

using index::HnswIndex;
using index::VectorIndex;

/// One Python index object. The C++ contract lets searches run concurrently but not beside add, remove
/// or save; Python threads may do anything, so the handle enforces it: searches take the lock shared,
/// mutations exclusive. The lock is taken after the GIL is released (never the other way round).
struct IndexHandle {
    std::unique_ptr<VectorIndex> index;
    mutable std::shared_mutex mu;
    std::uint64_t next_label = 0;  ///< labels given to add() without labels start here
    std::size_t dim = 0;           ///< fixed for the index's life; read without the lock

    explicit IndexHandle(std::unique_ptr<VectorIndex> idx) : index(std::move(idx)) {
        const auto info = index->info();
        next_label = info.size;
        dim = info.dim;
    }
    virtual ~IndexHandle() = default;
};
struct FlatHandle : IndexHandle {
    using IndexHandle::IndexHandle;
};
struct HnswHandle : IndexHandle {
    using IndexHandle::IndexHandle;
    HnswIndex& hnsw() const { return static_cast<HnswIndex&>(*index); }
};

/// The index's info under the shared lock (a concurrent add may be changing its size); the GIL is
/// released while waiting for a running mutation.
index::IndexInfo locked_info(const IndexHandle& h) {
    return without_gil([&] {
        std::shared_lock lock(h.mu);
        return h.index->info();
    });
}

/// kind ("flat", "hnsw", ...) -> wraps an opened index into its Python class.
using WrapFn = py::object (*)(std::unique_ptr<VectorIndex>);
std::map<std::string, WrapFn>& families() {
    static std::map<std::string, WrapFn> f;
    return f;
}
template <class Handle>
py::object wrap(std::unique_ptr<VectorIndex> idx) {
    return py::cast(std::make_unique<Handle>(std::move(idx)));
}
void register_family(const std::string& kind, WrapFn fn) { families()[kind] = fn; }

py::object wrap_any(std::unique_ptr<VectorIndex> idx) {
    const std::string kind = idx->info().kind;
    auto it = families().find(kind);
    if (it == families().end()) {
        raise_error(unimplemented(fmt::format("index kind '{}' has no Python binding", kind)));
    }
    return it->second(std::move(idx));
}

/// Allowed labels for a filtered search (sorted, binary-searched).
class LabelSet final : public index::LabelFilter {
public:
    explicit LabelSet(std::vector<std::uint64_t> labels) : labels_(std::move(labels)) {
        std::sort(labels_.begin(), labels_.end());
    }
    bool allows(Label label) const noexcept override {
        return std::binary_search(labels_.begin(), labels_.end(), to_int(label));
    }

private:
    std::vector<std::uint64_t> labels_;
};

py::tuple search(const IndexHandle& h, const py::handle& queries, std::size_t k, std::size_t ef,
                 std::size_t threads, const py::object& allowed) {
    FloatInput in = float_matrix(queries, "queries", h.dim);
    std::unique_ptr<LabelSet> filter;
    if (!allowed.is_none()) filter = std::make_unique<LabelSet>(label_vector(allowed, "allowed"));
    index::SearchParams params{.k = k, .ef = ef, .threads = threads, .filter = filter.get()};
    index::SearchResults res = unwrap(without_gil([&] {
        std::shared_lock lock(h.mu);
        return h.index->search(in.view, params);
    }));
    const auto nq = static_cast<py::ssize_t>(res.num_queries);
    const auto kk = static_cast<py::ssize_t>(res.k);
    std::vector<py::ssize_t> shape = in.one_dimensional ? std::vector<py::ssize_t>{kk} : std::vector{nq, kk};
    // Labels are u64 with kNoLabel = 2^64 - 1 as padding: the same bits as int64 -1, FAISS's padding.
    static_assert(sizeof(Label) == sizeof(std::int64_t));
    std::vector<std::int64_t> labels(res.labels.size());
    std::memcpy(labels.data(), res.labels.data(), labels.size() * sizeof(std::int64_t));
    return py::make_tuple(to_numpy(std::move(res.distances), shape), to_numpy(std::move(labels), shape));
}

void add(IndexHandle& h, const py::handle& vectors, const py::object& labels_obj) {
    FloatInput in = float_matrix(vectors, "vectors", h.dim);
    std::vector<std::uint64_t> labels;
    if (labels_obj.is_none()) {
        labels.resize(in.view.rows);
        for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = h.next_label + i;
    } else {
        labels = label_vector(labels_obj, "labels");
        if (labels.size() != in.view.rows) {
            throw py::value_error(
                fmt::format("labels has {} entries for {} vectors", labels.size(), in.view.rows));
        }
    }
    static_assert(sizeof(Label) == sizeof(std::uint64_t));
    std::span<const Label> span(reinterpret_cast<const Label*>(labels.data()), labels.size());
    unwrap(without_gil([&] {
        std::unique_lock lock(h.mu);
        return h.index->add(in.view, span);
    }));
    for (std::uint64_t l : labels) h.next_label = std::max(h.next_label, l + 1);
}

std::size_t remove(IndexHandle& h, const py::handle& labels_obj) {
    std::vector<std::uint64_t> labels = label_vector(labels_obj, "labels");
    std::span<const Label> span(reinterpret_cast<const Label*>(labels.data()), labels.size());
    return unwrap(without_gil([&] {
        std::unique_lock lock(h.mu);
        return h.index->remove(span);
    }));
}

constexpr const char* kSearchDoc = R"doc(search(queries, k=10, *, ef=0, threads=0, allowed=None) -> (distances, labels)

The k nearest neighbours of each query, nearest first (FAISS's shape).

queries: float32 array, C-contiguous, shape (n, dim) or (dim,) for one query; viewed without copying.
k: neighbours per query.
ef: HNSW beam width (0 = max(k, 64)); larger is slower and more accurate. Ignored by flat indexes.
threads: threads over the queries (0 = all cores; a single query always runs on the calling thread).
allowed: optional sequence of labels; only these may be returned (HNSW still traverses the others).

Returns two arrays of shape (n, k) (or (k,) for a 1-D query): float32 distances (squared L2, or
1 - inner product for "ip" and "cosine") and int64 labels. Rows with fewer than k hits are padded with
label -1 and distance +inf. The GIL is released while searching, so Python threads search in parallel.)doc";

}  // namespace

void bind_index(py::module_& m) {
    py::class_<IndexHandle>(m, "VectorIndex", R"doc(Base class of the dense vector indexes.

Common interface (every family): ``add``, ``remove``, ``search``, ``save``, ``len()``, ``dim``,
``metric``, ``kind``, ``memory_bytes``. Open any saved index with :func:`quiver.open_index`.

Thread-safety: any number of threads may ``search`` at once (the GIL is released); ``add``, ``remove``,
``save`` and ``compact`` wait for running searches and block new ones while they run.)doc")
        .def_property_readonly("dim", [](const IndexHandle& h) { return h.dim; },
                               "Vector dimension.")
        .def_property_readonly("metric", [](const IndexHandle& h) { return metric_name(locked_info(h).metric); },
                               "'l2' (squared Euclidean), 'ip' (1 - inner product) or 'cosine'.")
        .def_property_readonly("kind", [](const IndexHandle& h) { return locked_info(h).kind; },
                               "Index family: 'flat', 'hnsw', ...")
        .def_property_readonly("memory_bytes", [](const IndexHandle& h) {
                                   return without_gil([&] {
                                       std::shared_lock lock(h.mu);
                                       return h.index->memory_bytes();
                                   });
                               },
                               "Bytes held for vectors, graph and ids.")
        .def_property_readonly("ntotal", [](const IndexHandle& h) { return locked_info(h).size; },
                               "Live vectors (FAISS's name for len(index)).")
        .def_readwrite("next_label", &IndexHandle::next_label,
                       "The first label add() assigns when called without labels.")
        .def("__len__", [](const IndexHandle& h) { return locked_info(h).size; })
        .def("__repr__",
             [](const IndexHandle& h) {
                 const auto info = locked_info(h);
                 return fmt::format("<quiver.{} dim={} metric={} size={}>",
                                    py::str(py::type::of(py::cast(&h)).attr("__name__")).cast<std::string>(),
                                    info.dim, metric_name(info.metric), info.size);
             })
        .def("add", &add, py::arg("vectors"), py::arg("labels") = py::none(),
             R"doc(Adds vectors (float32, C-contiguous, shape (n, dim) or (dim,)) under ``labels`` (n non-negative
integers; default: ``next_label``, ``next_label`` + 1, ...). A label already present is replaced.
Rejects a wrong dimension or non-finite values (InvalidArgumentError) without changing the index.
The GIL is released while adding.)doc")
        .def("remove", &remove, py::arg("labels"),
             "Removes labels (unknown ones are ignored); returns how many were removed.")
        .def("search", &search, py::arg("queries"), py::arg("k") = 10, py::kw_only(), py::arg("ef") = 0,
             py::arg("threads") = 0, py::arg("allowed") = py::none(), kSearchDoc)
        .def(
            "save",
            [](const IndexHandle& h, const std::string& path) {
                unwrap(without_gil([&] {
                    std::unique_lock lock(h.mu);
                    return h.index->save(path);
                }));
            },
            py::arg("path"), "Writes a versioned, checksummed file (written to path.tmp, then renamed).")
        .def_property(
            "ids", [](const IndexHandle& h) { return h.index->external_ids(); },
            [](IndexHandle& h, std::vector<std::string> ids) {
                std::unique_lock lock(h.mu);
                h.index->set_external_ids(std::move(ids));
            },
            "Optional string ids: label i names ids[i]. Saved with the index.");

    py::class_<FlatHandle, IndexHandle>(m, "FlatIndex", R"doc(FlatIndex(dim, metric="l2")

Exact (brute-force) search: the ground truth for every other index. Batches of >= 16 queries run as
BLAS matrix products; the best candidates are re-scored in double precision, ties broken by the lower
label, so the order is exact. ``metric``: "l2", "ip" or "cosine" (vectors normalised on insert).

    >>> idx = quiver.FlatIndex(128, "cosine")
    >>> idx.add(xb)                      # labels 0..n-1
    >>> D, I = idx.search(xq, k=10))doc")
        .def(py::init([](std::size_t dim, const std::string& metric) {
                 return std::make_unique<FlatHandle>(unwrap(index::FlatIndex::create(dim, parse_metric(metric))));
             }),
             py::arg("dim"), py::arg("metric") = "l2")
        .def_static(
            "open",
            [](const std::string& path) {
                return std::make_unique<FlatHandle>(unwrap(without_gil([&] { return index::FlatIndex::open(path); })));
            },
            py::arg("path"), "Opens a saved flat index (memory-mapped; copied on the first mutation).");

    py::class_<HnswHandle, IndexHandle>(m, "HnswIndex", R"doc(HnswIndex(dim, metric="l2", M=16, ef_construction=200, seed=100, threads=0)

Hierarchical Navigable Small World graph (hnswlib's algorithm and parameters).

dim: vector dimension.  metric: "l2" (squared), "ip" (1 - inner product) or "cosine".
M: links per node (2*M on level 0): memory and recall grow with it.
ef_construction: beam width while inserting: build time and graph quality grow with it.
seed: level generator seed (a single-threaded build is deterministic).
threads: insertion threads for add() (0 = all cores).

Search with ``search(queries, k, ef=...)``: ``ef`` trades speed for recall (try 64..512).
Removed labels are tombstones, reclaimed by a rebuild once they are a quarter of the slots.

    >>> idx = quiver.HnswIndex(100, "cosine", M=16, ef_construction=200)
    >>> idx.add(xb)
    >>> D, I = idx.search(xq, 10, ef=128)
    >>> idx.save("glove.hnsw"); idx2 = quiver.HnswIndex.open("glove.hnsw"))doc")
        .def(py::init([](std::size_t dim, const std::string& metric, std::size_t M, std::size_t ef_construction,
                         std::uint64_t seed, std::size_t threads) {
                 index::HnswParams params{.M = M, .ef_construction = ef_construction, .seed = seed, .threads = threads};
                 return std::make_unique<HnswHandle>(unwrap(HnswIndex::create(dim, parse_metric(metric), params)));
             }),
             py::arg("dim"), py::arg("metric") = "l2", py::arg("M") = 16, py::arg("ef_construction") = 200,
             py::arg("seed") = 100, py::arg("threads") = 0)
        .def_static(
            "open",
            [](const std::string& path) {
                return std::make_unique<HnswHandle>(unwrap(without_gil([&] { return HnswIndex::open(path); })));
            },
            py::arg("path"), "Opens a saved HNSW index (level 0 memory-mapped; copied on the first add).")
        .def_property_readonly("M", [](const HnswHandle& h) { return h.hnsw().params().M; })
        .def_property_readonly("ef_construction", [](const HnswHandle& h) { return h.hnsw().params().ef_construction; })
        .def_property_readonly("seed", [](const HnswHandle& h) { return h.hnsw().params().seed; })
        .def_property_readonly("threads", [](const HnswHandle& h) { return h.hnsw().params().threads; },
                               "Insertion threads of add() (0 = all cores).")
        .def_property_readonly("max_level", [](const HnswHandle& h) {
                                   return without_gil([&] {
                                       std::shared_lock lock(h.mu);
                                       return h.hnsw().max_level();
                                   });
                               },
                               "Highest level in the graph (-1 when empty).")
        .def_property_readonly("slots", [](const HnswHandle& h) {
                                   return without_gil([&] {
                                       std::shared_lock lock(h.mu);
                                       return h.hnsw().slots();
                                   });
                               },
                               "Nodes in the graph, live or tombstoned.")
        .def(
            "compact",
            [](HnswHandle& h) {
                unwrap(without_gil([&] {
                    std::unique_lock lock(h.mu);
                    return h.hnsw().compact();
                }));
            },
            "Rebuilds the graph from the live nodes, dropping every tombstone.");

    register_family("flat", &wrap<FlatHandle>);
    register_family("hnsw", &wrap<HnswHandle>);

    // Measurement helper for python/bench/binding_overhead.py: the C++ per-query loop of `quiver bench ann`
    // (one search call per query, one thread) over the same index object, timed in C++ (wall and thread
    // CPU seconds), so the binding's overhead is measured against the same graph in the same process.
    m.def(
        "_bench_search_loop",
        [](const IndexHandle& h, const py::handle& queries, std::size_t k, std::size_t ef) {
            FloatInput in = float_matrix(queries, "queries", h.dim);
            auto labels = std::vector<std::int64_t>(in.view.rows * k, -1);
            double wall = 0, cpu = 0;
            Status st = without_gil([&]() -> Status {
                std::shared_lock lock(h.mu);
                timespec c0{}, c1{};
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
                const auto t0 = std::chrono::steady_clock::now();
                for (std::size_t q = 0; q < in.view.rows; ++q) {
                    auto r = h.index->search(in.view.slice(q, 1), {.k = k, .ef = ef, .threads = 1});
                    if (!r) return std::move(r).error();
                    for (std::size_t j = 0; j < k; ++j) labels[q * k + j] = static_cast<std::int64_t>(to_int(r->label(0, j)));
                }
                wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
                cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) + 1e-9 * static_cast<double>(c1.tv_nsec - c0.tv_nsec);
                return ok_status();
            });
            unwrap(st);
            const auto nq = static_cast<py::ssize_t>(in.view.rows);
            return py::make_tuple(to_numpy(std::move(labels), {nq, static_cast<py::ssize_t>(k)}), wall, cpu);
        },
        py::arg("index"), py::arg("queries"), py::arg("k"), py::arg("ef"));

    m.def(
        "open_index",
        [](const std::string& path) {
            return wrap_any(unwrap(without_gil([&] { return index::open_index(path); })));
        },
        py::arg("path"), "Opens any saved quiver vector index, returning its class (FlatIndex, HnswIndex, ...).");
}

}  // namespace quiver::python
