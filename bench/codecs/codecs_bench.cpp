// quiver bench codecs: compressed-vector indexes (flat or IVF over codes, float32 rescore) against the
// FAISS index of the same family, on the same data, threads and (for IVF) nlist.
//
// For each codec, quiver and its peer are built once; then a grid of (nprobe, rescore depth) is searched
// with every query (one batch call per point, --threads threads, best of --repeat). The summary row per
// engine is QPS at --target-recall read off its recall/QPS Pareto frontier (interpolated, as bench ann
// does) and the fastest grid point reaching it, with the
// resident bytes per vector (codes + ids + amortised parameters; float vectors for the rescore are
// listed separately: quiver keeps them in RAM, or with --vectors-on-disk / --memory-only in its saved
// file read with pread; FAISS IndexRefineFlat holds them in RAM) and the build seconds. Peers: sq8/sq4 -> IndexScalarQuantizer / IndexIVFScalarQuantizer; pq<M>x8 -> IndexPQ /
// IndexIVFPQ; pq<M>x4 -> IndexPQFastScan / IndexIVFPQFastScan; binary1 -> IndexLSH (sign bits, trained
// thresholds); all wrapped in IndexRefineFlat (k_factor = rescore / k). RaBitQ and multi-plane binary
// have no FAISS 1.7.3 peer. Debian's FAISS is a generic build (no -march=native, no AVX-512 kernels).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "codecs/code_engines.h"
#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/index/code_index.h"
#include "quiver/storage/vector_io.h"
#include "registry.h"

#ifdef QUIVER_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexLSH.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPQFastScan.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <omp.h>
#endif

namespace quiver::bench {
namespace {

using index::Metric;

struct Options {
    std::string base, queries, truth, metric = "cosine", index = "flat", codecs = "sq8,sq4,pq25x8,pq50x4,rabitq1,rabitq4,binary1";
    std::string nprobe_list = "1,2,4,8,16,32,64", rescore_list = "auto,0,10,20,40,80,160,320,640,1280", json_path, peers = "faiss";
    std::size_t k = 10, nlist = 0, threads = 1, repeat = 2, max_queries = 0;
    std::uint64_t seed = 42;
    double target = 0.95;
    double memory_fraction = 8;  // the memory comparison: resident at most 1/this of the float32 vectors
    bool memory_only = false;    // only the codecs that can take part in the memory comparison
    bool vectors_on_disk = false;  // quiver's float32 vectors for the rescore read from its file with pread
};

struct Point {
    std::string engine;
    std::size_t nprobe, rescore;
    double recall, qps;
};

std::vector<std::size_t> parse_list(const std::string& s) {
    std::vector<std::size_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item == "auto") out.push_back(index::SearchParams::kRescoreDefault);
        else if (!item.empty()) out.push_back(std::stoul(item));
    }
    return out;
}

double recall_of(const std::vector<std::int64_t>& got, const Matrix<std::int32_t>& truth, std::size_t nq, std::size_t k) {
    double total = 0;
    for (std::size_t q = 0; q < nq; ++q) {
        std::set<std::int64_t> t(truth.row_ptr(q), truth.row_ptr(q) + k);
        std::size_t hit = 0;
        for (std::size_t j = 0; j < k; ++j) hit += t.count(got[q * k + j]);
        total += static_cast<double>(hit) / static_cast<double>(k);
    }
    return total / static_cast<double>(nq);
}

std::string rescore_name(std::size_t r) {
    return r == index::SearchParams::kRescoreDefault ? "auto" : std::to_string(r);
}

std::vector<float> normalized_copy(const Matrix<float>& m) {
    std::vector<float> v = m.values;
    for (std::size_t r = 0; r < m.rows; ++r) simd::normalize(v.data() + r * m.dim, m.dim);
    return v;
}

}  // namespace

Result<CodeEngine> make_quiver_codes(const Matrix<float>& base, const Matrix<float>& queries, Metric metric,
                                 const std::string& codec, std::size_t nlist, std::size_t threads, std::size_t k,
                                 std::uint64_t seed, const std::string& disk_dir) {
    QUIVER_ASSIGN_OR_RETURN(index::CodecSpec spec, index::CodecSpec::parse(codec));
    CodeEngine e;
    e.name = fmt::format("quiver {}{}", nlist > 0 ? fmt::format("ivf{},", nlist) : std::string("flat,"), codec);
    ProgressHeartbeat beat(e.name + " build");
    Stopwatch sw;
    QUIVER_ASSIGN_OR_RETURN(auto idx, index::CodeIndex::create(base.dim, metric,
                                                                {.codec = spec, .nlist = nlist, .seed = seed,
                                                                 .threads = 0}));
    QUIVER_TRY(idx->add(base, index::sequential_labels(base.rows)));
    e.build_seconds = sw.seconds();
    const auto f = idx->footprint();
    e.resident_per_vector = f.resident_per_vector();
    e.float_per_vector = double(f.float_bytes) / double(f.vectors);
    e.floats_where = "RAM";
    e.adaptive_rescore = true;
    if (!disk_dir.empty()) {
        std::string file = fmt::format("{}/{}.qidx", disk_dir, e.name);
        std::replace_if(file.begin() + static_cast<std::ptrdiff_t>(disk_dir.size()) + 1, file.end(),
                        [](char c) { return c == ' ' || c == ','; }, '_');
        QUIVER_TRY(idx->save(file));
        idx.reset();
        QUIVER_ASSIGN_OR_RETURN(idx, index::CodeIndex::open(file, {.vectors_on_disk = true, .verify = true}));
        e.floats_where = "disk (pread)";
        e.drop_cache = [file] {
            const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return;
            ::fdatasync(fd);
            ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            ::close(fd);
        };
    }
    std::shared_ptr<index::CodeIndex> h(std::move(idx));
    const MatrixView<float> qv = queries.view();
    e.search = [h, qv, k, threads](std::size_t nprobe, std::size_t rescore, std::vector<std::int64_t>& out) {
        auto r = h->search(qv, {.k = k, .threads = threads, .nprobe = nprobe, .rescore = rescore});
        out.resize(qv.rows * k);
        for (std::size_t i = 0; i < out.size(); ++i) {
            out[i] = r->labels[i] == kNoLabel ? -1 : static_cast<std::int64_t>(to_int(r->labels[i]));
        }
    };
    return e;
}

#ifdef QUIVER_HAVE_FAISS
std::optional<CodeEngine> make_faiss_codes(const Matrix<float>& base, const Matrix<float>& queries, Metric metric,
                                       const std::string& codec, std::size_t nlist, std::size_t threads, std::size_t k) {
    auto spec = index::CodecSpec::parse(codec);
    if (!spec) return std::nullopt;
    const int d = static_cast<int>(base.dim);
    const auto fm = metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    omp_set_num_threads(static_cast<int>(resolve_threads(threads)));
    std::shared_ptr<faiss::Index> coarse;
    if (nlist > 0) {
        if (fm == faiss::METRIC_L2) coarse = std::make_shared<faiss::IndexFlatL2>(d);
        else coarse = std::make_shared<faiss::IndexFlatIP>(d);
    }
    std::shared_ptr<faiss::Index> inner;
    std::string name;
    double code_bytes = 0;
    switch (spec->kind) {
        case index::CodecKind::kSq8:
        case index::CodecKind::kSq4: {
            const auto qt = spec->kind == index::CodecKind::kSq8 ? faiss::ScalarQuantizer::QT_8bit
                                                                 : faiss::ScalarQuantizer::QT_4bit;
            if (nlist > 0) {
                inner = std::make_shared<faiss::IndexIVFScalarQuantizer>(coarse.get(), d, nlist, qt, fm, true);
                name = "IndexIVFScalarQuantizer";
            } else {
                inner = std::make_shared<faiss::IndexScalarQuantizer>(d, qt, fm);
                name = "IndexScalarQuantizer";
            }
            code_bytes = spec->kind == index::CodecKind::kSq8 ? d : (d + 1) / 2;
            break;
        }
        case index::CodecKind::kPq:
            if (spec->bits == 8) {
                if (nlist > 0) {
                    inner = std::make_shared<faiss::IndexIVFPQ>(coarse.get(), d, nlist, spec->m, 8, fm);
                    name = "IndexIVFPQ";
                } else {
                    inner = std::make_shared<faiss::IndexPQ>(d, spec->m, 8, fm);
                    name = "IndexPQ";
                }
                code_bytes = spec->m;
            } else {
                if (nlist > 0) {
                    inner = std::make_shared<faiss::IndexIVFPQFastScan>(coarse.get(), d, nlist, spec->m, 4, fm);
                    name = "IndexIVFPQFastScan";
                } else {
                    inner = std::make_shared<faiss::IndexPQFastScan>(d, spec->m, 4, fm);
                    name = "IndexPQFastScan";
                }
                code_bytes = (spec->m + 1) / 2;
            }
            break;
        case index::CodecKind::kBinary:
            if (spec->bits != 1 || nlist > 0) return std::nullopt;
            inner = std::make_shared<faiss::IndexLSH>(d, d, false, true);
            name = "IndexLSH";
            code_bytes = (d + 7) / 8;
            break;
        default: return std::nullopt;
    }
    CodeEngine e;
    e.name = fmt::format("faiss {}+IndexRefineFlat", name);
    ProgressHeartbeat beat(e.name + " build");
    Stopwatch sw;
    auto refine = std::make_shared<faiss::IndexRefineFlat>(inner.get());
    std::vector<float> b = metric == Metric::kCosine ? normalized_copy(base) : base.values;
    const auto n = static_cast<faiss::Index::idx_t>(base.rows);
    // FAISS trains on its default sample sizes (k-means subsamples to 256 points per centroid).
    refine->train(n, b.data());
    refine->add(n, b.data());
    e.build_seconds = sw.seconds();
    // Codes, 8-byte ids in IVF lists, and the trained parameters amortised as quiver's are: SQ ranges
    // (2d floats), PQ codebooks (2^b x d floats), LSH thresholds (d floats), IVF centroids.
    double params = 0;
    if (spec->kind == index::CodecKind::kSq8 || spec->kind == index::CodecKind::kSq4) params = 2.0 * d * 4;
    if (spec->kind == index::CodecKind::kPq) params = double(1u << spec->bits) * d * 4;
    if (spec->kind == index::CodecKind::kBinary) params = double(d) * 4;
    params += nlist > 0 ? double(nlist) * d * 4 : 0.0;
    e.resident_per_vector = code_bytes + (nlist > 0 ? 8.0 : 0.0) + params / double(base.rows);
    e.float_per_vector = 4.0 * d;
    e.floats_where = "RAM (IndexRefineFlat)";
    auto qs = std::make_shared<std::vector<float>>(metric == Metric::kCosine ? normalized_copy(queries) : queries.values);
    const std::size_t nq = queries.rows;
    e.search = [refine, inner, coarse, qs, nq, k, nlist, threads](std::size_t nprobe, std::size_t rescore,
                                                                  std::vector<std::int64_t>& out) {
        omp_set_num_threads(static_cast<int>(resolve_threads(threads)));
        if (nlist > 0) dynamic_cast<faiss::IndexIVF*>(inner.get())->nprobe = nprobe;
        std::vector<float> dist(nq * k);
        std::vector<faiss::Index::idx_t> labels(nq * k);
        if (rescore == 0) {
            inner->search(static_cast<faiss::Index::idx_t>(nq), qs->data(), static_cast<faiss::Index::idx_t>(k), dist.data(), labels.data());
        } else {
            refine->k_factor = static_cast<float>(std::max(rescore, k)) / static_cast<float>(k);
            refine->search(static_cast<faiss::Index::idx_t>(nq), qs->data(), static_cast<faiss::Index::idx_t>(k), dist.data(), labels.data());
        }
        out.assign(labels.begin(), labels.end());
    };
    return e;
}
#else
std::optional<CodeEngine> make_faiss_codes(const Matrix<float>&, const Matrix<float>&, Metric, const std::string&,
                                           std::size_t, std::size_t, std::size_t) {
    return std::nullopt;
}
#endif

namespace {

int run_codecs(int argc, char** argv) {
    Options o;
    CLI::App app{"Compressed-vector benchmark: quiver flat/IVF over codes (sq, pq, rabitq, binary) with a float32 "
                 "rescore, against the FAISS index of the same family (generic Debian build). Prints a table; "
                 "writes JSON with every grid point."};
    app.add_option("--base", o.base, "Base vectors (.fvecs/.npy/.jsonl)")->required();
    app.add_option("--queries", o.queries, "Query vectors")->required();
    app.add_option("--truth", o.truth, "Exact neighbours (.ivecs, e.g. from `quiver gt`)")->required();
    app.add_option("--metric", o.metric, "cosine | l2 | ip")->capture_default_str();
    app.add_option("--k", o.k, "Neighbours per query")->capture_default_str();
    app.add_option("--index-type", o.index, "flat | ivf")->capture_default_str();
    app.add_option("--nlist", o.nlist, "IVF lists (0 = 4 * sqrt(rows))");
    app.add_option("--codecs", o.codecs, "Comma list of codecs")->capture_default_str();
    app.add_option("--nprobe", o.nprobe_list, "IVF nprobe values to sweep")->capture_default_str();
    app.add_option("--rescore", o.rescore_list, "Rescore depths to sweep (0 = none; auto = the index default, RaBitQ's bound)")->capture_default_str();
    app.add_option("--threads", o.threads, "Search threads for every engine (FAISS OpenMP pinned to it)")->capture_default_str();
    app.add_option("--repeat", o.repeat, "Timed runs per point; the best is kept")->capture_default_str();
    app.add_option("--max-queries", o.max_queries, "Use at most this many queries (0 = all)");
    app.add_option("--target-recall", o.target, "Recall the summary compares at")->capture_default_str();
    app.add_option("--peers", o.peers, "faiss, or empty for none")->capture_default_str();
    app.add_option("--seed", o.seed, "quiver k-means / codec seed")->capture_default_str();
    app.add_option("--memory-fraction", o.memory_fraction,
                   "Memory comparison: the fastest quiver engine resident in at most 1/F of the float32 vectors "
                   "against the fastest FAISS engine with no more resident bytes")
        ->capture_default_str();
    app.add_flag("--memory-only", o.memory_only,
                 "Only the memory comparison: skip the codecs whose codes alone (quiver's code size, which FAISS's "
                 "same-family codes match) exceed 1/F of the float32 vector, for both engines alike (GloVe-100k, "
                 "F = 8: pq25x8, pq50x4, rabitq1, binary1 of the default list)");
    app.add_flag("--vectors-on-disk", o.vectors_on_disk,
                 "Save each quiver index and re-open it with its float32 vectors on disk: the rescore reads them "
                 "with pread (implied by --memory-only); the summary adds a cold pass at the best point, the "
                 "file evicted from the page cache first");
    app.add_option("--json", o.json_path, "Write every point as JSON here");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    auto metric = simd::parse_metric(o.metric);
    auto base = storage::read_vectors(o.base);
    auto queries = storage::read_vectors(o.queries, {.max_rows = o.max_queries});
    auto truth = storage::read_ivecs(o.truth);
    if (!metric || !base || !queries || !truth || (o.index != "flat" && o.index != "ivf")) {
        std::fprintf(stderr, "quiver bench codecs: %s\n",
                     !metric ? metric.error().message().c_str()
                     : !base ? base.error().to_string().c_str()
                     : !queries ? queries.error().to_string().c_str()
                     : !truth ? truth.error().to_string().c_str()
                              : "--index-type must be flat or ivf");
        return 2;
    }
    const Matrix<float>& B = base->vectors;
    const Matrix<float>& Q = queries->vectors;
    const std::size_t nq = Q.rows, k = o.k;
    if (truth->rows < nq || truth->dim < k) {
        std::fprintf(stderr, "quiver bench codecs: truth has %zu rows of %zu ids\n", truth->rows, truth->dim);
        return 2;
    }
    std::size_t nlist = 0;
    if (o.index == "ivf") {
        nlist = o.nlist > 0 ? o.nlist : std::max<std::size_t>(1, static_cast<std::size_t>(4 * std::sqrt(double(B.rows))));
    }
    const auto nprobes = nlist > 0 ? parse_list(o.nprobe_list) : std::vector<std::size_t>{0};
    const auto rescores = parse_list(o.rescore_list);

    std::vector<Point> points;
    struct Summary {
        std::string codec;
        CodeEngine engine;
        std::optional<Point> best;
        double cold_qps = 0;      // one pass at the best point with the on-disk vectors evicted first
        double frontier_qps = 0;  // QPS at the target, interpolated on the recall/QPS Pareto frontier
    };
    std::string disk_dir;
    if (o.vectors_on_disk || o.memory_only) {
        char tmpl[] = "/tmp/quiver-bench-codecs-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            std::fprintf(stderr, "quiver bench codecs: cannot create a directory for the on-disk indexes\n");
            return 1;
        }
        disk_dir = tmpl;
    }
    struct RemoveDir {
        const std::string& dir;
        ~RemoveDir() {
            if (!dir.empty()) std::filesystem::remove_all(dir);
        }
    } remove_dir{disk_dir};
    std::vector<Summary> summaries;
    std::stringstream cs(o.codecs);
    std::string codec;
    while (std::getline(cs, codec, ',')) {
        if (codec.empty()) continue;
        if (o.memory_only) {
            // Engines over the budget never enter the comparison (quiver's must fit it, FAISS's must not
            // exceed quiver's), so neither engine of a codec whose codes alone exceed it is built.
            const double limit = 4.0 * static_cast<double>(B.dim) / o.memory_fraction;
            auto spec = index::CodecSpec::parse(codec);
            if (!spec) {
                std::fprintf(stderr, "quiver bench codecs: %s: %s\n", codec.c_str(), spec.error().to_string().c_str());
                return 2;
            }
            auto c = index::Codec::create(*spec, B.dim, *metric == Metric::kCosine ? Metric::kInnerProduct : *metric);
            if (!c) {
                std::fprintf(stderr, "quiver bench codecs: %s: %s\n", codec.c_str(), c.error().to_string().c_str());
                return 2;
            }
            if (static_cast<double>((*c)->code_size()) > limit) {
                std::fprintf(stderr, "quiver bench codecs: --memory-only: %s skipped (%zu code bytes > %.1f)\n",
                             codec.c_str(), (*c)->code_size(), limit);
                continue;
            }
        }
        std::vector<CodeEngine> engines;
        auto q = make_quiver_codes(B, Q, *metric, codec, nlist, o.threads, k, o.seed, disk_dir);
        if (!q) {
            std::fprintf(stderr, "quiver bench codecs: %s: %s\n", codec.c_str(), q.error().to_string().c_str());
            return 2;
        }
        engines.push_back(std::move(*q));
        if (o.peers.find("faiss") != std::string::npos) {
            if (auto f = make_faiss_codes(B, Q, *metric, codec, nlist, o.threads, k)) engines.push_back(std::move(*f));
        }
        for (auto& e : engines) {
            std::optional<Point> best;
            std::vector<std::pair<double, double>> curve;  // (recall, QPS) of every grid point
            std::vector<std::int64_t> got;
            ProgressHeartbeat beat(e.name + " sweep");
            for (std::size_t np : nprobes) {
                bool reached_all = false;
                for (std::size_t r : rescores) {
                    // "auto" is the index's own default (RaBitQ: by its error bound); FAISS has none.
                    if (r == index::SearchParams::kRescoreDefault && !e.adaptive_rescore) continue;
                    double secs = 1e30;
                    for (std::size_t rep = 0; rep < o.repeat; ++rep) {
                        Stopwatch sw;
                        e.search(np, r, got);
                        secs = std::min(secs, sw.seconds());
                    }
                    const Point p{e.name, np, r, recall_of(got, *truth, nq, k), double(nq) / secs};
                    points.push_back(p);
                    curve.emplace_back(p.recall, p.qps);
                    if (p.recall >= o.target && (!best || p.qps > best->qps)) best = p;
                    // Deeper fixed rescoring only costs more once recall is (nearly) perfect.
                    if (r != index::SearchParams::kRescoreDefault && p.recall >= 0.999) {
                        reached_all = true;
                        break;
                    }
                }
                (void)reached_all;
            }
            double cold = 0;
            if (best && e.drop_cache) {
                e.drop_cache();
                Stopwatch sw;
                e.search(best->nprobe, best->rescore, got);
                cold = double(nq) / sw.seconds();
            }
            summaries.push_back({codec, std::move(e), best, cold, qps_at_recall(curve, o.target)});
        }
    }

    std::vector<std::vector<std::string>> rows;
    for (const auto& s : summaries) {
        rows.push_back({s.engine.name, s.best ? fmt::format("{:.0f}", s.frontier_qps) : "not reached",
                        s.best ? fmt::format("{:.0f}", s.best->qps) : "-",
                        s.best ? fmt::format("{:.4f}", s.best->recall) : "-",
                        s.best ? (nlist > 0 ? fmt::format("nprobe {} rescore {}", s.best->nprobe, rescore_name(s.best->rescore))
                                            : fmt::format("rescore {}", rescore_name(s.best->rescore)))
                               : "-",
                        s.cold_qps > 0 ? fmt::format("{:.0f}", s.cold_qps) : "-",
                        fmt::format("{:.1f}", s.engine.resident_per_vector),
                        fmt::format("{:.0f} ({})", s.engine.float_per_vector, s.engine.floats_where),
                        fmt::format("{:.2f}", s.engine.build_seconds)});
    }
    std::printf("quiver bench codecs: %s, %zu x %zu, %zu queries, k=%zu, %s, search threads %zu. Provisional "
                "figures on a shared machine. FAISS is Debian's libfaiss 1.7.3, a generic build; OpenBLAS core type "
                "%s.\n",
                o.base.c_str(), B.rows, B.dim, nq, k, nlist > 0 ? fmt::format("IVF nlist {}", nlist).c_str() : "flat",
                o.threads, openblas_coretype());
    std::printf("%s", text_table({"engine", fmt::format("QPS@{} (frontier)", o.target), "best point QPS", "recall@k", "at",
                                  "cold QPS", "resident B/vec",
                                  "float B/vec for rescore", "build s"},
                                 rows)
                          .c_str());
    // The memory comparison (issue 14): the fastest quiver engine whose resident bytes (codes, lists,
    // ids, parameters; float32 vectors for the rescore on disk) are at most 1/F of the float32 vectors,
    // against the fastest FAISS engine of this run with no more resident bytes than that quiver engine,
    // and against the fastest FAISS engine within the same budget. QPS at the target on each engine's
    // frontier. FAISS's IndexRefineFlat floats are in RAM but not counted.
    const double budget = 4.0 * static_cast<double>(B.dim) / o.memory_fraction;
    auto fastest = [&](const char* prefix, double limit) {
        const Summary* best = nullptr;
        for (const auto& s : summaries) {
            if (s.engine.name.rfind(prefix, 0) != 0 || !s.best || s.engine.resident_per_vector > limit) continue;
            if (best == nullptr || s.frontier_qps > best->frontier_qps) best = &s;
        }
        return best;
    };
    const Summary* mq = fastest("quiver", budget);
    const Summary* mf = mq != nullptr ? fastest("faiss", mq->engine.resident_per_vector) : nullptr;
    const Summary* mfb = fastest("faiss", budget);
    std::printf("\nMemory comparison (resident <= 1/%g of float32 = %.1f B/vector; float32 vectors for the rescore "
                "not counted: quiver's %s, FAISS's in RAM; QPS at recall %.2f on each frontier):\n",
                o.memory_fraction, budget, disk_dir.empty() ? "in RAM" : "on disk", o.target);
    if (mq == nullptr) {
        std::printf("  no quiver engine of this run fits and reaches recall %.2f\n", o.target);
    } else {
        std::printf("  quiver: %s, %.1f B/vector, %.0f QPS\n", mq->engine.name.c_str(), mq->engine.resident_per_vector,
                    mq->frontier_qps);
        auto line = [&](const Summary* f, double limit, const char* what) {
            if (f == nullptr) {
                std::printf("  faiss, %s (<= %.1f B/vector): no engine of this run reaches recall %.2f\n", what, limit,
                            o.target);
            } else {
                std::printf("  faiss, %s (<= %.1f B/vector): %s, %.1f B/vector, %.0f QPS; quiver / faiss %.2fx\n", what,
                            limit, f->engine.name.c_str(), f->engine.resident_per_vector, f->frontier_qps,
                            mq->frontier_qps / f->frontier_qps);
            }
        };
        line(mf, mq->engine.resident_per_vector, "no more resident bytes than quiver's");
        line(mfb, budget, "within the budget");
    }
    if (!o.json_path.empty()) {
        json::Value root = json::Value::object();
        root.set("base", json::Value::string(o.base));
        root.set("queries", json::Value::number(double(nq)));
        root.set("k", json::Value::number(double(k)));
        root.set("nlist", json::Value::number(double(nlist)));
        if (mq != nullptr) {
            json::Value mem = json::Value::object();
            mem.set("fraction", json::Value::number(o.memory_fraction));
            mem.set("quiver", json::Value::string(mq->engine.name));
            mem.set("quiver_qps", json::Value::number(mq->frontier_qps));
            mem.set("faiss", mf != nullptr ? json::Value::string(mf->engine.name) : json::Value::null());
            mem.set("faiss_qps", mf != nullptr ? json::Value::number(mf->frontier_qps) : json::Value::null());
            mem.set("faiss_within_budget", mfb != nullptr ? json::Value::string(mfb->engine.name) : json::Value::null());
            mem.set("faiss_within_budget_qps", mfb != nullptr ? json::Value::number(mfb->frontier_qps) : json::Value::null());
            root.set("memory_comparison", std::move(mem));
        }
        root.set("threads", json::Value::number(double(o.threads)));
        root.set("faiss", json::Value::string("Debian libfaiss 1.7.3 (generic build)"));
        root.set("openblas_coretype", json::Value::string(openblas_coretype()));
        json::Value pts = json::Value::array();
        for (const auto& p : points) {
            json::Value v = json::Value::object();
            v.set("engine", json::Value::string(p.engine));
            v.set("nprobe", json::Value::number(double(p.nprobe)));
            v.set("rescore", p.rescore == index::SearchParams::kRescoreDefault ? json::Value::string("auto")
                                                                               : json::Value::number(double(p.rescore)));
            v.set("recall", json::Value::number(p.recall));
            v.set("qps", json::Value::number(p.qps));
            pts.as_array().push_back(std::move(v));
        }
        root.set("points", std::move(pts));
        json::Value sum = json::Value::array();
        for (const auto& s : summaries) {
            json::Value v = json::Value::object();
            v.set("engine", json::Value::string(s.engine.name));
            v.set("codec", json::Value::string(s.codec));
            v.set("qps_at_target", s.best ? json::Value::number(s.frontier_qps) : json::Value::null());
            v.set("best_point_qps", s.best ? json::Value::number(s.best->qps) : json::Value::null());
            v.set("resident_bytes_per_vector", json::Value::number(s.engine.resident_per_vector));
            v.set("float_bytes_per_vector", json::Value::number(s.engine.float_per_vector));
            v.set("floats_where", json::Value::string(s.engine.floats_where));
            v.set("cold_qps_at_best", s.cold_qps > 0 ? json::Value::number(s.cold_qps) : json::Value::null());
            v.set("build_seconds", json::Value::number(s.engine.build_seconds));
            sum.as_array().push_back(std::move(v));
        }
        root.set("summary", std::move(sum));
        FILE* f = std::fopen(o.json_path.c_str(), "w");
        if (f != nullptr) {
            const std::string text = json::dump(root, true) + "\n";
            std::fwrite(text.data(), 1, text.size(), f);
            std::fclose(f);
        }
    }
    return 0;
}

const BenchRegistrar kRegister{"codecs", "compressed vectors: quiver flat/IVF over codes vs FAISS SQ/PQ/fast-scan/LSH",
                               &run_codecs};

}  // namespace
}  // namespace quiver::bench
