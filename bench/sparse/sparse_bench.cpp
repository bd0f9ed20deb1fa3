// `quiver bench sparse`: Seismic against the exact block-max MaxScore baseline on learned-sparse vectors.
//
// Loads JsonVectorCollection docs + queries (or generates a SPLADE-like collection), builds the exact
// index (float32 weights: the ground truth) and Seismic, then sweeps query_cut x heap_factor and reports
// recall@k against exact, mean and p99 single-thread latency, build seconds and index bytes, as a table,
// JSON (--json) and an SVG recall/latency plot (--svg).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/core/thread_pool.h"
#include "quiver/storage/file_format.h"
#include "quiver/sparse/exact_sparse.h"
#include "quiver/sparse/seismic.h"
#include "quiver/sparse/synthetic.h"
#include "registry.h"

namespace quiver::bench {
namespace {

struct Row {
    std::string index;
    std::uint32_t query_cut = 0;
    float heap_factor = 0;
    double recall = 0, mean_us = 0, p99_us = 0, cold_us = 0, evaluated = 0;
    double build_seconds = 0, index_bytes = 0;
};

// Recall against mean latency on a log10 latency axis, one polyline per index and query_cut.
std::string plot_svg(const std::vector<Row>& rows, std::size_t k, const std::string& source) {
    const double w = 760, h = 480, left = 70, right = 230, top = 40, bottom = 60;
    double xmin = 1e300, xmax = 0, ymin = 1.0;
    for (const Row& r : rows) {
        xmin = std::min(xmin, std::max(r.mean_us, 0.1));
        xmax = std::max(xmax, std::max(r.mean_us, 0.1));
        ymin = std::min(ymin, r.recall);
    }
    const double lx0 = std::floor(std::log10(xmin)), lx1 = std::max(lx0 + 1, std::ceil(std::log10(xmax)));
    ymin = std::floor(ymin * 20.0) / 20.0;
    auto px = [&](double us) { return left + (std::log10(std::max(us, 0.1)) - lx0) / (lx1 - lx0) * (w - left - right); };
    auto py = [&](double rec) { return top + (1.0 - (rec - ymin) / std::max(1e-9, 1.0 - ymin)) * (h - top - bottom); };
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
        "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        "<text x=\"{}\" y=\"22\" font-size=\"14\">recall@{} vs mean single-thread latency: {}</text>\n",
        w, h, left, k, source);
    for (double e = lx0; e <= lx1; e += 1) {
        const double x = px(std::pow(10.0, e));
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>"
                           "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                           x, top, h - bottom, h - bottom + 16, std::pow(10.0, e));
    }
    for (double y = ymin; y <= 1.0 + 1e-9; y += (1.0 - ymin) / 5.0) {
        svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                           "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:.3f}</text>\n",
                           left, py(y), w - right, left - 6, py(y) + 4, y);
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">mean latency (microseconds, log scale)</text>\n",
                       (left + w - right) / 2, h - 20);
    svg += fmt::format("<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">recall@{} vs exact</text>\n",
                       (top + h - bottom) / 2, (top + h - bottom) / 2, k);
    static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    std::vector<std::pair<std::string, std::vector<const Row*>>> series;
    for (const Row& r : rows) {
        const std::string name = r.query_cut ? fmt::format("{} qc={}", r.index, r.query_cut) : r.index;
        auto it = std::find_if(series.begin(), series.end(), [&](const auto& x) { return x.first == name; });
        if (it == series.end()) it = series.insert(series.end(), {name, {}});
        it->second.push_back(&r);
    }
    for (std::size_t i = 0; i < series.size(); ++i) {
        const char* c = colors[i % 10];
        std::string pts;
        for (const Row* r : series[i].second) pts += fmt::format("{:.1f},{:.1f} ", px(r->mean_us), py(r->recall));
        svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", pts, c);
        for (const Row* r : series[i].second)
            svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(r->mean_us), py(r->recall), c);
        const double ly = top + 14.0 * static_cast<double>(i);
        svg += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
                           w - right + 12, ly, c, w - right + 26, ly + 9, series[i].first);
    }
    return svg + "</svg>\n";
}

// Prints the table and writes the JSON and SVG outputs.
int report(const std::vector<Row>& rows, const json::Value& meta, std::size_t k, const std::string& source,
           const std::string& json_path, const std::string& svg_path) {
    const double exact_mean_us = rows.empty() ? 1.0 : rows[0].mean_us;
    std::vector<std::vector<std::string>> table;
    for (const Row& r : rows) {
        table.push_back({r.index, r.query_cut ? std::to_string(r.query_cut) : "-",
                         r.query_cut ? fmt::format("{:.2f}", r.heap_factor) : "-", fmt::format("{:.4f}", r.recall),
                         fmt::format("{:.1f}", r.mean_us), fmt::format("{:.1f}", r.p99_us), fmt::format("{:.1f}", r.cold_us),
                         fmt::format("{:.1f}x", exact_mean_us / std::max(1e-9, r.mean_us)), fmt::format("{:.0f}", r.evaluated),
                         fmt::format("{:.1f}", r.build_seconds), fmt::format("{:.1f}", r.index_bytes / 1048576.0)});
    }
    std::printf("%s", text_table({"index", "query_cut", "heap_factor", fmt::format("recall@{}", k), "mean_us", "p99_us",
                                  "cold_mean_us", "speedup", "docs_scored", "build_s", "index_MiB"}, table).c_str());
    if (!json_path.empty()) {
        json::Value out = meta;
        json::Value arr = json::Value::array();
        for (const Row& r : rows) {
            json::Value o = json::Value::object();
            o.set("index", json::Value::string(r.index));
            o.set("query_cut", json::Value::number(r.query_cut));
            o.set("heap_factor", json::Value::number(r.heap_factor));
            o.set("recall", json::Value::number(r.recall));
            o.set("mean_us", json::Value::number(r.mean_us));
            o.set("p99_us", json::Value::number(r.p99_us));
            o.set("cold_mean_us", json::Value::number(r.cold_us));
            o.set("speedup", json::Value::number(exact_mean_us / std::max(1e-9, r.mean_us)));
            o.set("docs_scored", json::Value::number(r.evaluated));
            o.set("build_seconds", json::Value::number(r.build_seconds));
            o.set("index_bytes", json::Value::number(r.index_bytes));
            arr.as_array().push_back(std::move(o));
        }
        out.set("rows", std::move(arr));
        const std::string text = json::dump(out, true) + "\n";
        if (!write_output(json_path, text)) {
            std::fprintf(stderr, "quiver bench sparse: cannot write %s\n", json_path.c_str());
            return 1;
        }
    }
    if (!svg_path.empty()) {
        std::FILE* f = std::fopen(svg_path.c_str(), "wb");
        if (!f) {
            std::fprintf(stderr, "quiver bench sparse: cannot write %s\n", svg_path.c_str());
            return 1;
        }
        std::fputs(plot_svg(rows, k, source).c_str(), f);
        std::fclose(f);
    }
    return 0;
}

// Re-renders the table and plot of an earlier --json output (no measurement).
int report_from(const std::string& path, const std::string& json_path, const std::string& svg_path) {
    auto text = storage::read_file(path);
    if (!text) {
        std::fprintf(stderr, "quiver bench sparse: error: %s\n", text.error().to_string().c_str());
        return 1;
    }
    auto v = json::parse(*text);
    const json::Value* rows_v = v ? v->find("rows") : nullptr;
    if (!rows_v || !rows_v->is_array()) {
        std::fprintf(stderr, "quiver bench sparse: %s is not a `bench sparse --json` output\n", path.c_str());
        return 1;
    }
    auto num = [](const json::Value& o, const char* key) {
        const json::Value* x = o.find(key);
        return x && x->is_number() ? x->as_number() : 0.0;
    };
    std::vector<Row> rows;
    for (const json::Value& o : rows_v->as_array()) {
        Row r;
        if (const json::Value* n = o.find("index"); n && n->is_string()) r.index = n->as_string();
        r.query_cut = static_cast<std::uint32_t>(num(o, "query_cut"));
        r.heap_factor = static_cast<float>(num(o, "heap_factor"));
        r.recall = num(o, "recall");
        r.mean_us = num(o, "mean_us");
        r.p99_us = num(o, "p99_us");
        r.cold_us = num(o, "cold_mean_us");
        r.evaluated = num(o, "docs_scored");
        r.build_seconds = num(o, "build_seconds");
        r.index_bytes = num(o, "index_bytes");
        rows.push_back(std::move(r));
    }
    json::Value meta = json::Value::object();
    for (const auto& [key, val] : v->as_object())
        if (key != "rows") meta.set(key, val);
    const json::Value* src = v->find("source");
    const std::string source = src && src->is_string() ? src->as_string() : path;
    std::printf("%s (from %s)\n", source.c_str(), path.c_str());
    return report(rows, meta, static_cast<std::size_t>(num(*v, "k")), source, json_path, svg_path);
}

std::vector<double> parse_list(const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(std::stod(item));
    return out;
}

double recall_of(const std::vector<sparse::SparseHit>& got, const std::vector<sparse::SparseHit>& truth, std::size_t k) {
    const std::size_t n = std::min(k, truth.size());
    if (n == 0) return 1.0;
    std::size_t hit = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < std::min(k, got.size()); ++j)
            if (got[j].doc == truth[i].doc) {
                ++hit;
                break;
            }
    return static_cast<double>(hit) / static_cast<double>(n);
}

// Whole passes over the query set, as a user's workload runs: the first pass is cold (its mean is
// reported on its own), then `passes` warm passes. Every query is timed inside each warm pass; the
// mean is the warm passes' wall time over their queries, p99 is over every warm per-query time.
// Recall and docs_scored come from the last pass. No query is repeated back to back.
template <class Fn>
Row time_queries(const sparse::QuerySet& qs, const std::vector<std::vector<sparse::SparseHit>>* truth, std::size_t k,
                 std::size_t passes, Fn&& run, std::vector<std::vector<sparse::SparseHit>>* results_out) {
    Row row;
    std::vector<double> lat;
    lat.reserve(qs.size() * passes);
    double recall = 0, evaluated = 0, warm_us = 0;
    std::vector<std::vector<sparse::SparseHit>> last(qs.size());
    std::vector<std::size_t> eval(qs.size());
    for (std::size_t pass = 0; pass <= passes; ++pass) {
        Stopwatch pass_sw;
        for (std::size_t i = 0; i < qs.size(); ++i) {
            Stopwatch sw;
            last[i] = run(qs.vectors[i].view(), &eval[i]);
            if (pass > 0) lat.push_back(sw.seconds() * 1e6);
        }
        const double us = pass_sw.seconds() * 1e6;
        if (pass == 0) {
            row.cold_us = us / std::max<double>(1.0, static_cast<double>(qs.size()));
        } else {
            warm_us += us;
        }
    }
    for (std::size_t i = 0; i < qs.size(); ++i) {
        evaluated += static_cast<double>(eval[i]);
        if (truth) recall += recall_of(last[i], (*truth)[i], k);
    }
    if (results_out) *results_out = std::move(last);
    const double n = std::max<double>(1.0, static_cast<double>(qs.size()));
    row.recall = truth ? recall / n : 1.0;
    row.mean_us = passes > 0 ? warm_us / (n * static_cast<double>(passes)) : row.cold_us;
    row.p99_us = passes > 0 ? percentile(lat, 99.0) : row.cold_us;
    row.evaluated = evaluated / n;
    return row;
}

int run_sparse(int argc, char** argv) {
    CLI::App app{"Seismic vs the exact block-max MaxScore baseline on learned-sparse vectors: recall@k against "
                 "exact, single-thread latency, build time and index size."};
    std::string docs_path, queries_path, json_path, svg_path, weights = "f32", exact_weights = "f32", term_mode = "string";
    std::size_t synthetic = 0, n_queries = 1000, k = 10, threads = 0, repeat = 2;
    std::uint64_t seed = 1;
    std::string query_cuts = "3,5,8,10,15", heap_factors = "0.7,0.8,0.9,1.0";
    sparse::SeismicBuildParams bp;
    bool first_sorted = true;
    app.add_option("--docs", docs_path, "Documents, JsonVectorCollection JSONL ({\"id\",\"contents\",\"vector\":{term: weight}})");
    app.add_option("--queries", queries_path, "Queries: JSONL in the same form, or TSV qid<TAB>term:weight ...");
    app.add_option("--synthetic", synthetic, "Generate N SPLADE-like documents (and --n-queries queries) instead of reading files");
    app.add_option("--n-queries", n_queries, "Queries to generate with --synthetic")->capture_default_str();
    app.add_option("--seed", seed, "Generator seed")->capture_default_str();
    app.add_option("--term-mode", term_mode, "How JSONL term keys map to ids: string (any key) or integer (decimal ids)")
        ->check(CLI::IsMember({"string", "integer"}))->capture_default_str();
    app.add_option("--k", k, "Results per query (recall@k)")->capture_default_str();
    app.add_option("--threads", threads, "Build threads (0 = all cores); searches always run on one thread")->capture_default_str();
    app.add_option("--passes,--repeat", repeat,
                   "Warm whole passes over the query set after the cold first one (latency: warm mean and p99; the "
                   "cold pass is reported separately)")
        ->capture_default_str();
    app.add_option("--n-postings", bp.n_postings, "Seismic lambda: average postings kept per list")->capture_default_str();
    app.add_option("--max-fraction", bp.max_fraction, "Seismic: cap on a list, as a multiple of n-postings")->capture_default_str();
    app.add_option("--centroid-fraction", bp.centroid_fraction, "Seismic beta: blocks per posting")->capture_default_str();
    app.add_option("--summary-energy", bp.summary_energy, "Seismic alpha: L1 mass kept per block summary")->capture_default_str();
    app.add_option("--summary-max-entries", bp.summary_max_entries, "Seismic: at most this many components per block summary (0 = no cap)")->capture_default_str();
    app.add_option("--summary-min-postings", bp.summary_min_postings, "Seismic: lists with fewer kept postings get no summary (always scanned)")->capture_default_str();
    app.add_option("--min-cluster-size", bp.min_cluster_size, "Seismic: clusters this small are dissolved")->capture_default_str();
    app.add_option("--doc-cut", bp.doc_cut, "Seismic: document components used for clustering")->capture_default_str();
    std::string n_knns = "0";
    app.add_option("--knn", bp.knn, "Seismic: k-NN graph degree built per document (0 = none)")->capture_default_str();
    app.add_option("--n-knn", n_knns, "Comma-separated graph neighbours expanded per result to sweep (needs --knn)")->capture_default_str();
    app.add_option("--weights", weights, "Seismic forward-index weights: f32, bf16, or both (two Seismic indexes)")
        ->check(CLI::IsMember({"f32", "bf16", "both"}))->capture_default_str();
    app.add_option("--exact-weights", exact_weights,
                   "Baseline weights: f32 (ground truth), or both (also time an 8-bit quantised baseline and report its recall)")
        ->check(CLI::IsMember({"f32", "both"}))->capture_default_str();
    app.add_option("--query-cuts", query_cuts, "Comma-separated query_cut values to sweep")->capture_default_str();
    app.add_option("--heap-factors", heap_factors, "Comma-separated heap_factor values to sweep")->capture_default_str();
    app.add_flag("!--no-first-sorted", first_sorted, "Visit the first list's blocks in stored order, not by summary score");
    app.add_option("--json", json_path, "Write results as JSON to this file ('-' = stdout)");
    app.add_option("--svg", svg_path, "Write a recall/latency plot (SVG, log latency axis) to this file");
    std::string report_path;
    app.add_option("--report-from", report_path, "Only re-render the table, --json and --svg of an earlier --json output");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!report_path.empty()) return report_from(report_path, json_path, svg_path);
    if (synthetic == 0 && (docs_path.empty() || queries_path.empty())) {
        std::fprintf(stderr, "quiver bench sparse: give --docs and --queries, or --synthetic N\n");
        return 2;
    }
    bp.threads = threads;
    auto fail = [](const Error& e) {
        std::fprintf(stderr, "quiver bench sparse: error: %s\n", e.to_string().c_str());
        return 1;
    };

    // Data.
    sparse::SparseCollection docs;
    sparse::QuerySet queries;
    std::string source;
    Stopwatch load_sw;
    std::optional<ProgressHeartbeat> loading(std::in_place, "bench sparse: loading data");
    if (synthetic > 0) {
        sparse::SyntheticParams gp;
        gp.docs = synthetic;
        gp.queries = n_queries;
        gp.seed = seed;
        gp.threads = threads;
        auto data = sparse::generate_synthetic(gp);
        if (!data) return fail(data.error());
        docs = std::move(data->docs);
        queries = std::move(data->queries);
        source = fmt::format("synthetic SPLADE-like, {} docs, seed {}", synthetic, seed);
    } else {
        auto c = sparse::read_collection_jsonl(
            docs_path, sparse::Vocabulary(term_mode == "integer" ? sparse::TermMode::kInteger : sparse::TermMode::kString));
        if (!c) return fail(c.error());
        docs = std::move(*c);
        auto q = sparse::read_queries(queries_path, docs.vocab);
        if (!q) return fail(q.error());
        queries = std::move(*q);
        source = docs_path;
    }
    loading.reset();
    const sparse::SparseStats ds = sparse::compute_stats(docs), qs = sparse::compute_stats(queries.vectors);
    std::fprintf(stderr, "data: %s (%.1f s)\n  docs %zu, nnz/doc %.1f [%g, %g], top-10%% mass %.2f, vocab %u\n"
                         "  queries %zu, nnz/query %.1f [%g, %g], top-10%% mass %.2f, unknown query terms dropped %zu\n",
                 source.c_str(), load_sw.seconds(), ds.vectors, ds.mean_nnz, ds.min_nnz, ds.max_nnz, ds.top10pct_mass,
                 docs.dim(), qs.vectors, qs.mean_nnz, qs.min_nnz, qs.max_nnz, qs.top10pct_mass, queries.unknown_terms);

    // Exact baseline (ground truth). Freed before Seismic is built, to keep the peak memory down.
    std::vector<std::vector<sparse::SparseHit>> truth;
    std::vector<Row> rows;
    {
    Stopwatch exact_sw;
    std::optional<ProgressHeartbeat> building(std::in_place, "bench sparse: exact build");
    auto exact = sparse::ExactSparseIndex::build(docs, sparse::WeightType::kFloat32);
    building.reset();
    if (!exact) return fail(exact.error());
    const double exact_build_s = exact_sw.seconds();
    {
        std::fprintf(stderr, "exact (block-max MaxScore, f32): built in %.1f s, running %zu queries...\n", exact_build_s,
                     queries.size());
        Row r = time_queries(queries, nullptr, k, repeat, [&](sparse::SparseVectorView q, std::size_t* eval) {
            sparse::TopKStats st;
            auto h = exact->search(q, k, &st);
            *eval = st.docs_scored;
            return h;
        }, &truth);
        r.index = "exact-f32";
        r.build_seconds = exact_build_s;
        r.index_bytes = static_cast<double>(exact->bytes());
        rows.push_back(r);
    }
    if (exact_weights == "both") {
        Stopwatch sw;
        auto ex8 = sparse::ExactSparseIndex::build(docs, sparse::WeightType::kQuantized8);
        if (!ex8) return fail(ex8.error());
        const double s = sw.seconds();
        Row r = time_queries(queries, &truth, k, repeat, [&](sparse::SparseVectorView q, std::size_t* eval) {
            sparse::TopKStats st;
            auto h = ex8->search(q, k, &st);
            *eval = st.docs_scored;
            return h;
        }, nullptr);
        r.index = "exact-u8";
        r.build_seconds = s;
        r.index_bytes = static_cast<double>(ex8->bytes());
        rows.push_back(r);
    }
    }

    // Seismic.
    std::vector<sparse::WeightFormat> formats;
    if (weights != "bf16") formats.push_back(sparse::WeightFormat::kF32);
    if (weights != "f32") formats.push_back(sparse::WeightFormat::kBf16);
    const std::vector<double> cuts = parse_list(query_cuts), hfs = parse_list(heap_factors);
    std::string index_report;
    for (sparse::WeightFormat f : formats) {
        bp.weights = f;
        const std::string name = f == sparse::WeightFormat::kF32 ? "seismic-f32" : "seismic-bf16";
        Stopwatch sw;
        auto seis = sparse::SeismicIndex::build(docs, bp);
        if (!seis) return fail(seis.error());
        const double build_s = sw.seconds();
        const sparse::SeismicStats st = seis->stats();
        index_report += fmt::format(
            "{}: built in {:.1f} s ({} threads); {} postings kept of {} ({:.1f}%), {} blocks ({} without summary), {} summary entries, k-NN {:.1f} MiB\n"
            "  index {:.1f} MiB = forward {:.1f} + postings {:.1f} + summaries {:.1f} + ids {:.1f}; "
            "raw forward index (u32 term + f32 weight) {:.1f} MiB -> ratio {:.2f}\n",
            name, build_s, resolve_threads(threads), st.postings, st.nnz, 100.0 * static_cast<double>(st.postings) / static_cast<double>(std::max<std::size_t>(1, st.nnz)),
            st.blocks, st.unsummarised_blocks, st.summary_entries, static_cast<double>(st.knn_bytes) / 1048576.0, static_cast<double>(st.total_bytes()) / 1048576.0, static_cast<double>(st.forward_bytes) / 1048576.0,
            static_cast<double>(st.postings_bytes) / 1048576.0, static_cast<double>(st.summary_bytes) / 1048576.0,
            static_cast<double>(st.other_bytes) / 1048576.0, static_cast<double>(st.raw_forward_bytes) / 1048576.0,
            static_cast<double>(st.total_bytes()) / static_cast<double>(std::max<std::size_t>(1, st.raw_forward_bytes)));
        std::fputs(index_report.c_str(), stderr);
        sparse::SeismicSearcher searcher(*seis);
        for (double qc : cuts) {
            for (double hf : hfs) {
              for (double nk : parse_list(n_knns)) {
                sparse::SeismicSearchParams sp;
                sp.n_knn = static_cast<std::uint32_t>(nk);
                sp.k = k;
                sp.query_cut = static_cast<std::uint32_t>(qc);
                sp.heap_factor = static_cast<float>(hf);
                sp.first_sorted = first_sorted;
                Row r = time_queries(queries, &truth, k, repeat, [&](sparse::SparseVectorView q, std::size_t* eval) {
                    return searcher.search(q, sp, eval);
                }, nullptr);
                r.index = sp.n_knn ? fmt::format("{}+knn{}", name, sp.n_knn) : name;
                r.query_cut = sp.query_cut;
                r.heap_factor = sp.heap_factor;
                r.build_seconds = build_s;
                r.index_bytes = static_cast<double>(st.total_bytes());
                rows.push_back(r);
                std::fprintf(stderr, "  %s qc=%u hf=%.2f recall=%.4f mean=%.1fus\n", r.index.c_str(), sp.query_cut,
                             static_cast<double>(sp.heap_factor), r.recall, r.mean_us);
              }
            }
        }
    }

    // Report.
    std::printf("%s\n%s", source.c_str(), index_report.c_str());
    json::Value meta = json::Value::object();
    meta.set("source", json::Value::string(source));
    meta.set("docs", json::Value::number(static_cast<double>(docs.size())));
    meta.set("queries", json::Value::number(static_cast<double>(queries.size())));
    meta.set("k", json::Value::number(static_cast<double>(k)));
    meta.set("warm_passes", json::Value::number(static_cast<double>(repeat)));
    meta.set("doc_mean_nnz", json::Value::number(ds.mean_nnz));
    meta.set("query_mean_nnz", json::Value::number(qs.mean_nnz));
    meta.set("n_postings", json::Value::number(bp.n_postings));
    meta.set("centroid_fraction", json::Value::number(bp.centroid_fraction));
    meta.set("summary_energy", json::Value::number(bp.summary_energy));
    meta.set("max_fraction", json::Value::number(bp.max_fraction));
    meta.set("summary_max_entries", json::Value::number(bp.summary_max_entries));
    meta.set("summary_min_postings", json::Value::number(bp.summary_min_postings));
    meta.set("knn", json::Value::number(bp.knn));
    meta.set("index_report", json::Value::string(index_report));
    return report(rows, meta, k, source, json_path, svg_path);
}

const BenchRegistrar kReg{"sparse", "learned sparse: Seismic vs exact block-max MaxScore (recall, latency, size)",
                          &run_sparse};

}  // namespace
}  // namespace quiver::bench
