// `quiver bench deletes`: top-k BM25 latency of a collection before and after deleting a fraction of
// its documents (issue 9: deletes are bitmaps passed into the MaxScore walk, no over-fetch).
// Generates short synthetic documents from the words of a real corpus (sampled by their corpus
// frequency), ingests them and optimizes to one segment, times a whole pass of the corpus's real
// queries, deletes a random fraction, times the same pass again, and prints both and their ratio.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <unordered_map>

#include "common/report.h"
#include "quiver/core/progress.h"
#include "quiver/engine/collection.h"
#include "quiver/eval/dataset.h"
#include "registry.h"

namespace quiver::bench::deletes {
namespace {

struct Pass {
    double seconds = 0.0;
    double p50_ms = 0.0;
    double p99_ms = 0.0;
    std::size_t hits = 0;
};

Result<Pass> time_pass(const engine::Collection& c, const std::vector<std::string>& queries, std::size_t k) {
    Pass p;
    std::vector<double> ms;
    ms.reserve(queries.size());
    const Stopwatch all;
    for (const auto& q : queries) {
        engine::SearchRequest r;
        r.clauses.push_back(engine::QueryClause::of_text("body", q));
        r.k = k;
        r.return_fields = std::vector<std::string>{};  // ids and scores only: time the walk
        const Stopwatch one;
        QUIVER_ASSIGN_OR_RETURN(auto hits, c.search(r));
        ms.push_back(one.seconds() * 1e3);
        p.hits += hits.size();
    }
    p.seconds = all.seconds();
    std::sort(ms.begin(), ms.end());
    p.p50_ms = ms[ms.size() / 2];
    p.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    return p;
}

int fail(const std::string& what) {
    std::fprintf(stderr, "quiver bench deletes: error: %s\n", what.c_str());
    return 1;
}

int run_deletes(int argc, char** argv) {
    CLI::App app{"BM25 top-k latency before and after deleting a fraction of a synthetic collection", argv[0]};
    std::string dataset;
    std::size_t docs = 1000000;
    double fraction = 0.25;
    std::size_t k = 10;
    std::size_t repeat = 2;
    std::uint64_t seed = 1;
    std::string work;
    app.add_option("--dataset", dataset, "Corpus whose words and queries are used (BEIR layout), e.g. scifact")
        ->required();
    app.add_option("--docs", docs, "Synthetic documents")->capture_default_str();
    app.add_option("--delete-fraction", fraction, "Fraction deleted at random")->capture_default_str();
    app.add_option("--k", k, "Hits per query")->capture_default_str();
    app.add_option("--repeat", repeat, "Timed passes (the best is reported), after one warm-up")->capture_default_str();
    app.add_option("--seed", seed, "Generator seed")->capture_default_str();
    app.add_option("--work-dir", work, "Where the collection is written (default: a temporary directory)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (docs == 0 || k == 0 || repeat == 0 || !(fraction >= 0.0 && fraction < 1.0)) {
        std::fprintf(stderr, "quiver bench deletes: --docs, --k, --repeat >= 1 and --delete-fraction in [0, 1)\n");
        return 2;
    }
    ProgressBar::set_globally_enabled(false);
    auto ds = eval::load_dataset(dataset, {"test", true});
    if (!ds) return fail(ds.error().to_string());
    // The corpus's token stream: sampling a position draws words by their corpus frequency.
    std::vector<std::string> vocab;
    std::vector<std::uint32_t> stream;
    {
        std::unordered_map<std::string, std::uint32_t> ids;
        for (const auto& d : ds->documents) {
            std::string w;
            for (char ch : d.title + " " + d.text + " ") {
                if (std::isalpha(static_cast<unsigned char>(ch))) {
                    w += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                } else if (!w.empty()) {
                    auto [it, added] = ids.try_emplace(w, static_cast<std::uint32_t>(vocab.size()));
                    if (added) vocab.push_back(w);
                    stream.push_back(it->second);
                    w.clear();
                }
            }
        }
    }
    std::vector<std::string> queries;
    for (const auto& q : ds->queries) queries.push_back(q.text);
    if (stream.empty() || queries.empty()) return fail("the corpus has no words or no queries");
    std::string dir = work;
    if (dir.empty()) {
        char tmpl[] = "/tmp/quiver-bench-deletes-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) return fail("cannot create a temporary directory");
        dir = tmpl;
    } else {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);  // the collection goes in DIR/c
        if (ec) return fail("cannot create '" + dir + "': " + ec.message());
    }
    engine::Schema schema;
    engine::FieldSpec body;
    body.name = "body";
    schema.fields = {body};
    engine::CollectionOptions options;
    options.background_merge = false;
    options.wal_sync = storage::WalSync::kNone;
    options.max_segments = 1000;
    auto c = engine::Collection::create(dir + "/c", schema, options);
    if (!c) return fail(c.error().to_string());

    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::size_t> pos(0, stream.size() - 1);
    const Stopwatch ingest;
    constexpr std::size_t kBatch = 50000;
    for (std::size_t start = 0; start < docs; start += kBatch) {
        std::vector<engine::Document> batch;
        for (std::size_t i = start; i < std::min(docs, start + kBatch); ++i) {
            engine::Document d;
            d.id = "d" + std::to_string(i);
            std::string text;
            const std::size_t len = 8 + rng() % 17;  // 8 to 24 words
            for (std::size_t w = 0; w < len; ++w) text += vocab[stream[pos(rng)]] + " ";
            d.fields["body"] = std::move(text);
            batch.push_back(std::move(d));
        }
        if (auto st = (*c)->upsert(std::move(batch)); !st) return fail(st.error().to_string());
    }
    if (auto st = (*c)->optimize(); !st) return fail(st.error().to_string());
    const double ingest_s = ingest.seconds();
    std::printf("collection: %zu synthetic documents (8-24 words from %s), one segment after optimize, %.1f s\n",
                docs, dataset.c_str(), ingest_s);
    std::printf("queries: %zu real queries, top-%zu, one thread, best of %zu passes after a warm-up\n",
                queries.size(), k, repeat);

    auto best_pass = [&](const char* label) -> Result<Pass> {
        Pass best;
        best.seconds = 1e300;
        QUIVER_TRY(time_pass(**c, queries, k));  // warm-up
        for (std::size_t r = 0; r < repeat; ++r) {
            QUIVER_ASSIGN_OR_RETURN(Pass p, time_pass(**c, queries, k));
            if (p.seconds < best.seconds) best = p;
        }
        std::printf("%-22s %8.3f s/pass  %8.1f QPS  mean %.3f ms  p50 %.3f ms  p99 %.3f ms  (%zu hits)\n", label,
                    best.seconds, static_cast<double>(queries.size()) / best.seconds,
                    best.seconds * 1e3 / static_cast<double>(queries.size()), best.p50_ms, best.p99_ms, best.hits);
        return best;
    };
    auto before = best_pass("before deletes");
    if (!before) return fail(before.error().to_string());

    std::vector<std::string> ids;
    for (std::size_t i = 0; i < docs; ++i) {
        if (std::uniform_real_distribution<double>(0.0, 1.0)(rng) < fraction) ids.push_back("d" + std::to_string(i));
    }
    const Stopwatch del;
    for (std::size_t start = 0; start < ids.size(); start += 10000) {
        std::vector<std::string> some(ids.begin() + static_cast<long>(start),
                                      ids.begin() + static_cast<long>(std::min(ids.size(), start + 10000)));
        auto removed = (*c)->remove(some);
        if (!removed) return fail(removed.error().to_string());
    }
    const double del_s = del.seconds();
    // The first search after the deletes computes the deleted documents' BM25 statistics (once per
    // delete version, re-analysing them); timed on its own.
    const Stopwatch first;
    {
        engine::SearchRequest r;
        r.clauses.push_back(engine::QueryClause::of_text("body", queries[0]));
        r.k = k;
        if (auto h = (*c)->search(r); !h) return fail(h.error().to_string());
    }
    const double first_s = first.seconds();
    std::printf("deleted %zu documents (%.1f%%) in batches of 10,000: %.2f s; first search after (live statistics of "
                "the deleted documents): %.2f s\n",
                ids.size(), 100.0 * static_cast<double>(ids.size()) / static_cast<double>(docs), del_s, first_s);
    auto after = best_pass("after deletes");
    if (!after) return fail(after.error().to_string());
    std::printf("latency ratio after / before: %.3f (acceptance: <= 1.3)\n", after->seconds / before->seconds);
    (*c)->close();
    if (work.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    return 0;
}

const BenchRegistrar kReg{"deletes", "BM25 top-k latency before and after deleting 25% of 1M documents", &run_deletes};

}  // namespace
}  // namespace quiver::bench::deletes
