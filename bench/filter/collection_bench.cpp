// quiver bench filter-collection: filtered vector and BM25 search latency in a collection.
//
// Builds a collection of --docs synthetic documents (a text field over a Zipf vocabulary, a
// --dim-d vector field (HNSW), a keyword attribute `cat` with 100 values and an integer attribute `num`
// uniform in [0, 10000), both payload-indexed), optimizes it into one segment, then runs --queries
// searches per kind, one at a time on one thread: vector + `cat` eq (1%), vector + `num` range (1%),
// BM25 + `cat` eq, BM25 + `num` range, and unfiltered vector / BM25 for reference. Reports p50 / p99 /
// mean latency per kind, the share of searches that returned k hits (every filter matches ~1% of the
// documents, far more than k), and the planner's choices. The collection is written under --dir
// (removed afterwards unless --keep).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

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
    std::size_t docs = 1000000, dim = 64, queries = 200, k = 10, batch = 20000, threads = 2;
    bool keep = false;
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
    app.add_flag("--keep", o.keep, "Keep the collection");
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
    std::filesystem::remove_all(o.dir);
    engine::CollectionOptions copt;
    copt.background_merge = false;
    copt.build_threads = o.threads;
    copt.flush_docs = o.docs + 1;
    auto c = engine::Collection::create(o.dir, schema, copt);
    if (!c) {
        std::fprintf(stderr, "%s\n", c.error().to_string().c_str());
        return 1;
    }
    std::mt19937_64 rng(7);
    std::normal_distribution<float> g;
    // Vectors around 200 centres, so the graph has structure.
    std::vector<std::vector<float>> centres(200, std::vector<float>(o.dim));
    for (auto& cv : centres) {
        for (auto& x : cv) x = 2.0f * g(rng);
    }
    auto random_vector = [&] {
        const auto& cv = centres[rng() % centres.size()];
        std::vector<float> v(o.dim);
        for (std::size_t j = 0; j < o.dim; ++j) v[j] = cv[j] + g(rng);
        return v;
    };
    std::vector<std::string> words;
    for (int i = 0; i < 5000; ++i) words.push_back(fmt::format("w{}", i));
    std::vector<double> weights(words.size());
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = 1.0 / static_cast<double>(i + 1);
    std::discrete_distribution<std::size_t> word(weights.begin(), weights.end());
    {
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
                d.fields["emb"] = random_vector();
                docs.push_back(std::move(d));
            }
            const std::size_t n = docs.size();
            if (auto st = (*c)->upsert(std::move(docs)); !st) {
                std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
                return 1;
            }
            bar.add(n);
        }
        bar.finish();
        ProgressHeartbeat beat("optimize");
        if (auto st = (*c)->optimize(); !st) {
            std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
            return 1;
        }
        std::fprintf(stderr, "built in %.1f s\n", sw.seconds());
    }
    struct Kind {
        std::string name;
        bool vector;
        int filter;  // 0 none, 1 cat eq, 2 num range
    };
    const std::vector<Kind> kinds = {{"vector", true, 0},         {"vector+cat_eq", true, 1}, {"vector+num_range", true, 2},
                                     {"bm25", false, 0},          {"bm25+cat_eq", false, 1},  {"bm25+num_range", false, 2}};
    json::Value out = json::Value::array();
    std::vector<std::vector<std::string>> rows;
    for (const Kind& kind : kinds) {
        std::vector<double> ms;
        std::size_t full = 0;
        std::map<std::string, std::size_t> chosen;
        for (std::size_t q = 0; q < o.queries; ++q) {
            engine::SearchRequest r;
            r.k = o.k;
            if (kind.vector) {
                r.clauses.push_back(engine::QueryClause::of_vector("emb", random_vector()));
            } else {
                r.clauses.push_back(engine::QueryClause::of_text("body", words[word(rng)] + " " + words[word(rng)]));
            }
            engine::Filter f;
            if (kind.filter == 1) {
                f.op = engine::Filter::Op::kEq;
                f.field = "cat";
                f.values = {fmt::format("c{}", rng() % 100)};
                r.filter = f;
            } else if (kind.filter == 2) {
                f.op = engine::Filter::Op::kRange;
                f.field = "num";
                const double lo = static_cast<double>(rng() % 9900);
                f.gte = lo;
                f.lt = lo + 100;
                r.filter = f;
            }
            r.return_fields = std::vector<std::string>{};
            engine::SearchExplain ex;
            Stopwatch sw;
            auto hits = (*c)->search(r, &ex);
            ms.push_back(sw.seconds() * 1e3);
            if (!hits) {
                std::fprintf(stderr, "%s\n", hits.error().to_string().c_str());
                return 1;
            }
            full += hits->size() == o.k ? 1 : 0;
            for (const auto& p : ex.plans) ++chosen[p.strategy];
        }
        double mean = 0;
        for (double x : ms) mean += x;
        mean /= static_cast<double>(ms.size());
        std::string choice;
        for (const auto& [s, n] : chosen) choice += (choice.empty() ? "" : " ") + s + ":" + std::to_string(n);
        rows.push_back({kind.name, fmt::format("{:.2f}", percentile(ms, 50)), fmt::format("{:.2f}", percentile(ms, 99)),
                        fmt::format("{:.2f}", mean), fmt::format("{}/{}", full, o.queries), choice});
        json::Value x = json::Value::object();
        x.set("kind", json::Value::string(kind.name));
        x.set("p50_ms", json::Value::number(percentile(ms, 50)));
        x.set("p99_ms", json::Value::number(percentile(ms, 99)));
        x.set("mean_ms", json::Value::number(mean));
        x.set("full_pages", json::Value::number(static_cast<double>(full)));
        x.set("queries", json::Value::number(static_cast<double>(o.queries)));
        x.set("strategies", json::Value::string(choice));
        out.as_array().push_back(std::move(x));
    }
    std::printf("collection of %zu documents, dim %zu, k=%zu, %zu searches per kind, one thread (ms)\n", o.docs, o.dim,
                o.k, o.queries);
    std::printf("%s", text_table({"kind", "p50", "p99", "mean", "k hits", "strategies"}, rows).c_str());
    if (!o.json_path.empty()) std::ofstream(o.json_path) << json::dump(out, true) << "\n";
    (*c)->close();
    if (!o.keep) std::filesystem::remove_all(o.dir);
    return 0;
}

const BenchRegistrar kReg{"filter-collection", "filtered vector / BM25 search latency in a collection (p99)",
                          &run_filter_collection};

}  // namespace
}  // namespace quiver::bench
