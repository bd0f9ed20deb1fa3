// Micro-benchmark of text analysis at the write (not built by default): every document of the load
// test's corpus (scripts/loadtest/gen_docs.py's JSONL as TSV "id \t title \t text") analysed as
// Memtable::prepare analyses a `contents` field (title then text, the default Lucene-English analyzer)
// and counted into sorted distinct terms. Prints this thread's CPU time per document and per token,
// and a checksum of every term and count, which must not change when the analyzer's code does.
// Mode "sort" (default) analyses with Analyzer::analyze and sorts the terms (the write path before
// session 22); "counts" with Analyzer::analyze_counts (the write path since).
// Usage: analyze_micro DOCS.tsv [PASSES=3] [sort|counts]
// Build (B = a build dir):
//   g++ -O2 -std=c++20 -Iinclude -Isrc bench/micro/analyze_micro.cpp -o analyze_micro \
//     $B/src/text/libquiver_text.a $B/src/core/libquiver_core.a -lstemmer -lfmt
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../bench/micro/load_docs.h"
#include "quiver/text/analyzer.h"

int main(int argc, char** argv) {
    using namespace quiver;
    if (argc < 2) {
        std::fprintf(stderr, "usage: analyze_micro DOCS.tsv [PASSES=3] [sort|counts]\n");
        return 2;
    }
    const int passes = argc > 2 ? std::atoi(argv[2]) : 3;
    const bool counts = argc > 3 && std::string_view(argv[3]) == "counts";
    std::vector<std::string> lines;
    const auto docs = bench::micro::read_tsv_docs(argv[1], lines);
    auto analyzer = text::Analyzer::create(text::AnalyzerConfig{});
    if (!analyzer) return 1;
    std::vector<std::string> tokens;
    std::vector<std::pair<std::string, std::uint32_t>> terms;
    for (int pass = 0; pass < passes; ++pass) {
        const double t0 = bench::micro::cpu_seconds();
        std::uint64_t hash = 1469598103934665603ull;
        std::uint64_t total = 0;
        double analysing = 0;
        for (const auto& d : docs) {
            const double a0 = bench::micro::cpu_seconds();
            if (counts) {
                const std::string_view texts[] = {d.title, d.text};
                total += analyzer->analyze_counts(texts, terms);
            } else {
                tokens.clear();
                analyzer->analyze(d.title, tokens);
                analyzer->analyze(d.text, tokens);
                total += tokens.size();
                std::sort(tokens.begin(), tokens.end());
                terms.clear();
                for (std::size_t j = 0; j < tokens.size();) {
                    std::size_t e = j;
                    while (e < tokens.size() && tokens[e] == tokens[j]) ++e;
                    terms.emplace_back(std::move(tokens[j]), static_cast<std::uint32_t>(e - j));
                    j = e;
                }
            }
            analysing += bench::micro::cpu_seconds() - a0;
            for (const auto& [term, n] : terms) {
                for (char c : term) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
                hash = (hash ^ n) * 1099511628211ull;
            }
        }
        const double s = bench::micro::cpu_seconds() - t0;
        std::printf("pass %d: %zu docs, %llu tokens, %.3f s cpu (analysis and counting %.3f s), %.2f us/doc, %.1f ns/token "
                    "(analysis and counting %.1f), checksum %016llx\n",
                    pass, docs.size(), static_cast<unsigned long long>(total), s, analysing, 1e6 * s / docs.size(),
                    1e9 * s / total, 1e9 * analysing / total, static_cast<unsigned long long>(hash));
    }
    return 0;
}
