// quiver bench filter: filtered k-NN across selectivities and correlations. quiver's planner, each
// strategy forced (exact scan, ACORN-1, ACORN-γ, post-filter walk), unfiltered HNSW, and FAISS HNSW
// with an IDSelectorBitmap, all on one HNSW build per engine (same M / efConstruction), against
// exact filtered ground truth computed by brute force over the matching set.
//
// Attributes: synthetic (default) — per base vector `u` uniform in [0,1) and `p`, the rank (in [0,1))
// of its projection on a random unit direction, both payload-indexed floats. Per query the filter is
//   none:     u < s                                   (independent of the vectors)
//   positive: p within a width-s window around the query's own projection rank (same slab as the query)
//   negative: p within the width-s window farthest from the query's rank (the opposite slab)
// evaluated through engine::PayloadIndex (the time is reported as `filter_us`). Or --attributes A.jsonl
// (one object per base vector) with --filter JSON applied to every query (one selectivity).
//
// Every point is a whole pass over the queries, one query per call, single thread; QPS is measured on
// the search thread's CPU clock (robust to other processes on a shared machine) and by wall clock. The
// summary picks, per engine, the fastest ef whose recall@k reaches --target.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/engine/payload_index.h"
#include "quiver/index/filtered_search.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/vector_io.h"
#include "registry.h"
#include "quiver/server/json_codec.h"

#ifdef QUIVER_HAVE_FAISS
#include <faiss/IndexHNSW.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>
#endif

namespace quiver::bench {
namespace {

using index::Metric;

struct Options {
    std::string base, queries, metric = "cosine", attributes, filter_json, json_path;
    std::string selectivities = "0.001,0.01,0.05,0.2,0.5,1", correlations = "none,positive,negative";
    std::string ef_list = "16,32,64,128,256,512,1024", peers = "faiss";
    std::size_t k = 10, M = 16, ef_construction = 200, threads = 2, max_queries = 200, max_base = 0, gamma = 0;
    double target = 0.95;
    std::uint64_t seed = 42;
};

std::vector<double> parse_doubles(const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(std::stod(item));
    }
    return out;
}

std::vector<std::string> parse_words(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

struct Point {
    std::string engine;
    std::size_t ef = 0;
    double recall = 0, qps = 0, cpu_qps = 0;
    std::string detail;  // planner: strategies chosen
};

struct Scenario {
    double selectivity;
    std::string correlation;
    std::vector<Bitmap> allowed;  // per query
    double filter_us = 0;         // mean payload-index evaluation time per query
    double mean_matches = 0;
    std::vector<std::vector<std::int64_t>> truth;  // per query, exact filtered top-k
    std::vector<Point> points;
};

double recall_of(const std::vector<std::int64_t>& got, const std::vector<std::int64_t>& want, std::size_t k) {
    if (want.empty()) return 1.0;
    std::size_t hit = 0;
    for (auto id : got) hit += std::count(want.begin(), want.end(), id);
    return static_cast<double>(hit) / static_cast<double>(std::min(k, want.size()));
}

// Runs `search(q, out)` over every query; returns mean recall and QPS.
Point run_pass(const std::string& name, std::size_t ef, const Scenario& sc, std::size_t nq, std::size_t k,
               const std::function<void(std::size_t q, std::vector<std::int64_t>& out)>& search) {
    Point p;
    p.engine = name;
    p.ef = ef;
    std::vector<std::vector<std::int64_t>> got(nq);
    const double cpu0 = thread_cpu_seconds();
    Stopwatch sw;
    for (std::size_t q = 0; q < nq; ++q) search(q, got[q]);
    const double wall = sw.seconds();
    const double cpu = thread_cpu_seconds() - cpu0;
    double r = 0;
    for (std::size_t q = 0; q < nq; ++q) {
        r += recall_of(got[q], sc.truth[q], k);
        if (got[q].size() < std::min<std::size_t>(k, sc.allowed[q].cardinality())) p.detail = "short results";
    }
    p.recall = r / static_cast<double>(nq);
    p.qps = static_cast<double>(nq) / std::max(wall, 1e-9);
    p.cpu_qps = static_cast<double>(nq) / std::max(cpu, 1e-9);
    return p;
}

int run_filter(int argc, char** argv) {
    Options o;
    CLI::App app{"Filtered k-NN: quiver's planner and forced strategies against FAISS HNSW + IDSelector, "
                 "per selectivity and correlation, against exact filtered ground truth."};
    app.add_option("--base", o.base, "Base vectors (.fvecs/.npy/...)")->required();
    app.add_option("--queries", o.queries, "Query vectors")->required();
    app.add_option("--metric", o.metric, "l2, ip or cosine")->capture_default_str();
    app.add_option("--attributes", o.attributes, "JSONL attributes, one object per base vector (with --filter)");
    bool synthetic = false;
    app.add_flag("--synthetic-attributes", synthetic, "Synthetic attributes u and p (the default without --attributes)");
    app.add_option("--filter", o.filter_json, "Filter JSON for every query (with --attributes)");
    app.add_option("--selectivities", o.selectivities, "Comma list of target selectivities")->capture_default_str();
    app.add_option("--correlation", o.correlations, "Comma list: none, positive, negative")->capture_default_str();
    app.add_option("--k", o.k, "Neighbours per query")->capture_default_str();
    app.add_option("--M", o.M, "HNSW M (quiver and FAISS)")->capture_default_str();
    app.add_option("--ef-construction", o.ef_construction, "HNSW efConstruction")->capture_default_str();
    app.add_option("--ef", o.ef_list, "Comma list of ef values swept for graph strategies")->capture_default_str();
    app.add_option("--gamma", o.gamma, "Also build ACORN-gamma lists with this gamma (0: ACORN-1 only)")
        ->capture_default_str();
    app.add_option("--threads", o.threads, "Build threads")->capture_default_str();
    app.add_option("--max-queries", o.max_queries, "Use the first N queries (0 = all)")->capture_default_str();
    app.add_option("--max-base", o.max_base, "Use the first N base vectors (0 = all)")->capture_default_str();
    app.add_option("--target", o.target, "Recall target of the summary")->capture_default_str();
    app.add_option("--peers", o.peers, "Comma list: faiss (empty for none)")->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of the synthetic attributes")->capture_default_str();
    app.add_option("--json", o.json_path, "Write every point and the summary as JSON");
    CLI11_PARSE(app, argc, argv);
    if (synthetic && !o.attributes.empty()) {
        std::fprintf(stderr, "give --attributes or --synthetic-attributes, not both\n");
        return 2;
    }

    auto metric = simd::parse_metric(o.metric);
    if (!metric) {
        std::fprintf(stderr, "unknown metric '%s'\n", o.metric.c_str());
        return 2;
    }
    auto base_r = storage::read_vectors(o.base, {.max_rows = o.max_base});
    auto q_r = storage::read_vectors(o.queries, {.max_rows = o.max_queries});
    if (!base_r || !q_r) {
        std::fprintf(stderr, "reading vectors: %s\n", (!base_r ? base_r.error() : q_r.error()).to_string().c_str());
        return 2;
    }
    const Matrix<float>& base = base_r->vectors;
    const Matrix<float>& queries = q_r->vectors;
    if (base.dim != queries.dim) {
        std::fprintf(stderr, "base and queries differ in dimension\n");
        return 2;
    }
    const std::size_t n = base.rows;
    const std::size_t nq = queries.rows;
    const std::size_t dim = base.dim;

    // ---- attributes and the payload index -------------------------------------------------------
    std::vector<engine::Document> attrs(n);
    engine::Schema schema;
    std::vector<double> qrank(nq, 0.0);
    if (!o.attributes.empty()) {
        auto table = server::read_attributes_jsonl(o.attributes, n);
        if (!table) {
            std::fprintf(stderr, "%s\n", table.error().to_string().c_str());
            return 2;
        }
        if (table->rows.size() != n) {
            std::fprintf(stderr, "'%s' has %zu rows for %zu base vectors\n", o.attributes.c_str(), table->rows.size(), n);
            return 2;
        }
        attrs = std::move(table->rows);
        schema.fields = std::move(table->fields);
    } else {
        std::mt19937_64 rng(o.seed);
        std::uniform_real_distribution<double> uni(0, 1);
        std::normal_distribution<double> g;
        std::vector<double> dir(dim);
        double norm = 0;
        for (auto& x : dir) {
            x = g(rng);
            norm += x * x;
        }
        for (auto& x : dir) x /= std::sqrt(norm);
        auto project = [&](const float* v) {
            double s = 0, vn = 0;
            for (std::size_t j = 0; j < dim; ++j) {
                s += dir[j] * v[j];
                vn += static_cast<double>(v[j]) * v[j];
            }
            return *metric == Metric::kCosine && vn > 0 ? s / std::sqrt(vn) : s;
        };
        std::vector<std::pair<double, std::uint32_t>> proj(n);
        for (std::size_t i = 0; i < n; ++i) proj[i] = {project(base.row_ptr(i)), static_cast<std::uint32_t>(i)};
        std::vector<std::pair<double, std::uint32_t>> sorted = proj;
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t r = 0; r < n; ++r) {
            attrs[sorted[r].second].fields["p"] = static_cast<double>(r) / static_cast<double>(n);
        }
        for (std::size_t i = 0; i < n; ++i) attrs[i].fields["u"] = uni(rng);
        for (std::size_t q = 0; q < nq; ++q) {
            const double x = project(queries.row_ptr(q));
            const auto it = std::lower_bound(sorted.begin(), sorted.end(), std::make_pair(x, std::uint32_t{0}));
            qrank[q] = static_cast<double>(it - sorted.begin()) / static_cast<double>(n);
        }
        for (const char* name : {"u", "p"}) {
            engine::FieldSpec f;
            f.name = name;
            f.type = engine::FieldType::kFloat;
            f.payload_index = true;
            schema.fields.push_back(f);
        }
    }
    const engine::PayloadIndex payload = engine::PayloadIndex::build(schema, attrs);

    // ---- scenarios: per-query filters evaluated by the payload index -----------------------------
    std::vector<Scenario> scenarios;
    if (!o.attributes.empty()) {
        auto fv = json::parse(o.filter_json.empty() ? std::string("{}") : o.filter_json);
        if (!fv) {
            std::fprintf(stderr, "--filter is not JSON\n");
            return 2;
        }
        auto filter = server::filter_from_json(*fv);
        if (!filter || !filter->validate(schema)) {
            std::fprintf(stderr, "--filter: %s\n",
                         !filter ? filter.error().message().c_str() : filter->validate(schema).error().message().c_str());
            return 2;
        }
        Scenario sc;
        sc.correlation = "given";
        Stopwatch sw;
        const Bitmap bits = engine::evaluate_filter(*filter, payload, attrs);
        sc.filter_us = sw.seconds() * 1e6;
        sc.selectivity = static_cast<double>(bits.cardinality()) / static_cast<double>(n);
        sc.allowed.assign(nq, bits);
        scenarios.push_back(std::move(sc));
    } else {
        for (const std::string& corr : parse_words(o.correlations)) {
            if (corr != "none" && corr != "positive" && corr != "negative") {
                std::fprintf(stderr, "unknown correlation '%s'\n", corr.c_str());
                return 2;
            }
            for (double s : parse_doubles(o.selectivities)) {
                if (corr != "none" && s >= 1.0) continue;  // all pass: no correlation to speak of
                Scenario sc;
                sc.selectivity = s;
                sc.correlation = corr;
                double eval_seconds = 0;
                for (std::size_t q = 0; q < nq; ++q) {
                    engine::Filter f;
                    f.op = engine::Filter::Op::kRange;
                    if (corr == "none") {
                        f.field = "u";
                        f.lt = s;
                    } else {
                        f.field = "p";
                        double lo = corr == "positive" ? qrank[q] - s / 2 : (qrank[q] < 0.5 ? 1.0 - s : 0.0);
                        lo = std::clamp(lo, 0.0, 1.0 - s);
                        f.gte = lo;
                        f.lt = lo + s;
                    }
                    Stopwatch sw;
                    sc.allowed.push_back(engine::evaluate_filter(f, payload, attrs));
                    eval_seconds += sw.seconds();
                }
                sc.filter_us = eval_seconds / static_cast<double>(nq) * 1e6;
                scenarios.push_back(std::move(sc));
            }
        }
    }

    // ---- exact filtered ground truth (brute force over each matching set) ------------------------
    const simd::DistanceFn dist = simd::distance_fn(*metric);
    std::vector<float> unit_base;
    const float* base_rows = base.values.data();
    if (*metric == Metric::kCosine) {
        unit_base = base.values;
        for (std::size_t i = 0; i < n; ++i) simd::normalize(unit_base.data() + i * dim, dim);
        base_rows = unit_base.data();
    }
    std::vector<float> qrows = queries.values;
    if (*metric == Metric::kCosine) {
        for (std::size_t q = 0; q < nq; ++q) simd::normalize(qrows.data() + q * dim, dim);
    }
    {
        ProgressBar bar("ground truth", scenarios.size() * nq, "queries");
        for (auto& sc : scenarios) {
            double matches = 0;
            for (std::size_t q = 0; q < nq; ++q) {
                std::vector<std::pair<float, std::int64_t>> all;
                sc.allowed[q].for_each([&](std::uint32_t i) {
                    all.emplace_back(dist(qrows.data() + q * dim, base_rows + static_cast<std::size_t>(i) * dim, dim), i);
                });
                matches += static_cast<double>(all.size());
                const std::size_t m = std::min(o.k, all.size());
                std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(m), all.end());
                std::vector<std::int64_t> t;
                for (std::size_t j = 0; j < m; ++j) t.push_back(all[j].second);
                sc.truth.push_back(std::move(t));
                bar.add(1);
            }
            sc.mean_matches = matches / static_cast<double>(nq);
        }
        bar.finish();
    }

    // ---- engines ----------------------------------------------------------------------------------
    auto built = index::HnswIndex::create(dim, *metric, {.M = o.M, .ef_construction = o.ef_construction,
                                                         .threads = o.threads});
    if (!built) {
        std::fprintf(stderr, "%s\n", built.error().to_string().c_str());
        return 2;
    }
    std::unique_ptr<index::HnswIndex> hnsw = std::move(*built);
    {
        ProgressBar bar("quiver build", n, "vectors");
        hnsw->set_progress(&bar);
        if (auto st = hnsw->add(base.view(), index::sequential_labels(n)); !st) {
            std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
            return 1;
        }
        hnsw->set_progress(nullptr);
        bar.finish();
    }
    std::optional<index::AcornGraph> gamma;
    double gamma_build = 0;
    if (o.gamma > 0) {
        ProgressHeartbeat beat("ACORN-gamma build");
        Stopwatch sw;
        auto g = index::AcornGraph::build(*hnsw, {.gamma = o.gamma, .m_beta = 0, .threads = o.threads});
        if (!g) {
            std::fprintf(stderr, "%s\n", g.error().to_string().c_str());
            return 2;
        }
        gamma = std::move(*g);
        gamma_build = sw.seconds();
    }
#ifdef QUIVER_HAVE_FAISS
    std::unique_ptr<faiss::IndexHNSWFlat> faiss_idx;
    const std::set<std::string> peers = [&] {
        auto w = parse_words(o.peers);
        return std::set<std::string>(w.begin(), w.end());
    }();
    if (peers.count("faiss")) {
        ProgressHeartbeat beat("faiss build");
        omp_set_num_threads(static_cast<int>(o.threads));
        faiss_idx = std::make_unique<faiss::IndexHNSWFlat>(
            static_cast<int>(dim), static_cast<int>(o.M), *metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT);
        faiss_idx->hnsw.efConstruction = static_cast<int>(o.ef_construction);
        faiss_idx->add(static_cast<faiss::Index::idx_t>(n), base_rows);
        omp_set_num_threads(1);
    }
#endif

    // ---- sweeps -----------------------------------------------------------------------------------
    const auto efs = [&] {
        std::vector<std::size_t> v;
        for (double d : parse_doubles(o.ef_list)) v.push_back(static_cast<std::size_t>(d));
        return v;
    }();
    const std::size_t k = o.k;
    auto labels_of = [](const std::vector<index::Neighbor>& found, std::vector<std::int64_t>& out) {
        out.clear();
        for (const auto& nb : found) out.push_back(static_cast<std::int64_t>(to_int(nb.label)));
    };
    ProgressBar bar("sweeps", scenarios.size(), "scenarios");
    for (auto& sc : scenarios) {
        auto query = [&](std::size_t q) { return std::span<const float>(queries.row_ptr(q), dim); };
        auto strategy_pass = [&](const std::string& name, index::FilterStrategy s, std::size_t ef,
                                 const index::AcornGraph* g) {
            std::map<std::string, int> chosen;
            Point p = run_pass(name, ef, sc, nq, k, [&](std::size_t q, std::vector<std::int64_t>& out) {
                index::FilteredSearchParams fp;
                fp.k = k;
                fp.ef = ef;
                fp.strategy = s;
                fp.acorn = g;
                index::FilterPlan plan;
                // Attributes cover rows 0..n-1, the labels: a full bitmap means every vector passes.
                const Bitmap* allowed = sc.allowed[q].cardinality() == n && s == index::FilterStrategy::kAuto
                                            ? nullptr : &sc.allowed[q];
                auto found = index::filtered_search(*hnsw, query(q), allowed, fp, &plan);
                if (found) labels_of(*found, out);
                ++chosen[std::string(index::to_string(plan.strategy)) + (plan.fallback ? "+fallback" : "")];
            });
            if (s == index::FilterStrategy::kAuto) {
                for (const auto& [c, cnt] : chosen) p.detail += (p.detail.empty() ? "" : " ") + c + ":" + std::to_string(cnt);
            }
            sc.points.push_back(p);
            return p;
        };
        // Exact scan: ef plays no part.
        strategy_pass("exact", index::FilterStrategy::kExactScan, 0, nullptr);
        for (std::size_t ef : efs) {
            strategy_pass("planner", index::FilterStrategy::kAuto, ef, gamma ? &*gamma : nullptr);
            strategy_pass("post_filter", index::FilterStrategy::kPostFilter, ef, nullptr);
            strategy_pass("acorn1", index::FilterStrategy::kAcorn, ef, nullptr);
            if (gamma) strategy_pass("acorn_gamma", index::FilterStrategy::kAcorn, ef, &*gamma);
            // Unfiltered HNSW over the same queries (the cost a filter should not add at 100%).
            sc.points.push_back(run_pass("unfiltered", ef, sc, nq, k, [&](std::size_t q, std::vector<std::int64_t>& out) {
                auto r = hnsw->search(MatrixView<float>{queries.row_ptr(q), 1, dim}, {.k = k, .ef = ef, .threads = 1});
                out.clear();
                for (std::size_t j = 0; j < r->count(0); ++j) out.push_back(static_cast<std::int64_t>(to_int(r->label(0, j))));
            }));
#ifdef QUIVER_HAVE_FAISS
            if (faiss_idx) {
                std::vector<std::vector<std::uint8_t>> masks(nq);
                for (std::size_t q = 0; q < nq; ++q) {  // built outside the timed pass
                    masks[q].assign((n + 7) / 8, 0);
                    sc.allowed[q].for_each([&](std::uint32_t i) { masks[q][i >> 3] |= std::uint8_t(1u << (i & 7)); });
                }
                faiss_idx->hnsw.efSearch = static_cast<int>(ef);  // FAISS 1.7.3 reads the index's, not the params'
                std::vector<float> dbuf(k);
                std::vector<faiss::Index::idx_t> lbuf(k);
                bool failed = false;
                Point p = run_pass("faiss_idselector", ef, sc, nq, k, [&](std::size_t q, std::vector<std::int64_t>& out) {
                    out.clear();
                    if (failed) return;
                    faiss::IDSelectorBitmap sel(masks[q].size(), masks[q].data());
                    faiss::SearchParametersHNSW sp;
                    sp.efSearch = static_cast<int>(ef);
                    sp.sel = &sel;
                    try {
                        faiss_idx->search(1, qrows.data() + q * dim, static_cast<faiss::Index::idx_t>(k), dbuf.data(),
                                          lbuf.data(), &sp);
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "faiss: %s\n", e.what());
                        failed = true;
                        return;
                    }
                    for (std::size_t j = 0; j < k; ++j) {
                        if (lbuf[j] >= 0) out.push_back(lbuf[j]);
                    }
                });
                if (!failed) sc.points.push_back(p);
            }
#endif
        }
        bar.add(1);
    }
    bar.finish();

    // ---- report -----------------------------------------------------------------------------------
    auto best = [&](const Scenario& sc, const std::string& engine) -> const Point* {
        const Point* b = nullptr;
        for (const auto& p : sc.points) {
            if (p.engine != engine || p.recall < o.target) continue;
            if (b == nullptr || p.cpu_qps > b->cpu_qps) b = &p;
        }
        return b;
    };
    const std::vector<std::string> engines = {"planner", "exact", "acorn1", "acorn_gamma", "post_filter", "unfiltered",
                                              "faiss_idselector"};
    std::vector<std::vector<std::string>> rows;
    json::Value summary = json::Value::array();
    for (const auto& sc : scenarios) {
        std::vector<std::string> row = {sc.correlation, fmt::format("{:g}", sc.selectivity),
                                        fmt::format("{:.0f}", sc.mean_matches), fmt::format("{:.0f}", sc.filter_us)};
        json::Value js = json::Value::object();
        js.set("correlation", json::Value::string(sc.correlation));
        js.set("selectivity", json::Value::number(sc.selectivity));
        js.set("mean_matches", json::Value::number(sc.mean_matches));
        js.set("filter_eval_us", json::Value::number(sc.filter_us));
        json::Value per = json::Value::object();
        for (const auto& e : engines) {
            const Point* b = best(sc, e);
            row.push_back(b == nullptr ? "-" : fmt::format("{:.0f} ({:.3f}{})", b->cpu_qps, b->recall,
                                                          b->ef > 0 ? fmt::format(" ef{}", b->ef) : ""));
            json::Value x = json::Value::null();
            if (b != nullptr) {
                x = json::Value::object();
                x.set("ef", json::Value::number(static_cast<double>(b->ef)));
                x.set("recall", json::Value::number(b->recall));
                x.set("cpu_qps", json::Value::number(b->cpu_qps));
                x.set("qps", json::Value::number(b->qps));
                if (!b->detail.empty()) x.set("detail", json::Value::string(b->detail));
            }
            per.set(e, std::move(x));
        }
        const Point* pl = best(sc, "planner");
        const Point* pf = best(sc, "post_filter");
        const Point* fa = best(sc, "faiss_idselector");
        row.push_back(pl && pf ? fmt::format("{:.1f}x", pl->cpu_qps / pf->cpu_qps) : "-");
        row.push_back(pl && fa ? fmt::format("{:.1f}x", pl->cpu_qps / fa->cpu_qps) : "-");
        row.push_back(pl ? pl->detail : "");
        js.set("best_at_target", std::move(per));
        summary.as_array().push_back(std::move(js));
        rows.push_back(std::move(row));
    }
    std::printf("filtered k-NN, k=%zu, %zu base x %zu queries, M=%zu efc=%zu; best CPU QPS (recall, ef) with "
                "recall >= %.2f\n",
                k, n, nq, o.M, o.ef_construction, o.target);
    std::printf("%s", text_table({"correlation", "selectivity", "matches", "filter us", "planner", "exact", "acorn1",
                                  "acorn_gamma", "post_filter", "unfiltered", "faiss+IDSel", "planner/post",
                                  "planner/faiss", "planner chose"},
                                 rows)
                          .c_str());
    if (!o.json_path.empty()) {
        json::Value root = json::Value::object();
        json::Value cfg = json::Value::object();
        cfg.set("base", json::Value::string(o.base));
        cfg.set("queries", json::Value::string(o.queries));
        cfg.set("metric", json::Value::string(o.metric));
        cfg.set("k", json::Value::number(static_cast<double>(k)));
        cfg.set("M", json::Value::number(static_cast<double>(o.M)));
        cfg.set("ef_construction", json::Value::number(static_cast<double>(o.ef_construction)));
        cfg.set("gamma", json::Value::number(static_cast<double>(o.gamma)));
        cfg.set("gamma_build_seconds", json::Value::number(gamma_build));
        cfg.set("target", json::Value::number(o.target));
        cfg.set("base_rows", json::Value::number(static_cast<double>(n)));
        cfg.set("queries_rows", json::Value::number(static_cast<double>(nq)));
        root.set("config", std::move(cfg));
        root.set("summary", std::move(summary));
        json::Value pts = json::Value::array();
        for (const auto& sc : scenarios) {
            for (const auto& p : sc.points) {
                json::Value x = json::Value::object();
                x.set("correlation", json::Value::string(sc.correlation));
                x.set("selectivity", json::Value::number(sc.selectivity));
                x.set("engine", json::Value::string(p.engine));
                x.set("ef", json::Value::number(static_cast<double>(p.ef)));
                x.set("recall", json::Value::number(p.recall));
                x.set("cpu_qps", json::Value::number(p.cpu_qps));
                x.set("qps", json::Value::number(p.qps));
                if (!p.detail.empty()) x.set("detail", json::Value::string(p.detail));
                pts.as_array().push_back(std::move(x));
            }
        }
        root.set("points", std::move(pts));
        std::ofstream(o.json_path) << json::dump(root, true) << "\n";
    }
    return 0;
}

const BenchRegistrar kReg{"filter", "filtered k-NN: planner, exact, ACORN, post-filter vs FAISS + IDSelector",
                          &run_filter};

}  // namespace
}  // namespace quiver::bench
