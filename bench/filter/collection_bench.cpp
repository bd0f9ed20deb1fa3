// quiver bench filter-collection: filtered vector and BM25 search latency in a collection.
//
// Builds a collection of --docs synthetic documents (a text field over a Zipf vocabulary, a
// --dim-d vector field (HNSW), a keyword attribute `cat` with 100 values and an integer attribute `num`
// uniform in [0, 10000), both payload-indexed), optimizes it into one segment, then runs --queries
// searches per kind, one at a time on one thread: vector + `cat` eq (1%), vector + `num` range (1%),
// BM25 + `cat` eq, BM25 + `num` range, and unfiltered vector / BM25 for reference; then reopens the
// collection with the posting walk forced to the per-candidate mask and repeats the filtered BM25 kinds
// with the same queries (the walk before the filter bitmap drove it). Reports p50 / p99 / mean latency
// per kind, the measured selectivity, the share of searches that returned k hits (every filter matches
// ~1% of the documents, far more than k), and the planner's choices. --warmup searches per kind run
// first, untimed. The collection is written under --dir (removed afterwards unless --keep); --reuse
// searches an existing one (built by an earlier --keep run with the same --docs).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "common/report.h"
#include "quiver/core/json.h"
#include "quiver/core/progress.h"
#include "quiver/engine/collection.h"
#include "registry.h"

namespace quiver::bench {
namespace {

struct Options {
    std::string dir = "/tmp/quiver_filter_collection", json_path;
    std::size_t docs = 1000000, dim = 64, queries = 200, k = 10, batch = 20000, threads = 2, warmup = 20;
    bool keep = false, reuse = false, compare_mask = true;
};

int run_filter_collection(int argc, char** argv) {
    Options o;
    CLI::App app{"Filtered vector and BM25 search latency (p50/p99, single thread) in a collection with "
                 "payload-indexed keyword and integer attributes at 1% selectivity."};
    app.add_option("--docs", o.docs, "Documents")->capture_default_str();
    app.add_option("--dim", o.dim, "Vector dimension")->capture_default_str();
    app.add_option("--queries", o.queries, "Searches per kind")->capture_default_str();
    app.add_option("--k", o.k, "Hits per search")->capture_default_str();
    app.add_option("--dir", o.dir, "Collection directory (must not exist)")->capture_default_str();
    app.add_option("--threads", o.threads, "Build threads")->capture_default_str();
    app.add_option("--warmup", o.warmup, "Untimed searches per kind first")->capture_default_str();
    app.add_flag("--keep", o.keep, "Keep the collection");
    app.add_flag("--reuse", o.reuse, "Search an existing collection in --dir (from a --keep run)");
    app.add_flag("!--no-compare-mask", o.compare_mask, "Skip the BM25 runs with the walk forced to the mask");
    app.add_option("--json", o.json_path, "Write the figures as JSON");
    CLI11_PARSE(app, argc, argv);

    engine::Schema schema;
    auto field = [&](const char* name, engine::FieldType t) {
        engine::FieldSpec f;
        f.name = name;
        f.type = t;
        schema.fields.push_back(f);
        return &schema.fields.back();
    };
    field("body", engine::FieldType::kText);
    field("cat", engine::FieldType::kKeyword)->payload_index = true;
    field("num", engine::FieldType::kInteger)->payload_index = true;
    auto* emb = field("emb", engine::FieldType::kVector);
    emb->dim = o.dim;
    emb->metric = simd::Metric::kL2;
    emb->hnsw_m = 16;
    emb->hnsw_ef_construction = 100;
    engine::CollectionOptions copt;
    copt.background_merge = false;
    copt.build_threads = o.threads;
    copt.flush_docs = o.docs + 1;
    std::mt19937_64 rng(7);
    std::normal_distribution<float> g;
    // Vectors around 200 centres, so the graph has structure.
    std::vector<std::vector<float>> centres(200, std::vector<float>(o.dim));
    for (auto& cv : centres) {
        for (auto& x : cv) x = 2.0f * g(rng);
    }
    auto random_vector = [&](std::mt19937_64& r) {
        const auto& cv = centres[r() % centres.size()];
        std::vector<float> v(o.dim);
        for (std::size_t j = 0; j < o.dim; ++j) v[j] = cv[j] + g(r);
        return v;
    };
    std::vector<std::string> words;
    for (int i = 0; i < 5000; ++i) words.push_back(fmt::format("w{}", i));
    std::vector<double> weights(words.size());
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = 1.0 / static_cast<double>(i + 1);
    std::discrete_distribution<std::size_t> word(weights.begin(), weights.end());
    double ingest_s = 0, optimize_s = 0;
    std::shared_ptr<engine::Collection> c;
    if (o.reuse) {
        auto opened = engine::Collection::open(o.dir, copt);
        if (!opened) {
            std::fprintf(stderr, "%s\n", opened.error().to_string().c_str());
            return 1;
        }
        c = std::move(opened).value();
        if (c->stats().documents != o.docs) {
            std::fprintf(stderr, "%s holds %llu documents, not --docs %zu\n", o.dir.c_str(),
                         static_cast<unsigned long long>(c->stats().documents), o.docs);
            return 1;
        }
    } else {
        std::filesystem::remove_all(o.dir);
        auto created = engine::Collection::create(o.dir, schema, copt);
        if (!created) {
            std::fprintf(stderr, "%s\n", created.error().to_string().c_str());
            return 1;
        }
        c = std::move(created).value();
        ProgressBar bar("ingest", o.docs, "documents");
        Stopwatch sw;
        for (std::size_t at = 0; at < o.docs; at += o.batch) {
            std::vector<engine::Document> docs;
            for (std::size_t i = at; i < std::min(o.docs, at + o.batch); ++i) {
                engine::Document d;
                d.id = std::to_string(i);
                std::string text;
                for (int t = 0; t < 12; ++t) text += words[word(rng)] + " ";
                d.fields["body"] = text;
                d.fields["cat"] = fmt::format("c{}", rng() % 100);
                d.fields["num"] = static_cast<std::int64_t>(rng() % 10000);
                d.fields["emb"] = random_vector(rng);
                docs.push_back(std::move(d));
            }
            const std::size_t n = docs.size();
            if (auto st = c->upsert(std::move(docs)); !st) {
                std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
                return 1;
            }
            bar.add(n);
        }
        bar.finish();
        ingest_s = sw.seconds();
        Stopwatch opt_sw;
        {
            ProgressHeartbeat beat("optimize");
            if (auto st = c->optimize(); !st) {
                std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
                return 1;
            }
        }
        optimize_s = opt_sw.seconds();
        std::fprintf(stderr, "ingested in %.1f s, optimized (one segment) in %.1f s\n", ingest_s, optimize_s);
    }
    struct Kind {
        std::string name;
        bool vector;
        int filter;  // 0 none, 1 cat eq, 2 num range
        std::uint64_t seed;  // the query stream (the mask runs repeat a kind's queries)
    };
    json::Value out = json::Value::object();
    json::Value results = json::Value::array();
    std::vector<std::vector<std::string>> rows;
    auto run_kind = [&](const Kind& kind, const std::string& label) -> bool {
        std::mt19937_64 qrng(kind.seed);
        std::vector<double> ms;
        std::size_t full = 0;
        double matched = 0;
        std::map<std::string, std::size_t> chosen;
        for (std::size_t q = 0; q < o.warmup + o.queries; ++q) {
            engine::SearchRequest r;
            r.k = o.k;
            if (kind.vector) {
                r.clauses.push_back(engine::QueryClause::of_vector("emb", random_vector(qrng)));
            } else {
                r.clauses.push_back(engine::QueryClause::of_text("body", words[word(qrng)] + " " + words[word(qrng)]));
            }
            engine::Filter f;
            if (kind.filter == 1) {
                f.op = engine::Filter::Op::kEq;
                f.field = "cat";
                f.values = {fmt::format("c{}", qrng() % 100)};
                r.filter = f;
            } else if (kind.filter == 2) {
                f.op = engine::Filter::Op::kRange;
                f.field = "num";
                const double lo = static_cast<double>(qrng() % 9900);
                f.gte = lo;
                f.lt = lo + 100;
                r.filter = f;
            }
            r.return_fields = std::vector<std::string>{};
            engine::SearchExplain ex;
            Stopwatch sw;
            auto hits = c->search(r, &ex);
            const double elapsed = sw.seconds() * 1e3;
            if (!hits) {
                std::fprintf(stderr, "%s\n", hits.error().to_string().c_str());
                return false;
            }
            if (q < o.warmup) continue;
            ms.push_back(elapsed);
            full += hits->size() == o.k ? 1 : 0;
            matched += kind.filter == 0 ? static_cast<double>(o.docs) : static_cast<double>(ex.filter_matches);
            for (const auto& p : ex.plans) ++chosen[p.strategy];
        }
        double mean = 0;
        for (double x : ms) mean += x;
        mean /= static_cast<double>(ms.size());
        const double selectivity = matched / static_cast<double>(o.queries) / static_cast<double>(o.docs);
        std::string choice;
        for (const auto& [st, n] : chosen) choice += (choice.empty() ? "" : " ") + st + ":" + std::to_string(n);
        rows.push_back({label, fmt::format("{:.2f}%", 100.0 * selectivity), fmt::format("{:.2f}", percentile(ms, 50)),
                        fmt::format("{:.2f}", percentile(ms, 99)), fmt::format("{:.2f}", mean),
                        fmt::format("{:.2f}", *std::max_element(ms.begin(), ms.end())), fmt::format("{}/{}", full, o.queries),
                        choice});
        json::Value x = json::Value::object();
        x.set("kind", json::Value::string(label));
        x.set("selectivity", json::Value::number(selectivity));
        x.set("p50_ms", json::Value::number(percentile(ms, 50)));
        x.set("p99_ms", json::Value::number(percentile(ms, 99)));
        x.set("mean_ms", json::Value::number(mean));
        x.set("max_ms", json::Value::number(*std::max_element(ms.begin(), ms.end())));
        x.set("full_pages", json::Value::number(static_cast<double>(full)));
        x.set("queries", json::Value::number(static_cast<double>(o.queries)));
        x.set("strategies", json::Value::string(choice));
        results.as_array().push_back(std::move(x));
        return true;
    };
    const std::vector<Kind> kinds = {{"vector", true, 0, 11},  {"vector+cat_eq", true, 1, 12}, {"vector+num_range", true, 2, 13},
                                     {"bm25", false, 0, 14},   {"bm25+cat_eq", false, 1, 15},  {"bm25+num_range", false, 2, 16}};
    for (const Kind& kind : kinds) {
        if (!run_kind(kind, kind.name)) return 1;
    }
    if (o.compare_mask) {
        // The same BM25 queries with the posting walk forced to test the filter per candidate.
        c->close();
        engine::CollectionOptions mask = copt;
        mask.posting_walk.force = sparse::FilterWalk::kMask;
        auto reopened = engine::Collection::open(o.dir, mask);
        if (!reopened) {
            std::fprintf(stderr, "%s\n", reopened.error().to_string().c_str());
            return 1;
        }
        c = std::move(reopened).value();
        for (const Kind& kind : kinds) {
            if (!kind.vector && kind.filter != 0 && !run_kind(kind, kind.name + " (mask walk)")) return 1;
        }
    }
    std::printf("collection of %zu documents (one segment), dim %zu, k=%zu, %zu searches per kind after %zu warm-up, "
                "one thread (ms)\n",
                o.docs, o.dim, o.k, o.queries, o.warmup);
    std::printf("%s", text_table({"kind", "selectivity", "p50", "p99", "mean", "max", "k hits", "strategies"}, rows).c_str());
    out.set("docs", json::Value::number(static_cast<double>(o.docs)));
    out.set("dim", json::Value::number(static_cast<double>(o.dim)));
    out.set("k", json::Value::number(static_cast<double>(o.k)));
    out.set("queries", json::Value::number(static_cast<double>(o.queries)));
    out.set("warmup", json::Value::number(static_cast<double>(o.warmup)));
    if (!o.reuse) {
        out.set("ingest_s", json::Value::number(ingest_s));
        out.set("optimize_s", json::Value::number(optimize_s));
    }
    out.set("results", std::move(results));
    if (!o.json_path.empty()) std::ofstream(o.json_path) << json::dump(out, true) << "\n";
    c->close();
    if (!o.keep && !o.reuse) std::filesystem::remove_all(o.dir);
    return 0;
}

const BenchRegistrar kReg{"filter-collection", "filtered vector / BM25 search latency in a collection (p99)",
                          &run_filter_collection};

}  // namespace
}  // namespace quiver::bench
