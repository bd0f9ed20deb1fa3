// `quiver bench multivector`: MUVERA (FDE candidates re-ranked by exact MaxSim) against exact MaxSim
// brute force on multi-vector documents.
//
// Ground truth is the exact top-k by MaxSim over float32 token vectors. Latency is measured over whole
// passes of the query set on one thread: the first (cold) pass is reported on its own, then the mean
// and p99 per-query latency over the warm passes (each query timed inside the pass; the pass mean is
// the pass's wall time over its queries). Recall@k is against the exact top-k; bytes per document
// are reported for the float32 and int8 token stores and the FDE index.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/multivector/multivector_index.h"
#include "registry.h"

namespace quiver::bench {
namespace {

using multivector::Hit;

struct PassStats {
    double cold_mean_us = 0, mean_us = 0, p99_us = 0;
};

std::vector<std::size_t> parse_list(const std::string& s) {
    std::vector<std::size_t> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) out.push_back(std::stoul(item));
    }
    return out;
}

// Runs `search(q, hits)` over every query, one cold pass then `warm` passes.
template <class Fn>
PassStats timed_passes(std::size_t nq, std::size_t warm, std::vector<std::vector<Hit>>& hits, Fn&& search) {
    PassStats st;
    std::vector<double> per_query;
    double warm_total = 0;
    for (std::size_t pass = 0; pass <= warm; ++pass) {
        const auto p0 = std::chrono::steady_clock::now();
        for (std::size_t q = 0; q < nq; ++q) {
            const auto t0 = std::chrono::steady_clock::now();
            search(q, hits[q]);
            if (pass > 0) per_query.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - p0).count();
        if (pass == 0) {
            st.cold_mean_us = us / static_cast<double>(nq);
        } else {
            warm_total += us;
        }
    }
    if (warm > 0) {
        st.mean_us = warm_total / static_cast<double>(nq * warm);
        st.p99_us = percentile(per_query, 99.0);
    } else {
        st.mean_us = st.cold_mean_us;
    }
    return st;
}

double recall_at(const std::vector<std::vector<Hit>>& got, const std::vector<std::vector<Hit>>& truth, std::size_t k) {
    double total = 0;
    std::size_t counted = 0;
    for (std::size_t q = 0; q < truth.size(); ++q) {
        if (truth[q].empty()) continue;
        std::size_t hit = 0;
        for (std::size_t j = 0; j < std::min(k, got[q].size()); ++j) {
            for (std::size_t t = 0; t < std::min(k, truth[q].size()); ++t) hit += got[q][j].doc == truth[q][t].doc;
        }
        total += static_cast<double>(hit) / static_cast<double>(std::min(k, truth[q].size()));
        ++counted;
    }
    return counted > 0 ? total / static_cast<double>(counted) : 0.0;
}

int run_multivector(int argc, char** argv) {
    CLI::App app{"MUVERA + MaxSim re-ranking vs exact MaxSim brute force on multi-vector documents: recall@k "
                 "against exact, whole-pass single-thread latency, bytes per document."};
    std::string docs_path, queries_path, json_path, index_path, candidates_list = "100,200,400,800", fde_index = "hnsw";
    std::size_t k = 10, warm = 2, exact_warm = 1, threads = 0, k_sim = 6, d_proj = 8, r_reps = 8, d_final = 0, m = 16,
                ef_construction = 100, ef_factor = 1, max_queries = 0;
    bool no_center = false, no_fill = false;
    app.add_option("--docs", docs_path,
                   "Documents: multi-vector JSONL ({\"id\", \"vectors\"}), or a float32 MUVERA index file from "
                   "`quiver build --kind multivector` (its documents and FDE index are used as they are)")
        ->required();
    app.add_option("--queries", queries_path, "Queries: multi-vector JSONL")->required();
    app.add_option("--k", k, "Results per query (recall@k)")->capture_default_str();
    app.add_option("--json", json_path, "Write results as JSON here ('-' = stdout)");
    app.add_option("--index", index_path,
                   "Reuse the MUVERA index file here when it exists (built from --docs with these parameters "
                   "otherwise, and saved here)");
    app.add_option("--candidates", candidates_list, "Comma-separated FDE candidate counts to sweep")->capture_default_str();
    app.add_option("--ef-factor", ef_factor, "HNSW ef = candidates x this")->capture_default_str();
    app.add_option("--passes", warm, "Warm passes after the cold one (MUVERA)")->capture_default_str();
    app.add_option("--exact-passes", exact_warm, "Warm passes after the cold one (exact brute force)")->capture_default_str();
    app.add_option("--max-queries", max_queries, "Use only the first N queries (0 = all)");
    app.add_option("--fde-index", fde_index, "hnsw | flat | blocks (int8 FDE partition blocks, flat scan of the query's blocks)")
        ->capture_default_str();
    app.add_option("--k-sim", k_sim, "MUVERA SimHash hyperplanes")->capture_default_str();
    app.add_option("--d-proj", d_proj, "MUVERA projection width (0 = identity)")->capture_default_str();
    app.add_option("--r-reps", r_reps, "MUVERA repetitions")->capture_default_str();
    app.add_option("--d-final", d_final, "MUVERA Count-Sketch size (0 = none)")->capture_default_str();
    app.add_option("--m", m, "HNSW links per node")->capture_default_str();
    app.add_flag("--no-center", no_center, "MUVERA: SimHash hyperplanes through the origin, not the mean token");
    app.add_flag("--no-fill-empty", no_fill, "MUVERA: leave empty document partitions zero");
    app.add_option("--ef-construction", ef_construction, "HNSW build beam width")->capture_default_str();
    app.add_option("--threads", threads, "Build threads (0 = all cores); searches run on one thread")->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    auto fail = [](const Error& e) {
        std::fprintf(stderr, "quiver bench multivector: error: %s\n", e.to_string().c_str());
        return 1;
    };

    // Data: float32 and int8 stores of the same documents, from JSONL or from a built MUVERA index.
    std::unique_ptr<multivector::MultiVectorIndex> ix;
    double build_seconds = 0;
    std::unique_ptr<multivector::TokenStore> owned_store;
    const multivector::TokenStore* fstore_ptr = nullptr;
    auto queries = multivector::read_multivector_jsonl(queries_path, max_queries);
    if (!queries) return fail(queries.error());
    std::size_t dim = 0;
    {
        std::FILE* f = std::fopen(docs_path.c_str(), "rb");
        char head[8] = {};
        const bool is_index = f != nullptr && std::fread(head, 1, 8, f) == 8 && std::string(head + 4, 4) == "MVIX";
        if (f != nullptr) std::fclose(f);
        if (is_index) {
            auto o = multivector::MultiVectorIndex::open(docs_path);
            if (!o) return fail(o.error());
            ix = std::move(*o);
            if (!ix->muvera() || ix->store().codec() != multivector::TokenCodec::kFloat32) {
                return fail(invalid_argument("--docs index must be a float32 MUVERA index"));
            }
            fstore_ptr = &ix->store();
            dim = ix->dim();
            std::fprintf(stderr, "documents and FDE index from %s\n", docs_path.c_str());
        } else {
            std::fprintf(stderr, "reading %s\n", docs_path.c_str());
            auto docs = multivector::read_multivector_jsonl(docs_path);
            if (!docs) return fail(docs.error());
            dim = docs->dim;
            multivector::TokenStoreBuilder fb(dim, multivector::TokenCodec::kFloat32);
            for (auto& d : docs->docs) {
                if (auto st = fb.add(d.view()); !st) return fail(st.error());
                d = Matrix<float>();
            }
            owned_store = std::make_unique<multivector::TokenStore>(std::move(fb).finish());
            fstore_ptr = owned_store.get();
        }
    }
    const multivector::TokenStore& fstore = *fstore_ptr;
    if (queries->dim != dim) {
        return fail(invalid_argument(fmt::format("queries have dimension {}, documents {}", queries->dim, dim)));
    }
    const std::size_t n = fstore.size();
    multivector::TokenStoreBuilder ib(dim, multivector::TokenCodec::kInt8);
    for (std::size_t d = 0; d < n; ++d) (void)ib.add({fstore.float_rows(d), fstore.tokens(d), dim});
    multivector::TokenStore istore = std::move(ib).finish();
    const std::size_t total_tokens = fstore.total_tokens();
    const std::size_t float_bytes = fstore.bytes();
    const std::size_t int8_bytes = istore.bytes();

    // Queries: skip those with no tokens (no known word): they have no MaxSim neighbours.
    std::vector<Matrix<float>> qs;
    std::size_t q_tokens = 0;
    for (auto& q : queries->docs) {
        if (q.rows == 0) continue;
        q_tokens += q.rows;
        qs.push_back(std::move(q));
    }
    const std::size_t nq = qs.size();
    std::fprintf(stderr, "%zu documents (%zu tokens x %zu), %zu queries (%.1f tokens on average)\n", n, total_tokens,
                 dim, nq, nq > 0 ? static_cast<double>(q_tokens) / static_cast<double>(nq) : 0.0);

    // Exact brute force: ground truth and the baseline.
    std::vector<std::vector<Hit>> truth(nq);
    multivector::MaxSimScratch scratch;
    std::fprintf(stderr, "exact MaxSim brute force: %zu + %zu passes\n", std::size_t{1}, exact_warm);
    const PassStats exact = timed_passes(nq, exact_warm, truth, [&](std::size_t q, std::vector<Hit>& out) {
        out = multivector::exact_search(fstore, qs[q].view(), k, scratch);
    });

    // Exact MaxSim over the int8 store (its own kernel): recall against the float32 truth, and the
    // relative drift of the true top-k documents' scores.
    std::vector<std::vector<Hit>> exact8(nq);
    const PassStats exact_int8 = timed_passes(nq, 0, exact8, [&](std::size_t q, std::vector<Hit>& out) {
        out = multivector::exact_search(istore, qs[q].view(), k, scratch);
    });
    const double int8_exact_recall = recall_at(exact8, truth, k);
    double drift_sum = 0, drift_max = 0;
    std::size_t drift_n = 0;
    for (std::size_t q = 0; q < nq; ++q) {
        for (const Hit& h : truth[q]) {
            const std::uint32_t doc = h.doc;
            const auto r = multivector::rerank(istore, qs[q].view(), std::span<const std::uint32_t>(&doc, 1), 1, scratch);
            if (r.empty() || h.score == 0.0f) continue;
            const double rel = std::abs(static_cast<double>(r[0].score) - h.score) / std::abs(static_cast<double>(h.score));
            drift_sum += rel;
            drift_max = std::max(drift_max, rel);
            ++drift_n;
        }
    }
    const double drift_mean = drift_n > 0 ? drift_sum / static_cast<double>(drift_n) : 0.0;
    std::fprintf(stderr, "exact int8: recall@%zu %.4f against float32, MaxSim drift mean %.2e max %.2e (relative)\n", k,
                 int8_exact_recall, drift_mean, drift_max);

    // The MUVERA index (FDEs over the float32 documents): --docs itself, or reused from --index, or built.
    if (ix) {
        // given as --docs
    } else if (!index_path.empty() && std::filesystem::exists(index_path)) {
        auto o = multivector::MultiVectorIndex::open(index_path);
        if (!o) return fail(o.error());
        ix = std::move(*o);
        if (ix->size() != n || !ix->muvera()) return fail(invalid_argument("--index holds another collection"));
        std::fprintf(stderr, "reusing %s\n", index_path.c_str());
    } else {
        multivector::MultiVectorBuildParams p;
        p.method = multivector::SearchMethod::kMuvera;
        p.fde_index = fde_index;
        p.muvera = {.k_sim = k_sim, .d_proj = d_proj, .r_reps = r_reps, .fill_empty_partitions = !no_fill,
                    .d_final = d_final, .seed = 1};
        p.hnsw = {.M = m, .ef_construction = ef_construction, .seed = 100, .threads = threads};
        p.center = !no_center;
        // Build over a copy of the float store (the index owns its store).
        multivector::TokenStoreBuilder copy(dim, multivector::TokenCodec::kFloat32);
        for (std::size_t d = 0; d < n; ++d) {
            (void)copy.add({fstore.float_rows(d), fstore.tokens(d), fstore.dim()});
        }
        ProgressBar bar("building MUVERA", n, "documents");
        auto b = multivector::MultiVectorIndex::build(std::move(copy).finish(), {}, p, &bar);
        bar.finish();
        if (!b) return fail(b.error());
        ix = std::move(*b);
        build_seconds = bar.elapsed_seconds();
        if (!index_path.empty()) {
            if (auto st = ix->save(index_path); !st) return fail(st.error());
        }
    }
    const multivector::Muvera& mv = *ix->muvera();
    fde_index = ix->fde_kind();
    const std::size_t fde_bytes = ix->fde_bytes();

    struct Row {
        std::string store;
        std::size_t candidates = 0, ef = 0;
        double recall = 0;
        PassStats lat;
    };
    std::vector<Row> rows;
    for (const std::size_t cand : parse_list(candidates_list)) {
        const std::size_t ef = cand * ef_factor;
        for (const multivector::TokenStore* store : {&fstore, static_cast<const multivector::TokenStore*>(&istore)}) {
            std::vector<std::vector<Hit>> got(nq);
            const PassStats lat = timed_passes(nq, warm, got, [&](std::size_t q, std::vector<Hit>& out) {
                // What MultiVectorIndex::search does, with the store chosen here.
                auto ids = ix->candidates(qs[q].view(), {.k = k, .candidates = cand, .ef = ef});
                out = ids ? multivector::rerank(*store, qs[q].view(), *ids, k, scratch) : std::vector<Hit>{};
            });
            Row r{std::string(multivector::to_string(store->codec())), cand, ef, recall_at(got, truth, k), lat};
            std::fprintf(stderr, "muvera %s candidates %zu: recall@%zu %.4f, mean %.0f us, p99 %.0f us (cold %.0f us)\n",
                         r.store.c_str(), cand, k, r.recall, lat.mean_us, lat.p99_us, lat.cold_mean_us);
            rows.push_back(r);
        }
    }

    // Report.
    std::vector<std::vector<std::string>> table;
    table.push_back({"exact MaxSim", "float32", "-", "1.0000", fmt::format("{:.0f}", exact.mean_us),
                     fmt::format("{:.0f}", exact.p99_us), fmt::format("{:.0f}", exact.cold_mean_us), "1.0"});
    table.push_back({"exact MaxSim", "int8", "-", fmt::format("{:.4f}", int8_exact_recall),
                     fmt::format("{:.0f}", exact_int8.mean_us), "-", fmt::format("{:.0f}", exact_int8.cold_mean_us),
                     fmt::format("{:.1f}", exact.mean_us / exact_int8.mean_us)});
    for (const Row& r : rows) {
        table.push_back({"muvera", r.store, std::to_string(r.candidates), fmt::format("{:.4f}", r.recall),
                         fmt::format("{:.0f}", r.lat.mean_us), fmt::format("{:.0f}", r.lat.p99_us),
                         fmt::format("{:.0f}", r.lat.cold_mean_us), fmt::format("{:.1f}", exact.mean_us / r.lat.mean_us)});
    }
    std::printf("%zu documents, %zu tokens x %zu; %zu queries; FDE %zu (k_sim %zu, d_proj %zu, r_reps %zu, d_final %zu) "
                "in %s; one search thread\n",
                n, total_tokens, dim, nq, mv.fde_dim(), mv.params().k_sim, mv.params().d_proj, mv.params().r_reps,
                mv.params().d_final, fde_index.c_str());
    std::printf("%s", text_table({"method", "store", "candidates", fmt::format("recall@{}", k), "mean us", "p99 us",
                                  "cold mean us", "speed-up"},
                                 table)
                          .c_str());
    const double nd = static_cast<double>(std::max<std::size_t>(n, 1));
    std::printf("bytes per document: float32 tokens %.0f, int8 tokens %.0f, FDE index %.0f\n", float_bytes / nd,
                int8_bytes / nd, fde_bytes / nd);
    std::printf("int8 tokens: MaxSim drift from float32 on the exact top-%zu, mean %.2e, max %.2e (relative)\n", k,
                drift_mean, drift_max);
    if (!json_path.empty()) {
        json::Value v = json::Value::object();
        v.set("documents", json::Value::number(static_cast<double>(n)));
        v.set("tokens", json::Value::number(static_cast<double>(total_tokens)));
        v.set("dim", json::Value::number(static_cast<double>(dim)));
        v.set("queries", json::Value::number(static_cast<double>(nq)));
        v.set("k", json::Value::number(static_cast<double>(k)));
        json::Value params = json::Value::object();
        params.set("k_sim", json::Value::number(static_cast<double>(mv.params().k_sim)));
        params.set("d_proj", json::Value::number(static_cast<double>(mv.params().d_proj)));
        params.set("r_reps", json::Value::number(static_cast<double>(mv.params().r_reps)));
        params.set("d_final", json::Value::number(static_cast<double>(mv.params().d_final)));
        params.set("fde_dim", json::Value::number(static_cast<double>(mv.fde_dim())));
        params.set("fde_index", json::Value::string(fde_index));
        v.set("muvera", std::move(params));
        v.set("build_seconds", json::Value::number(build_seconds));
        json::Value bytes = json::Value::object();
        bytes.set("float32_tokens_per_doc", json::Value::number(float_bytes / nd));
        bytes.set("int8_tokens_per_doc", json::Value::number(int8_bytes / nd));
        bytes.set("fde_index_per_doc", json::Value::number(fde_bytes / nd));
        v.set("bytes", std::move(bytes));
        auto lat = [](const PassStats& p) {
            json::Value o = json::Value::object();
            o.set("mean_us", json::Value::number(p.mean_us));
            o.set("p99_us", json::Value::number(p.p99_us));
            o.set("cold_mean_us", json::Value::number(p.cold_mean_us));
            return o;
        };
        json::Value ex = json::Value::object();
        ex.set("latency", lat(exact));
        ex.set("passes", json::Value::number(static_cast<double>(1 + exact_warm)));
        v.set("exact", std::move(ex));
        json::Value ex8 = json::Value::object();
        ex8.set("latency", lat(exact_int8));
        ex8.set("recall", json::Value::number(int8_exact_recall));
        ex8.set("maxsim_drift_mean", json::Value::number(drift_mean));
        ex8.set("maxsim_drift_max", json::Value::number(drift_max));
        v.set("exact_int8", std::move(ex8));
        json::Value arr = json::Value::array();
        for (const Row& r : rows) {
            json::Value o = json::Value::object();
            o.set("store", json::Value::string(r.store));
            o.set("candidates", json::Value::number(static_cast<double>(r.candidates)));
            o.set("ef", json::Value::number(static_cast<double>(r.ef)));
            o.set("recall", json::Value::number(r.recall));
            o.set("latency", lat(r.lat));
            o.set("speedup", json::Value::number(exact.mean_us / r.lat.mean_us));
            arr.as_array().push_back(std::move(o));
        }
        v.set("muvera_runs", std::move(arr));
        v.set("passes", json::Value::number(static_cast<double>(1 + warm)));
        const std::string text = json::dump(v, true) + "\n";
        if (!write_output(json_path, text)) return fail(io_error(fmt::format("cannot write '{}'", json_path)));
    }
    return 0;
}

const BenchRegistrar kReg{"multivector",
                          "multi-vector: MUVERA + MaxSim re-rank vs exact MaxSim (recall, whole-pass latency, bytes/doc)",
                          &run_multivector};

}  // namespace
}  // namespace quiver::bench
