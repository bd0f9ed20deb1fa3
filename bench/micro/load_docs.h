// Shared by the BM25 micro-benchmarks (window_micro.cpp, filter_walk_micro.cpp; not built by
// default): this thread's CPU time, the load test's documents read from TSV into a BM25 index, and
// the load test's query words (scripts/loadtest/mixed_v1.lua).
#pragma once

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/sparse/bm25_index.h"

namespace quiver::bench::micro {

/// This thread's CPU time: the shared machine's other load disturbs it far less than wall time.
inline double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

inline double wall_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Lines "id \t title \t text" of `path` (scripts/loadtest/gen_docs.py's JSONL as TSV); `lines` owns
/// the text the returned documents view.
inline std::vector<sparse::Bm25Document> read_tsv_docs(const char* path, std::vector<std::string>& lines) {
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) lines.push_back(std::move(l));
    std::vector<sparse::Bm25Document> docs;
    for (const auto& l : lines) {
        const auto a = l.find('\t');
        const auto b = l.find('\t', a + 1);
        docs.push_back({std::string_view(l).substr(0, a), std::string_view(l).substr(a + 1, b - a - 1),
                        std::string_view(l).substr(b + 1)});
    }
    return docs;
}

/// The BM25 index of `path`'s documents (built on 2 threads); prints the build's time and size.
inline Result<sparse::Bm25Index> build_tsv_index(const char* path) {
    std::vector<std::string> lines;
    const std::vector<sparse::Bm25Document> docs = read_tsv_docs(path, lines);
    sparse::Bm25Index::BuildOptions opts;
    opts.threads = 2;
    const double t0 = wall_seconds();
    auto built = sparse::Bm25Index::build(docs, opts);
    if (!built) return built.error();
    std::printf("built %zu docs in %.1f s, %llu postings\n", docs.size(), wall_seconds() - t0,
                static_cast<unsigned long long>(built->postings().num_postings()));
    return built;
}

/// The load test's query words.
inline constexpr const char* kLoadWords[20] = {
    "vitamin",   "cancer", "cell",  "protein", "gene",   "risk",  "patients", "mice",     "expression", "therapy",
    "infection", "brain",  "blood", "dna",     "immune", "tumor", "clinical", "mutation", "insulin",    "virus"};

}  // namespace quiver::bench::micro
