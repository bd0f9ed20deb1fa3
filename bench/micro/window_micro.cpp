// Micro-benchmark of the BM25 top-k walks on the load test's documents (not built by default).
// Usage: window_micro DOCS.tsv [REPEAT]   (lines: id \t title \t text). Env: NOCHECK=1 skips the
// comparison with the exhaustive reference, BOUNDS=1 prints list bounds against the final k-th score,
// LENGTHS=1 times the pass over every posting that Segment::text_lengths makes. Build (B = a build dir):
//   g++ -O3 -DNDEBUG -std=c++20 -DFMT_SHARED -Iinclude -Isrc bench/micro/window_micro.cpp -o window_micro \
//     $B/src/sparse/libquiver_sparse.a $B/src/text/libquiver_text.a $B/src/storage/libquiver_storage.a \
//     $B/src/simd/libquiver_simd.a $B/src/core/libquiver_core.a -lstemmer -lfmt -lroaring -lz -lzstd -lpthread
// Documents: scripts/loadtest/gen_docs.py's JSONL as TSV (id, title, text).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
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
    const int repeat = argc > 2 ? std::atoi(argv[2]) : 3;
    auto built = bench::micro::build_tsv_index(argv[1]);
    if (!built) {
        std::fprintf(stderr, "%s\n", built.error().message().c_str());
        return 1;
    }
    const Bm25Index& index = built.value();
    const auto& words = bench::micro::kLoadWords;
    auto analyzer = text::Analyzer::create(text::AnalyzerConfig{}).value();
    std::vector<Bm25QueryStats> queries;
    for (const char* a : words) {
        for (const char* b : words) {
            std::vector<std::string> terms;
            analyzer.analyze(std::string(a) + " " + b, terms);
            auto s = index.query_stats(terms);
            s.total_tokens += 1;  // as a collection with other segments: rescaled bounds
            queries.push_back(std::move(s));
        }
    }
    if (std::getenv("LENGTHS")) {  // the cost of Segment::text_lengths' pass over every posting
        const double t = cpu_seconds();
        std::vector<std::uint32_t> lengths(index.num_docs(), 0);
        for (TermId term = 0; term < index.num_terms(); ++term) {
            PostingCursor c = index.postings().cursor(term);
            c.for_each_run_through(kTerminated - 1, [&](const DocIndex* d, const float* tf, std::uint32_t n, float) {
                for (std::uint32_t i = 0; i < n; ++i) lengths[d[i]] += static_cast<std::uint32_t>(tf[i]);
            });
        }
        std::uint64_t total = 0;
        for (const auto x : lengths) total += x;
        std::printf("lengths pass: %.1f ms, %llu tokens (index: %llu)\n", 1e3 * (cpu_seconds() - t),
                    static_cast<unsigned long long>(total), static_cast<unsigned long long>(index.total_tokens()));
    }
    if (std::getenv("BOUNDS")) {
        int conj = 0, n = 0;
        for (const auto& q : queries) {
            auto top = index.search_with_stats(q, 11, nullptr, nullptr, false);
            float ub[4] = {0, 0, 0, 0};
            std::size_t nt = 0;
            for (std::size_t i = 0; i < q.terms.size() && nt < 4; ++i) {
                const TermId id = index.find_term(q.terms[i]);
                if (id == kTerminated) continue;
                const float w = q.boosts[i] * bm25_idf(q.doc_freq[i], q.doc_count);
                ub[nt++] = w * index.postings().term_info(id).max_score;
            }
            const float th = top.size() >= 11 ? top[10].score : 0;
            ++n;
            if (nt == 2 && th > ub[0] && th > ub[1]) ++conj;
            if (n % 37 == 0) std::printf("%s %s: ub %.3f %.3f th %.3f df %llu %llu\n", q.terms[0].c_str(), q.terms.size() > 1 ? q.terms[1].c_str() : "-", ub[0], ub[1], th, (unsigned long long)q.doc_freq[0], (unsigned long long)(q.doc_freq.size() > 1 ? q.doc_freq[1] : 0));
        }
        std::printf("conjunctive at the end: %d of %d\n", conj, n);
    }
    for (const std::size_t k : {11, 101}) {
        // correctness against the reference
        std::size_t bad = 0;
        for (const auto& q : queries) {
            if (std::getenv("NOCHECK")) break;
            auto x = index.search_with_stats(q, k, nullptr, nullptr, false);
            auto y = index.search_with_stats(q, k, nullptr, nullptr, true);
            if (x.size() != y.size()) {
                ++bad;
                continue;
            }
            for (std::size_t i = 0; i < x.size(); ++i) {
                if (x[i].doc != y[i].doc || x[i].score != y[i].score) {
                    ++bad;
                    break;
                }
            }
        }
        double best = 1e9;
        TopKStats st;
        for (int r = 0; r < repeat; ++r) {
            st = {};
            const double t = cpu_seconds();
            for (const auto& q : queries) index.search_with_stats(q, k, nullptr, &st, false);
            best = std::min(best, cpu_seconds() - t);
        }
        std::printf("k %zu: %.1f us/query, scored %.0f/query, skipped %.1f/query, mismatches %zu\n", k,
                    1e6 * best / queries.size(), double(st.docs_scored) / queries.size(),
                    double(st.blocks_skipped) / queries.size(), bad);
    }
    return 0;
}
