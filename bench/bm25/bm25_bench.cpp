// `quiver bench bm25`: quiver's BM25 against Xapian on one test collection, same k1/b, analysis as
// close as Xapian allows. Reports indexing time, index size, single-thread QPS, p50/p99 latency,
// nDCG@10 and Recall@100 per engine, as a table and optionally JSON.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "bm25/lexical_engine.h"
#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/sparse/bm25_index.h"
#include "registry.h"

namespace quiver::bench::bm25 {
namespace {

bool run_quiver(const eval::Dataset& ds, const LexicalSettings& settings, std::size_t threads,
                LexicalMeasurement& out, std::string& error) {
    out.engine = "quiver";
    const std::string path = settings.work_dir + "/quiver.bm25";
    {
        Stopwatch sw;
        std::vector<sparse::Bm25Document> docs;
        docs.reserve(ds.documents.size());
        for (const auto& d : ds.documents) docs.push_back({d.id, d.title, d.text});
        sparse::Bm25Index::BuildOptions options;
        options.params = {settings.k1, settings.b};
        options.threads = threads;
        auto built = sparse::Bm25Index::build(docs, options);
        if (!built) return error = built.error().to_string(), false;
        if (auto st = built->save(path); !st) return error = st.error().to_string(), false;
        out.index_seconds = sw.seconds();
        out.analysis = built->analyzer_config().describe();
    }
    std::error_code ec;
    out.index_bytes = static_cast<std::size_t>(std::filesystem::file_size(path, ec));
    auto index = sparse::Bm25Index::open(path);
    if (!index) return error = index.error().to_string(), false;
    auto searcher = sparse::Bm25Searcher::create(*index);
    if (!searcher) return error = searcher.error().to_string(), false;
    time_queries(ds, settings, out, [&](std::size_t i, std::vector<std::string>& ids, std::vector<double>& scores) {
        const auto hits = searcher->search(ds.queries[i].text, settings.k);
        ids.reserve(hits.size());
        for (const auto& h : hits) {
            ids.emplace_back(index->doc_id(h.doc));
            scores.push_back(h.score);
        }
    });
    std::filesystem::remove(path, ec);
    return true;
}

struct Row {
    LexicalMeasurement m;
    double qps = 0.0;
    double p50 = 0.0;
    double p99 = 0.0;
    double ndcg10 = 0.0;
    double recall100 = 0.0;
};

bool score_row(const eval::Dataset& ds, Row& row, std::string& error) {
    eval::Run run;
    for (std::size_t i = 0; i < ds.queries.size(); ++i) {
        auto& list = run[ds.queries[i].id];
        for (std::size_t j = 0; j < row.m.run[i].size(); ++j) list.push_back({row.m.run[i][j], row.m.scores[i][j]});
    }
    auto specs = eval::parse_metrics("ndcg@10,recall@100");
    auto rep = eval::evaluate(ds.qrels, run, *specs);
    if (!rep) return error = rep.error().to_string(), false;
    row.ndcg10 = rep->metrics[0].mean;
    row.recall100 = rep->metrics[1].mean;
    row.qps = row.m.search_seconds > 0 ? static_cast<double>(row.m.latencies_ms.size()) / row.m.search_seconds : 0.0;
    row.p50 = percentile(row.m.latencies_ms, 50);
    row.p99 = percentile(row.m.latencies_ms, 99);
    return true;
}

int run_bm25(int argc, char** argv) {
    CLI::App app{"BM25 vs Xapian: indexing seconds, index bytes, single-thread QPS, p50/p99 latency, nDCG@10 "
                 "and Recall@100 on one test collection (same k1/b; Xapian's BM25Weight(k1, 0, 1, b, 0.5))",
                 argv[0]};
    std::string dataset;
    std::string split = "test";
    std::string peers = "xapian";
    std::string json_out;
    LexicalSettings settings;
    std::size_t threads = 1;
    app.add_option("--dataset", dataset, "Test collection directory (BEIR, TREC or SMART layout)")->required();
    app.add_option("--split", split, "Qrels split")->capture_default_str();
    app.add_option("--peers", peers, "Comma-separated peers: xapian, or none")->capture_default_str();
    app.add_option("--k1", settings.k1, "BM25 k1")->capture_default_str();
    app.add_option("--b", settings.b, "BM25 b")->capture_default_str();
    app.add_option("--k", settings.k, "Hits per query (>= 100 for Recall@100)")->capture_default_str();
    app.add_option("--repeat", settings.repeat, "Timed passes over the queries (after one warm-up)")->capture_default_str();
    app.add_option("--index-threads", threads, "quiver indexing threads (Xapian indexes on one)")->capture_default_str();
    app.add_option("--json", json_out, "Also write the results as JSON to this file ('-' for stdout)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (settings.k == 0 || settings.repeat == 0) {
        std::fprintf(stderr, "quiver bench bm25: --k and --repeat must be at least 1\n");
        return 2;
    }
    std::vector<std::string> peer_list;
    for (std::size_t start = 0; start <= peers.size();) {
        const std::size_t comma = std::min(peers.find(',', start), peers.size());
        std::string peer = peers.substr(start, comma - start);
        start = comma + 1;
        if (peer.empty() || peer == "none") continue;
        if (peer != "xapian") {
            std::fprintf(stderr, "quiver bench bm25: unknown peer '%s' (known: xapian, none)\n", peer.c_str());
            return 2;
        }
        peer_list.push_back(std::move(peer));
    }
    ProgressBar::set_globally_enabled(false);
    auto ds = eval::load_dataset(dataset, {split, true});
    if (!ds) {
        std::fprintf(stderr, "quiver bench bm25: error: %s\n", ds.error().to_string().c_str());
        return 2;
    }
    char tmpl[] = "/tmp/quiver-bench-bm25-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        std::fprintf(stderr, "quiver bench bm25: error: cannot create a temporary directory\n");
        return 1;
    }
    settings.work_dir = tmpl;
    std::vector<Row> rows;
    std::string error;
    rows.emplace_back();
    if (!run_quiver(*ds, settings, threads, rows.back().m, error) || !score_row(*ds, rows.back(), error)) {
        std::fprintf(stderr, "quiver bench bm25: error: %s\n", error.c_str());
        return 1;
    }
    for (std::size_t p = 0; p < peer_list.size(); ++p) {
        rows.emplace_back();
        if (!run_xapian(*ds, settings, rows.back().m, error) || !score_row(*ds, rows.back(), error)) {
            std::fprintf(stderr, "quiver bench bm25: error: %s\n", error.c_str());
            return 1;
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(settings.work_dir, ec);

    std::vector<std::vector<std::string>> table;
    for (const Row& r : rows) {
        table.push_back({r.m.engine, fmt::format("{:.3f}", r.m.index_seconds),
                         fmt::format("{:.2f}", static_cast<double>(r.m.index_bytes) / 1048576.0),
                         fmt::format("{:.0f}", r.qps), fmt::format("{:.3f}", r.p50), fmt::format("{:.3f}", r.p99),
                         fmt::format("{:.4f}", r.ndcg10), fmt::format("{:.4f}", r.recall100)});
    }
    std::printf("bm25 on %s (%zu docs, %zu queries, k1=%.2f b=%.2f, top-%zu, %zu timed passes, 1 search thread)\n",
                dataset.c_str(), ds->documents.size(), ds->queries.size(), static_cast<double>(settings.k1),
                static_cast<double>(settings.b), settings.k, settings.repeat);
    std::fputs(text_table({"engine", "index s", "index MiB", "QPS", "p50 ms", "p99 ms", "nDCG@10", "R@100"}, table)
                   .c_str(),
               stdout);
    for (const Row& r : rows) std::printf("  %s analysis: %s\n", r.m.engine.c_str(), r.m.analysis.c_str());
    if (rows.size() > 1 && rows[1].qps > 0) std::printf("quiver / %s QPS: %.2fx\n", rows[1].m.engine.c_str(), rows[0].qps / rows[1].qps);

    if (!json_out.empty()) {
        json::Value j = json::Value::object();
        j.set("dataset", json::Value::string(dataset));
        j.set("documents", json::Value::number(static_cast<double>(ds->documents.size())));
        j.set("queries", json::Value::number(static_cast<double>(ds->queries.size())));
        j.set("k1", json::Value::number(std::round(static_cast<double>(settings.k1) * 1e6) / 1e6));
        j.set("b", json::Value::number(std::round(static_cast<double>(settings.b) * 1e6) / 1e6));
        j.set("k", json::Value::number(static_cast<double>(settings.k)));
        json::Value engines = json::Value::array();
        for (const Row& r : rows) {
            json::Value e = json::Value::object();
            e.set("engine", json::Value::string(r.m.engine));
            e.set("analysis", json::Value::string(r.m.analysis));
            e.set("index_seconds", json::Value::number(r.m.index_seconds));
            e.set("index_bytes", json::Value::number(static_cast<double>(r.m.index_bytes)));
            e.set("qps", json::Value::number(r.qps));
            e.set("p50_ms", json::Value::number(r.p50));
            e.set("p99_ms", json::Value::number(r.p99));
            e.set("ndcg@10", json::Value::number(r.ndcg10));
            e.set("recall@100", json::Value::number(r.recall100));
            engines.as_array().push_back(std::move(e));
        }
        j.set("engines", std::move(engines));
        const std::string text = json::dump(j, true) + "\n";
        if (json_out == "-") {
            std::fputs(text.c_str(), stdout);
        } else if (std::FILE* f = std::fopen(json_out.c_str(), "wb")) {
            std::fputs(text.c_str(), f);
            std::fclose(f);
        } else {
            std::fprintf(stderr, "quiver bench bm25: error: cannot write '%s'\n", json_out.c_str());
            return 1;
        }
    }
    return 0;
}

const BenchRegistrar kReg{"bm25", "BM25 vs Xapian: index time/size, single-thread QPS, latency, nDCG@10, R@100",
                          &run_bm25};

}  // namespace
}  // namespace quiver::bench::bm25
