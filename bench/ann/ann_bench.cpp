// quiver bench ann: dense ANN, quiver against hnswlib and FAISS on the same data and parameters.
//
// Every engine is built with the same M / ef_construction / threads, then the ef sweep runs with the
// engines interleaved (ef-major order), single-threaded search, one query per call (as ann-benchmarks
// does). Each point is timed best-of --repeat in two cache states: cold (the CPU caches evicted just
// before the pass) and warm (the pass right after a pass of the same engine and parameters, as a
// server answering a stream of queries runs). Also times batched exact search: quiver FlatIndex
// against FAISS IndexFlatIP / IndexFlatL2 over all queries at once.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include "quiver/core/thread_pool.h"
#include <sstream>

#include <unistd.h>

#include <cblas.h>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/vector_io.h"
#include "registry.h"

#ifdef QUIVER_HAVE_HNSWLIB
#include "peers/hnswlib_peer.h"
#endif
#ifdef QUIVER_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexRefine.h>
#include <omp.h>
#endif

namespace quiver::bench {
namespace {

using index::Metric;

struct Options {
    std::string base, queries, truth, metric = "cosine", index = "hnsw", peers = "hnswlib,faiss,faiss-sq8";
    std::string codecs = "none,sq8";
    std::string json_path, svg_path,
        ef_list = "10,12,14,16,18,20,22,24,28,32,36,40,44,48,56,64,72,80,88,96,112,128,144,160,192,224,256,"
                  "320,384,448,512";
    std::size_t seeds = 3;
    std::size_t k = 10, M = 16, ef_construction = 200, threads = 1, repeat = 3, max_queries = 0, max_base = 0;
    std::size_t flat_threads = 0;
    std::string rescore = "auto";  // quiver HNSW on codes: re-score depths swept (auto = the index's default)
    double target = 0.95;
    bool skip_flat = false;
    bool flat_only = false;
};

/// One engine under test: build once, then search one query at a time.
struct Engine {
    std::string name;
    std::size_t vectors = 0;
    double build_seconds = 0;
    double build_cpu_seconds = 0;      // CPU time of the build (all threads)
    std::size_t memory_bytes = 0;      // RSS growth over the build
    std::size_t reported_bytes = 0;    // the engine's own accounting, when it has one
    std::function<void(std::size_t ef)> set_ef;
    std::function<void(std::size_t depth)> set_rescore;  // quiver HNSW on codes only (null otherwise)
    std::function<void(const float* q, std::int64_t* out)> search;
    std::function<void()> destroy;
};

/// No re-score parameter (engines that walk float32 vectors, and the peers).
constexpr std::size_t kNoRescore = index::SearchParams::kRescoreDefault - 1;

struct Point {
    std::string engine;
    std::uint64_t seed;
    std::size_t ef;
    std::size_t rescore;  // kNoRescore, index::SearchParams::kRescoreDefault (auto) or a depth
    double recall, qps;  // qps: warm passes
    double cpu_qps;      // queries per CPU-second of the search thread (warm; robust to other processes)
    double qps_cold;     // passes that start with the CPU caches evicted
};

/// Evicts the CPU caches' data before a cold pass: reads a buffer of twice the last-level cache (one
/// load per line; reads only, so no dirty lines are written back during the timed pass that follows).
class CacheEvictor {
public:
    CacheEvictor() {
        long llc = ::sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (llc <= 0) llc = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (llc <= 0) llc = 32L << 20;
        buf_.assign(2 * static_cast<std::size_t>(llc), 1);
    }
    void evict() {
        unsigned sum = 0;
        for (std::size_t i = 0; i < buf_.size(); i += 64) sum += buf_[i];
        sink_ = sum;
    }
    std::size_t bytes() const noexcept { return buf_.size(); }

private:
    std::vector<unsigned char> buf_;
    volatile unsigned sink_ = 0;
};

std::vector<std::size_t> parse_list(const std::string& s) {
    std::vector<std::size_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(std::stoul(item));
    }
    return out;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

Engine make_quiver(const Matrix<float>& base, Metric metric, const Options& o, const std::string& codec,
                   std::uint64_t seed) {
    Engine e;
    e.name = codec == "none" ? "quiver-hnsw" : "quiver-hnsw-" + codec;
    e.vectors = base.rows;
    const std::size_t before = resident_bytes();
    const double cpu0 = process_cpu_seconds();
    Stopwatch sw;
    index::HnswParams hp{.M = o.M, .ef_construction = o.ef_construction, .seed = seed, .threads = o.threads};
    auto spec = index::CodecSpec::parse(codec);
    if (!spec) {
        std::fprintf(stderr, "quiver bench ann: %s\n", spec.error().to_string().c_str());
        std::exit(2);
    }
    hp.codec = *spec;
    auto idx = index::HnswIndex::create(base.dim, metric, hp);
    if (!idx) {
        std::fprintf(stderr, "quiver bench ann: %s\n", idx.error().to_string().c_str());
        std::exit(2);
    }
    std::shared_ptr<index::HnswIndex> h(std::move(*idx));
    ProgressBar bar(e.name + " build", base.rows, "vectors");
    h->set_progress(&bar);
    Status s = h->add(base, index::sequential_labels(base.rows));
    h->set_progress(nullptr);
    bar.finish();
    e.build_seconds = sw.seconds();
    e.build_cpu_seconds = process_cpu_seconds() - cpu0;
    if (!s.ok()) {
        std::fprintf(stderr, "quiver build failed: %s\n", s.error().to_string().c_str());
        std::exit(1);
    }
    e.memory_bytes = resident_bytes() - before;
    e.reported_bytes = h->memory_bytes();
    auto ef = std::make_shared<std::size_t>(10);
    auto rescore = std::make_shared<std::size_t>(index::SearchParams::kRescoreDefault);
    e.set_ef = [ef](std::size_t v) { *ef = v; };
    if (codec != "none") e.set_rescore = [rescore](std::size_t v) { *rescore = v; };
    const std::size_t k = o.k;
    e.search = [h, ef, rescore, k, dim = base.dim](const float* q, std::int64_t* out) {
        auto r = h->search(MatrixView<float>{q, 1, dim}, {.k = k, .ef = *ef, .threads = 1, .rescore = *rescore});
        for (std::size_t j = 0; j < k; ++j) {
            out[j] = r->label(0, j) == kNoLabel ? -1 : static_cast<std::int64_t>(to_int(r->label(0, j)));
        }
    };
    e.destroy = [h]() mutable { h.reset(); };
    return e;
}

/// Normalised copy for the peers' cosine (they take inner product over unit vectors).
std::vector<float> normalized_copy(const Matrix<float>& m) {
    std::vector<float> v = m.values;
    for (std::size_t r = 0; r < m.rows; ++r) simd::normalize(v.data() + r * m.dim, m.dim);
    return v;
}

/// For the peers' cosine: a query copied into a reused buffer and normalised (as their bindings do).
/// Other metrics pass the query through.
class QueryPrep {
public:
    QueryPrep(bool cosine, std::size_t dim) : cosine_(cosine), buf_(dim) {}
    const float* operator()(const float* q) {
        if (!cosine_) return q;
        std::copy(q, q + buf_.size(), buf_.begin());
        simd::normalize(buf_.data(), buf_.size());
        return buf_.data();
    }

private:
    bool cosine_;
    std::vector<float> buf_;
};

#ifdef QUIVER_HAVE_HNSWLIB
Engine make_hnswlib(const Matrix<float>& base, Metric metric, const Options& o, std::uint64_t seed) {
    Engine e;
    e.name = "hnswlib";
    e.vectors = base.rows;
    const bool cosine = metric == Metric::kCosine;
    const std::size_t before = resident_bytes();
    const double cpu0 = process_cpu_seconds();
    ProgressHeartbeat beat("hnswlib build");
    Stopwatch sw;
    void* h = qpeer_hnswlib_create(base.dim, metric != Metric::kL2, base.rows, o.M, o.ef_construction, seed);
    if (cosine) {
        // As hnswlib's Python bindings do for space='cosine': normalise, then inner product.
        std::vector<float> unit = normalized_copy(base);
        qpeer_hnswlib_add(h, unit.data(), base.rows, o.threads);
    } else {
        qpeer_hnswlib_add(h, base.values.data(), base.rows, o.threads);
    }
    e.build_seconds = sw.seconds();
    e.build_cpu_seconds = process_cpu_seconds() - cpu0;
    e.memory_bytes = resident_bytes() - before;
    e.set_ef = [h](std::size_t ef) { qpeer_hnswlib_set_ef(h, ef); };
    const std::size_t k = o.k;
    auto prep = std::make_shared<QueryPrep>(cosine, base.dim);
    e.search = [h, k, prep](const float* q, std::int64_t* out) { qpeer_hnswlib_search(h, (*prep)(q), k, out); };
    e.destroy = [h] { qpeer_hnswlib_destroy(h); };
    return e;
}
#endif

#ifdef QUIVER_HAVE_FAISS
/// FAISS HNSW families: "faiss" = IndexHNSWFlat, "faiss-sq8" = IndexHNSWSQ (QT_8bit, codes only),
/// "faiss-sq8-refine" = IndexRefineFlat over IndexHNSWSQ (float32 re-score of k_factor * k).
Engine make_faiss(const Matrix<float>& base, Metric metric, const Options& o, const std::string& variant,
                  std::uint64_t seed) {
    Engine e;
    e.name = variant == "faiss" ? "faiss-hnsw-flat" : variant == "faiss-sq8" ? "faiss-hnsw-sq8" : "faiss-hnsw-sq8-refine";
    e.vectors = base.rows;
    const bool cosine = metric == Metric::kCosine;
    const std::size_t before = resident_bytes();
    const double cpu0 = process_cpu_seconds();
    ProgressHeartbeat beat(e.name + " build");
    Stopwatch sw;
    omp_set_num_threads(static_cast<int>(o.threads));
    const faiss::MetricType fm = metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    std::shared_ptr<faiss::IndexHNSW> hnsw;
    if (variant == "faiss") {
        hnsw = std::make_shared<faiss::IndexHNSWFlat>(static_cast<int>(base.dim), static_cast<int>(o.M), fm);
    } else {
        hnsw = std::make_shared<faiss::IndexHNSWSQ>(static_cast<int>(base.dim), faiss::ScalarQuantizer::QT_8bit,
                                                    static_cast<int>(o.M), fm);
    }
    hnsw->hnsw.efConstruction = static_cast<int>(o.ef_construction);
    hnsw->hnsw.rng.mt.seed(static_cast<std::uint32_t>(seed));
    std::shared_ptr<faiss::Index> top = hnsw;
    std::shared_ptr<faiss::IndexRefineFlat> refine;
    if (variant == "faiss-sq8-refine") {
        refine = std::make_shared<faiss::IndexRefineFlat>(hnsw.get());
        refine->k_factor = 4;
        top = refine;
    }
    std::vector<float> unit;
    const float* data = base.values.data();
    if (cosine) {
        unit = normalized_copy(base);
        data = unit.data();
    }
    if (!top->is_trained) top->train(static_cast<faiss::Index::idx_t>(base.rows), data);
    top->add(static_cast<faiss::Index::idx_t>(base.rows), data);
    e.build_seconds = sw.seconds();
    e.build_cpu_seconds = process_cpu_seconds() - cpu0;
    e.memory_bytes = resident_bytes() - before;
    e.set_ef = [hnsw](std::size_t ef) { hnsw->hnsw.efSearch = static_cast<int>(ef); };
    const std::size_t k = o.k;
    auto prep = std::make_shared<QueryPrep>(cosine, base.dim);
    auto dist = std::make_shared<std::vector<float>>(k);
    e.search = [top, k, prep, dist](const float* q, std::int64_t* out) {
        std::vector<faiss::Index::idx_t> labels(k);
        top->search(1, (*prep)(q), static_cast<faiss::Index::idx_t>(k), dist->data(), labels.data());
        for (std::size_t j = 0; j < k; ++j) out[j] = labels[j];
    };
    e.destroy = [top, refine, hnsw]() mutable {
        refine.reset();
        top.reset();
        hnsw.reset();
    };
    return e;
}
#endif

double recall_of(const std::vector<std::int64_t>& got, const Matrix<std::int32_t>& truth, std::size_t nq,
                 std::size_t k) {
    double total = 0;
    for (std::size_t q = 0; q < nq; ++q) {
        std::set<std::int64_t> t(truth.row_ptr(q), truth.row_ptr(q) + k);
        std::size_t hit = 0;
        for (std::size_t j = 0; j < k; ++j) hit += t.count(got[q * k + j]);
        total += static_cast<double>(hit) / static_cast<double>(k);
    }
    return total / static_cast<double>(nq);
}

struct FlatRow {
    std::string engine;
    double seconds;
    double qps;
    std::size_t exact_queries;
};

/// Sets OpenBLAS's (process-wide) thread count for a scope.
class BlasThreads {
public:
    explicit BlasThreads(std::size_t n) : saved_(openblas_get_num_threads()) {
        openblas_set_num_threads(static_cast<int>(n));
    }
    ~BlasThreads() { openblas_set_num_threads(saved_); }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    int saved_;
};

/// The sgemm limit: the best time of the bare matrix product queries x base^T (no selection), over
/// a few tilings (whole query set x 4096 base rows as FAISS tiles it; 256 x 2048 as quiver does),
/// with `threads` OpenBLAS threads. No exact-search engine built on sgemm can beat it.
double sgemm_limit_seconds(const Matrix<float>& base, const Matrix<float>& queries, std::size_t threads,
                           std::size_t repeat) {
    BlasThreads scope(threads);
    const std::size_t nq = queries.rows, n = base.rows, d = base.dim;
    double best = 1e30;
    for (auto [qb, bb] : {std::pair<std::size_t, std::size_t>{nq, 4096}, {256, 2048}, {nq, 1024}}) {
        qb = std::min(qb, nq);
        std::vector<float> out(qb * bb);
        for (std::size_t rep = 0; rep < repeat; ++rep) {
            Stopwatch sw;
            for (std::size_t q0 = 0; q0 < nq; q0 += qb) {
                const std::size_t qn = std::min(qb, nq - q0);
                for (std::size_t b0 = 0; b0 < n; b0 += bb) {
                    const std::size_t bn = std::min(bb, n - b0);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(qn), static_cast<int>(bn),
                                static_cast<int>(d), 1.0f, queries.row_ptr(q0), static_cast<int>(d),
                                base.row_ptr(b0), static_cast<int>(d), 0.0f, out.data(), static_cast<int>(bn));
                }
            }
            best = std::min(best, sw.seconds());
        }
    }
    return best;
}

std::vector<FlatRow> run_flat(const Matrix<float>& base, const Matrix<float>& queries, Metric metric,
                              const Matrix<std::int32_t>& truth, const Options& o) {
    ProgressHeartbeat beat("batched exact search");
    std::vector<FlatRow> rows;
    const std::size_t nq = queries.rows, k = o.k;
    const std::size_t threads = resolve_threads(o.flat_threads);
    auto exact_count = [&](const std::vector<std::int64_t>& got) {
        std::size_t n = 0;
        for (std::size_t q = 0; q < nq; ++q) {
            bool same = true;
            for (std::size_t j = 0; j < k; ++j) same = same && got[q * k + j] == truth.row_ptr(q)[j];
            n += same;
        }
        return n;
    };
    const double limit = sgemm_limit_seconds(base, queries, threads, o.repeat);
    rows.push_back({fmt::format("sgemm limit ({} OpenBLAS threads, product only)", threads), limit,
                    static_cast<double>(nq) / limit, 0});
    auto flat = std::move(*index::FlatIndex::create(base.dim, metric));
    (void)flat->add(base, index::sequential_labels(base.rows));
    std::vector<std::int64_t> got(nq * k);
    {
        BlasThreads scope(threads);
        double best = 1e30;
        for (std::size_t rep = 0; rep < o.repeat; ++rep) {
            Stopwatch sw;
            auto r = flat->search(queries, {.k = k, .threads = threads});
            best = std::min(best, sw.seconds());
            for (std::size_t i = 0; i < nq * k; ++i) got[i] = static_cast<std::int64_t>(to_int(r->labels[i]));
        }
        rows.push_back({fmt::format("quiver FlatIndex ({} threads)", threads), best, static_cast<double>(nq) / best,
                        exact_count(got)});
    }
#ifdef QUIVER_HAVE_FAISS
    {
        const bool l2 = metric == Metric::kL2;
        std::unique_ptr<faiss::IndexFlat> fi;
        if (l2) fi = std::make_unique<faiss::IndexFlatL2>(static_cast<int>(base.dim));
        else fi = std::make_unique<faiss::IndexFlatIP>(static_cast<int>(base.dim));
        std::vector<float> b = metric == Metric::kCosine ? normalized_copy(base) : base.values;
        fi->add(static_cast<faiss::Index::idx_t>(base.rows), b.data());
        std::vector<float> dist(nq * k);
        std::vector<faiss::Index::idx_t> labels(nq * k);
        // Every split of the thread budget between OpenMP (selection) and OpenBLAS (the product),
        // oversubscribed ones included: FAISS's best is the one compared against.
        for (std::size_t omp = 1; omp <= threads; ++omp) {
            for (std::size_t blas = 1; blas <= threads; ++blas) {
                omp_set_num_threads(static_cast<int>(omp));
                BlasThreads scope(blas);
                double fbest = 1e30;
                for (std::size_t rep = 0; rep < o.repeat; ++rep) {
                    Stopwatch sw;
                    // Normalising the queries is part of the job for cosine, as it is inside quiver's search.
                    std::vector<float> q = metric == Metric::kCosine ? normalized_copy(queries) : queries.values;
                    fi->search(static_cast<faiss::Index::idx_t>(nq), q.data(), static_cast<faiss::Index::idx_t>(k),
                               dist.data(), labels.data());
                    fbest = std::min(fbest, sw.seconds());
                }
                for (std::size_t i = 0; i < nq * k; ++i) got[i] = labels[i];
                rows.push_back({fmt::format("faiss {} (OMP {} + OpenBLAS {})", l2 ? "IndexFlatL2" : "IndexFlatIP",
                                            omp, blas),
                                fbest, static_cast<double>(nq) / fbest, exact_count(got)});
            }
        }
        omp_set_num_threads(1);
    }
#endif
    return rows;
}

int run_ann(int argc, char** argv) {
    Options o;
    CLI::App app{"Dense ANN benchmark: quiver HNSW against hnswlib and FAISS on the same data and "
                 "parameters (single-thread search, ef sweep), plus batched exact search against "
                 "FAISS IndexFlat. Prints a table; writes JSON and an SVG recall/QPS plot."};
    app.add_option("--base", o.base, "Base vectors (.fvecs/.npy/.jsonl)")->required();
    app.add_option("--queries", o.queries, "Query vectors")->required();
    app.add_option("--truth", o.truth, "Ground truth .ivecs (computed with FlatIndex when omitted)");
    app.add_option("--metric", o.metric, "cosine | l2 | ip")->capture_default_str();
    app.add_option("--k", o.k, "Neighbours per query")->capture_default_str();
    app.add_option("--index", o.index, "quiver index under test (hnsw)")->capture_default_str();
    app.add_option("--M", o.M, "HNSW links per node")->capture_default_str();
    app.add_option("--ef-construction", o.ef_construction, "HNSW build beam")->capture_default_str();
    app.add_option("--threads", o.threads, "Build threads for every engine (search is single-threaded)")
        ->capture_default_str();
    app.add_option("--peers", o.peers,
                   "Comma list of peers: hnswlib, faiss (IndexHNSWFlat), faiss-sq8 (IndexHNSWSQ), faiss-sq8-refine "
                   "(IndexRefineFlat over IndexHNSWSQ); empty for none")
        ->capture_default_str();
    app.add_option("--codecs", o.codecs, "quiver HNSW variants: comma list of codecs walked (none = float32)")
        ->capture_default_str();
    app.add_option("--rescore", o.rescore,
                   "quiver HNSW on codes: comma list of re-score depths (candidates of the final beam re-scored "
                   "in float32; auto = the index's default, 0 = none), swept with --ef: each engine's frontier "
                   "is taken over every (ef, depth) point")
        ->capture_default_str();
    app.add_option("--seeds", o.seeds, "Build seeds per engine (the median is reported)")->capture_default_str();
    app.add_option("--ef", o.ef_list, "Comma list of ef values to sweep")->capture_default_str();
    app.add_option("--repeat", o.repeat,
                   "Timed runs per point, each a cold pass (CPU caches evicted first) then a warm one (right "
                   "after it); the best of each is kept")
        ->capture_default_str();
    app.add_option("--max-queries", o.max_queries, "Use at most this many queries (0 = all)");
    app.add_option("--max-base", o.max_base, "Use only the first N base vectors (0 = all; truth is then recomputed)");
    app.add_option("--target-recall", o.target, "Recall the summary compares at")->capture_default_str();
    app.add_option("--flat-threads", o.flat_threads, "Threads for the batched flat comparison (0 = all)");
    app.add_flag("--no-flat", o.skip_flat, "Skip the batched flat comparison");
    app.add_flag("--flat-only", o.flat_only, "Only the batched flat comparison (no HNSW sweep)");
    app.add_option("--json", o.json_path, "Write results as JSON here");
    app.add_option("--svg", o.svg_path, "Write a recall/QPS plot here (default: next to --json)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    // An output that cannot be written is refused before minutes of benchmarking, not after.
    for (const std::string* path : {&o.json_path, &o.svg_path}) {
        if (path->empty() || *path == "-") continue;
        std::FILE* f = std::fopen(path->c_str(), "a");
        if (f == nullptr) {
            std::fprintf(stderr, "quiver bench ann: cannot write %s: %s\n", path->c_str(), std::strerror(errno));
            return 2;
        }
        std::fclose(f);
    }
    if (o.index != "hnsw") {
        std::fprintf(stderr, "quiver bench ann: --index must be hnsw (flat is always measured batched)\n");
        return 2;
    }
    auto metric = simd::parse_metric(o.metric);
    if (!metric) {
        std::fprintf(stderr, "quiver bench ann: %s\n", metric.error().message().c_str());
        return 2;
    }
    auto base = storage::read_vectors(o.base, {.max_rows = o.max_base});
    auto queries = storage::read_vectors(o.queries, {.max_rows = o.max_queries});
    if (!base || !queries) {
        std::fprintf(stderr, "quiver bench ann: %s\n",
                     (!base ? base.error() : queries.error()).to_string().c_str());
        return 2;
    }
    if (base->vectors.dim != queries->vectors.dim) {
        std::fprintf(stderr, "quiver bench ann: base has dimension %zu, queries %zu\n", base->vectors.dim,
                     queries->vectors.dim);
        return 2;
    }
    const Matrix<float>& B = base->vectors;
    const Matrix<float>& Q = queries->vectors;
    const std::size_t nq = Q.rows, k = o.k;
    Matrix<std::int32_t> truth;
    if (!o.truth.empty() && o.max_base == 0) {
        auto t = storage::read_ivecs(o.truth, nq);
        if (!t) {
            std::fprintf(stderr, "quiver bench ann: %s\n", t.error().to_string().c_str());
            return 2;
        }
        truth = std::move(*t);
        if (truth.rows < nq || truth.dim < k) {
            std::fprintf(stderr, "quiver bench ann: truth has %zu rows of %zu, need %zu of %zu\n", truth.rows,
                         truth.dim, nq, k);
            return 2;
        }
    } else {
        ProgressHeartbeat beat("ground truth");
        auto flat = std::move(*index::FlatIndex::create(B.dim, *metric));
        (void)flat->add(B, index::sequential_labels(B.rows));
        auto r = *flat->search(Q, {.k = k, .threads = 0});
        truth = Matrix<std::int32_t>(nq, k);
        for (std::size_t i = 0; i < nq * k; ++i) truth.values[i] = static_cast<std::int32_t>(to_int(r.labels[i]));
    }
    std::printf("# quiver bench ann: base %zu x %zu, %zu queries, metric %s, k=%zu, M=%zu, "
                "ef_construction=%zu, build threads=%zu, simd=%s\n",
                B.rows, B.dim, nq, o.metric.c_str(), k, o.M, o.ef_construction, o.threads,
                std::string(simd::to_string(simd::active_simd_level())).c_str());
    std::fflush(stdout);  // piped: the header before the progress lines of the builds

    // Threads pinned alike for every engine: builds use --threads (quiver's pool, hnswlib's threads,
    // FAISS's OpenMP), BLAS gets the same count; searches run on one thread (OpenMP 1).
    BlasThreads blas_pin(o.threads);
    std::vector<std::string> names;  // engines in run order; quiver's first
    for (const auto& c : split_list(o.codecs)) names.push_back(c == "none" ? "quiver-hnsw" : "quiver-hnsw-" + c);
    std::vector<std::string> peer_list = split_list(o.peers);
    std::erase(peer_list, std::string("none"));
    std::vector<Point> points;
    std::vector<std::vector<Engine>> built_engines;  // per seed (builds kept for the table only)
    std::map<std::string, std::vector<Engine>> builds;  // engine name -> one Engine per seed (destroyed)
    std::vector<std::int64_t> got(nq * k);
    std::vector<std::size_t> efs;
    for (std::size_t ef : parse_list(o.ef_list)) {
        if (ef >= k) efs.push_back(ef);
    }
    std::vector<std::size_t> depths;  // re-score depths of quiver's coded walks
    for (const auto& item : split_list(o.rescore)) {
        if (item == "auto") {
            depths.push_back(index::SearchParams::kRescoreDefault);
            continue;
        }
        char* end = nullptr;
        const unsigned long v = std::strtoul(item.c_str(), &end, 10);
        if (end == item.c_str() || *end != '\0' || v >= kNoRescore) {
            std::fprintf(stderr, "quiver bench ann: --rescore takes auto or a depth, not '%s'\n", item.c_str());
            return 2;
        }
        depths.push_back(v);
    }
    if (depths.empty()) depths.push_back(index::SearchParams::kRescoreDefault);
    const std::size_t seed_runs = o.flat_only ? 0 : o.seeds;
    CacheEvictor evictor;
    for (std::size_t si = 0; si < seed_runs; ++si) {
        const std::uint64_t seed = 100 + si;
        // quiver first, then the peers: any warm-up or allocator advantage goes to the peers.
        std::vector<Engine> engines;
        for (const auto& c : split_list(o.codecs)) engines.push_back(make_quiver(B, *metric, o, c, seed));
        for (const auto& p : peer_list) {
            if (p == "hnswlib") {
#ifdef QUIVER_HAVE_HNSWLIB
                engines.push_back(make_hnswlib(B, *metric, o, seed));
#else
                std::fprintf(stderr, "note: hnswlib peer not built (libhnswlib-dev missing)\n");
#endif
            } else if (p == "faiss" || p == "faiss-sq8" || p == "faiss-sq8-refine") {
#ifdef QUIVER_HAVE_FAISS
                engines.push_back(make_faiss(B, *metric, o, p, seed));
#else
                std::fprintf(stderr, "note: faiss peer not built (libfaiss-dev missing)\n");
#endif
            } else {
                std::fprintf(stderr, "quiver bench ann: unknown peer '%s'\n", p.c_str());
                return 2;
            }
        }
#ifdef QUIVER_HAVE_FAISS
        omp_set_num_threads(1);
#endif
        // Whole passes over the query set. Repeats are interleaved across engines (rep-major), so a
        // burst of load from elsewhere hits every engine alike. Each repeat of a run is a cold pass
        // (the CPU caches evicted just before) then a warm pass (right after it: what the engine's
        // own working set leaves in the caches); each keeps its best wall time per state, and the
        // warm passes' best thread-CPU time.
        // One run per engine and re-score depth (engines without one: a single run).
        struct Run {
            std::size_t engine;
            std::size_t rescore;
        };
        std::vector<Run> runs;
        for (std::size_t e = 0; e < engines.size(); ++e) {
            if (!engines[e].set_rescore) {
                runs.push_back({e, kNoRescore});
                continue;
            }
            for (std::size_t d : depths) runs.push_back({e, d});
        }
        ProgressBar sweep(fmt::format("ef sweep, seed {}", seed), efs.size() * o.repeat * runs.size(), "passes");
        for (std::size_t ef : efs) {
            std::vector<double> best(runs.size(), 1e30), best_cpu(runs.size(), 1e30), best_cold(runs.size(), 1e30);
            std::vector<double> recall(runs.size(), 0.0);
            for (std::size_t rep = 0; rep < o.repeat; ++rep) {
                for (std::size_t r = 0; r < runs.size(); ++r) {
                    Engine& eng = engines[runs[r].engine];
                    eng.set_ef(ef);
                    if (eng.set_rescore) eng.set_rescore(runs[r].rescore);
                    auto pass = [&] {  // one whole pass over the queries: its wall seconds
                        Stopwatch sw;
                        for (std::size_t q = 0; q < nq; ++q) eng.search(Q.row_ptr(q), got.data() + q * k);
                        return sw.seconds();
                    };
                    evictor.evict();
                    best_cold[r] = std::min(best_cold[r], pass());
                    if (rep == 0) recall[r] = recall_of(got, truth, nq, k);
                    const double cpu0 = thread_cpu_seconds();
                    best[r] = std::min(best[r], pass());
                    best_cpu[r] = std::min(best_cpu[r], thread_cpu_seconds() - cpu0);
                    sweep.add(1);
                }
            }
            for (std::size_t r = 0; r < runs.size(); ++r) {
                points.push_back({engines[runs[r].engine].name, seed, ef, runs[r].rescore, recall[r],
                                  static_cast<double>(nq) / best[r], static_cast<double>(nq) / best_cpu[r],
                                  static_cast<double>(nq) / best_cold[r]});
            }
        }
        sweep.finish();
        for (auto& e : engines) {
            e.destroy();
            e.search = nullptr;
            e.set_ef = nullptr;
            builds[e.name].push_back(e);
            if (si == 0 && std::find(names.begin(), names.end(), e.name) == names.end()) names.push_back(e.name);
        }
    }

    // Per engine and seed: QPS at the target recall, interpolated on the recall/QPS Pareto frontier;
    // then the median over seeds.
    std::vector<std::vector<std::string>> rows;
    json::Value summary = json::Value::array();
    std::map<std::string, double> median_qps, median_cold;
    for (const auto& name : names) {
        const auto& bs = builds[name];
        if (bs.empty()) continue;
        std::vector<double> qps_at, cpu_qps_at, cold_at, build_s, build_cpu_s, mem;
        for (const Engine& e : bs) {
            build_s.push_back(e.build_seconds);
            build_cpu_s.push_back(e.build_cpu_seconds);
            mem.push_back(static_cast<double>(e.reported_bytes ? e.reported_bytes : e.memory_bytes) /
                          static_cast<double>(e.vectors));
        }
        for (std::size_t si = 0; si < o.seeds; ++si) {
            std::vector<std::pair<double, double>> pts, cpts, colds;
            for (const auto& p : points) {
                if (p.engine == name && p.seed == 100 + si) {
                    pts.emplace_back(p.recall, p.qps);
                    cpts.emplace_back(p.recall, p.cpu_qps);
                    colds.emplace_back(p.recall, p.qps_cold);
                }
            }
            if (pts.empty()) continue;
            qps_at.push_back(qps_at_recall(pts, o.target));
            cpu_qps_at.push_back(qps_at_recall(cpts, o.target));
            cold_at.push_back(qps_at_recall(colds, o.target));
        }
        const double q = median(qps_at), cq = median(cpu_qps_at), qc = median(cold_at);
        median_qps[name] = q;
        median_cold[name] = qc;
        rows.push_back({name, q > 0 ? fmt::format("{:.0f}", q) : "not reached", qc > 0 ? fmt::format("{:.0f}", qc) : "not reached",
                        cq > 0 ? fmt::format("{:.0f}", cq) : "-",
                        fmt::format("{:.0f}", median(mem)), fmt::format("{:.2f}", median(build_s)),
                        fmt::format("{:.2f}", median(build_cpu_s)), fmt::format("{}", qps_at.size())});
        json::Value v = json::Value::object();
        v.set("engine", json::Value::string(name));
        v.set("qps_at_target", json::Value::number(q));
        v.set("cpu_qps_at_target", json::Value::number(cq));
        v.set("cold_qps_at_target", json::Value::number(qc));
        json::Value per_seed = json::Value::array(), cold_per_seed = json::Value::array();
        for (double x : qps_at) per_seed.as_array().push_back(json::Value::number(x));
        for (double x : cold_at) cold_per_seed.as_array().push_back(json::Value::number(x));
        v.set("qps_at_target_per_seed", std::move(per_seed));
        v.set("cold_qps_at_target_per_seed", std::move(cold_per_seed));
        v.set("bytes_per_vector", json::Value::number(median(mem)));
        v.set("build_seconds", json::Value::number(median(build_s)));
        v.set("build_cpu_seconds", json::Value::number(median(build_cpu_s)));
        summary.as_array().push_back(std::move(v));
    }
    if (!o.flat_only) {
        std::printf("\nQPS at recall@%zu = %.2f, interpolated on each engine's recall/QPS Pareto frontier "
                    "(%zu ef values; quiver on codes: each with re-score depths %s), median of %zu build seeds; single-thread search, whole passes over %zu "
                    "queries, best of %zu per cache state: warm (right after a pass of the same engine and parameters) and cold (after "
                    "reading %zu MiB to evict the CPU caches); builds on %zu threads (OpenMP and OpenBLAS pinned to %zu). Debian's FAISS is a "
                    "generic build (no -march=native; OpenBLAS core type %s); hnswlib is compiled -O3 -march=native as its users build "
                    "it. bytes/vector: the engine's own accounting when it has one, else RSS growth over the build.\n%s",
                    k, o.target, efs.size(), o.rescore.c_str(), o.seeds, nq, o.repeat, evictor.bytes() >> 20, o.threads,
                    o.threads, openblas_coretype(),
                    text_table({"engine", "QPS @ target warm", "cold", "QPS per CPU-s warm", "bytes/vector", "build s",
                                "build CPU s", "seeds"},
                               rows)
                        .c_str());
        for (const auto& name : names) {
            if (name.rfind("quiver", 0) != 0 || median_qps[name] <= 0) continue;
            for (const auto& other : names) {
                if (other == name || median_qps[other] <= 0) continue;
                std::printf("  %s / %s: %.2fx warm", name.c_str(), other.c_str(), median_qps[name] / median_qps[other]);
                if (median_cold[name] > 0 && median_cold[other] > 0) {
                    std::printf(", %.2fx cold", median_cold[name] / median_cold[other]);
                }
                std::printf("\n");
            }
        }
    }
    std::vector<Engine> engines;  // (kept for the plot loop below)
    for (const auto& name : names) {
        Engine e;
        e.name = name;
        engines.push_back(e);
    }

    std::vector<FlatRow> flat_rows;
    if (!o.skip_flat) {
        flat_rows = run_flat(B, Q, *metric, truth, o);
        std::vector<std::vector<std::string>> frows;
        const double limit_qps = flat_rows.front().qps;
        for (const auto& f : flat_rows) {
            frows.push_back({f.engine, fmt::format("{:.3f}", f.seconds), fmt::format("{:.0f}", f.qps),
                             fmt::format("{:.0f}%", 100.0 * f.qps / limit_qps),
                             f.engine.rfind("sgemm", 0) == 0 ? "-" : fmt::format("{}/{}", f.exact_queries, nq)});
        }
        std::printf("\nBatched exact search, %zu queries at once, %zu threads (Debian's FAISS is a generic "
                    "build, not tuned for this CPU):\n%s",
                    nq, resolve_threads(o.flat_threads),
                    text_table({"engine", "seconds", "QPS", "share of sgemm limit", "queries equal to truth"}, frows)
                        .c_str());
        if (flat_rows.size() > 2) {
            const FlatRow* best_faiss = nullptr;
            for (std::size_t i = 2; i < flat_rows.size(); ++i) {
                if (!best_faiss || flat_rows[i].seconds < best_faiss->seconds) best_faiss = &flat_rows[i];
            }
            std::printf("  quiver / best faiss (%s): %.2fx\n", best_faiss->engine.c_str(),
                        best_faiss->seconds / flat_rows[1].seconds);
        }
    }

    if (!o.json_path.empty()) {
        json::Value root = json::Value::object();
        root.set("base", json::Value::string(o.base));
        root.set("queries", json::Value::number(static_cast<double>(nq)));
        root.set("metric", json::Value::string(o.metric));
        root.set("k", json::Value::number(static_cast<double>(k)));
        root.set("M", json::Value::number(static_cast<double>(o.M)));
        root.set("ef_construction", json::Value::number(static_cast<double>(o.ef_construction)));
        root.set("threads", json::Value::number(static_cast<double>(o.threads)));
        root.set("openblas_coretype", json::Value::string(openblas_coretype()));
        json::Value pts = json::Value::array();
        for (const auto& p : points) {
            json::Value v = json::Value::object();
            v.set("engine", json::Value::string(p.engine));
            v.set("seed", json::Value::number(static_cast<double>(p.seed)));
            v.set("ef", json::Value::number(static_cast<double>(p.ef)));
            if (p.rescore == index::SearchParams::kRescoreDefault) {
                v.set("rescore", json::Value::string("auto"));
            } else if (p.rescore != kNoRescore) {
                v.set("rescore", json::Value::number(static_cast<double>(p.rescore)));
            }
            v.set("recall", json::Value::number(p.recall));
            v.set("qps", json::Value::number(p.qps));
            v.set("cpu_qps", json::Value::number(p.cpu_qps));
            v.set("qps_cold", json::Value::number(p.qps_cold));
            pts.as_array().push_back(std::move(v));
        }
        root.set("points", std::move(pts));
        root.set("summary", std::move(summary));
        json::Value fl = json::Value::array();
        for (const auto& f : flat_rows) {
            json::Value v = json::Value::object();
            v.set("engine", json::Value::string(f.engine));
            v.set("seconds", json::Value::number(f.seconds));
            v.set("qps", json::Value::number(f.qps));
            v.set("exact_queries", json::Value::number(static_cast<double>(f.exact_queries)));
            fl.as_array().push_back(std::move(v));
        }
        root.set("flat", std::move(fl));
        if (!write_output(o.json_path, json::dump(root, true) + "\n")) {
            std::fprintf(stderr, "quiver bench ann: cannot write %s: %s\n", o.json_path.c_str(), std::strerror(errno));
            return 1;
        }
        if (o.svg_path.empty()) {
            o.svg_path = o.json_path;
            const auto dot = o.svg_path.rfind(".json");
            if (dot != std::string::npos) o.svg_path.erase(dot);
            o.svg_path += ".svg";
        }
    }
    if (!o.svg_path.empty()) {
        std::vector<PlotSeries> series;
        for (const auto& e : engines) {
            PlotSeries s{e.name, {}};
            for (const auto& p : points) {
                if (p.engine == e.name) s.points.emplace_back(p.recall, p.qps);
            }
            series.push_back(std::move(s));
        }
        const std::string svg = svg_plot(fmt::format("recall@{} vs single-thread QPS", k), "recall", "QPS", series, true);
        if (!write_output(o.svg_path, svg)) {
            std::fprintf(stderr, "quiver bench ann: cannot write %s: %s\n", o.svg_path.c_str(), std::strerror(errno));
            return 1;
        }
        std::printf("\nwrote %s\n", o.svg_path.c_str());
    }
    return 0;
}

const BenchRegistrar kRegister{"ann", "dense ANN: quiver HNSW vs hnswlib and FAISS; flat vs FAISS IndexFlat",
                               &run_ann};

}  // namespace
}  // namespace quiver::bench
