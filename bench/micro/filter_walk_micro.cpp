// Micro-benchmark of the filtered BM25 walks (kMask, kSeek, kBitmap, auto) on the load test's documents
// (not built by default): two-word queries of common words, a random filter of each selectivity and a
// random delete set, as a segment of the load test holds after updates. Checks every walk against the
// exhaustive reference. Usage: [QUERIES=common|rare|long] filter_walk_micro DOCS.tsv [DELETED_FRACTION=0.25] [REPEAT=3]
// (lines: id \t title \t text; scripts/loadtest/gen_docs.py's JSONL as TSV). Build as window_micro.cpp.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "load_docs.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/text/analyzer.h"

using namespace quiver;
using namespace quiver::sparse;
using quiver::bench::micro::cpu_seconds;

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const double dead_fraction = argc > 2 ? std::atof(argv[2]) : 0.25;
    const int repeat = argc > 3 ? std::atoi(argv[3]) : 3;
    auto built = bench::micro::build_tsv_index(argv[1]);
    if (!built) return 1;
    const Bm25Index& index = built.value();
    const auto n = static_cast<std::uint32_t>(index.num_docs());
    const auto& words = bench::micro::kLoadWords;
    auto analyzer = text::Analyzer::create(text::AnalyzerConfig{}).value();
    const char* rare[] = {"methylation", "autophagy", "neurotrophic", "pluripotent", "synaptic",
                          "cocaine", "stromal", "extinction", "metabolic", "embryonic"};
    // QUERIES=common (default): two common words (the load test's); rare: a common and a rarer word;
    // long: five common words (past the window scan's four lists).
    const std::string kind = std::getenv("QUERIES") ? std::getenv("QUERIES") : "common";
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < 20; ++i) {
        for (std::size_t j = 0; j < 20; ++j) {
            if (kind == "rare") {
                if (j < 10) texts.push_back(std::string(words[i]) + " " + rare[j]);
            } else if (kind == "long") {
                if (j < 10) {
                    texts.push_back(std::string(words[i]) + " " + words[j] + " " + words[(i + j + 1) % 20] + " " +
                                    words[(i + 2 * j + 3) % 20] + " " + words[(3 * i + j + 5) % 20]);
                }
            } else {
                texts.push_back(std::string(words[i]) + " " + words[j]);
            }
        }
    }
    std::vector<Bm25QueryStats> queries;
    for (const auto& t : texts) {
        std::vector<std::string> terms;
        analyzer.analyze(t, terms);
        auto s = index.query_stats(terms);
        s.total_tokens += 1;
        queries.push_back(std::move(s));
    }
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Bitmap deleted;
    std::vector<std::uint64_t> dead_words((n + 63) / 64, 0);
    for (std::uint32_t d = 0; d < n; ++d) {
        if (u(rng) < dead_fraction) {
            deleted.add(d);
            dead_words[d / 64] |= std::uint64_t{1} << (d % 64);
        }
    }
    std::printf("%u docs, %.0f%% deleted, %s queries; us per query (CPU, best of %d), k = 11\n", n,
                100 * dead_fraction, kind.c_str(), repeat);
    std::printf("%-11s %9s %9s %9s %9s  %s\n", "selectivity", "mask", "seek", "bitmap", "auto", "auto picks, mismatches");
    for (const double sel : {0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7}) {
        Bitmap filter;
        for (std::uint32_t d = 0; d < n; ++d) {
            if (u(rng) < sel) filter.add(d);
        }
        const AllowedDocs allowed{&deleted, &filter, dead_words};
        double us[4];
        std::size_t bad = 0;
        FilterWalk picked = FilterWalk::kAuto;
        const FilterWalk walks[] = {FilterWalk::kMask, FilterWalk::kSeek, FilterWalk::kBitmap, FilterWalk::kAuto};
        for (int w = 0; w < 4; ++w) {
            FilterWalkParams p;
            p.force = walks[w];
            double best = 1e9;
            for (int r = 0; r < repeat; ++r) {
                TopKStats st;
                const double t = cpu_seconds();
                for (const auto& q : queries) index.search_with_stats(q, 11, &allowed, &st, false, p);
                best = std::min(best, cpu_seconds() - t);
                if (w == 3) picked = st.walk;
            }
            us[w] = 1e6 * best / static_cast<double>(queries.size());
            for (const auto& q : queries) {
                auto x = index.search_with_stats(q, 11, &allowed, nullptr, false, p);
                auto y = index.search_with_stats(q, 11, &allowed, nullptr, true, p);
                bool same = x.size() == y.size();
                for (std::size_t i = 0; same && i < x.size(); ++i) same = x[i].doc == y[i].doc && x[i].score == y[i].score;
                bad += same ? 0 : 1;
            }
        }
        std::printf("%-11.3f %9.1f %9.1f %9.1f %9.1f  %s, %zu\n", sel, us[0], us[1], us[2], us[3], to_string(picked), bad);
    }
    return 0;
}
