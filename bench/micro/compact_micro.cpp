// Micro-benchmark of a compaction (not built by default): copies a collection store (the load test's
// 100k-document store, `quiver ingest` of scripts/loadtest/gen_docs.py's documents), removes a random
// fraction of documents "doc0".."doc99999" (seed 42) with background merges off, and times
// `optimize()`: one merge rewriting the segment, which takes it as its base (graphs dropped from,
// postings renumbered). Prints wall and process CPU time. Interleave builds when comparing: this
// host's CPU time varies by tens of percent between runs.
// Usage: compact_micro STORE_DIR WORK_DIR [FRACTION=0.3]   (STORE_DIR holds the collection `load`)
// Build (B = a build dir):
//   g++ -O2 -std=c++20 -Iinclude -Isrc bench/micro/compact_micro.cpp -o compact_micro \
//     $B/src/engine/libquiver_engine.a $B/src/sparse/libquiver_sparse.a $B/src/pipeline/libquiver_pipeline.a \
//     $B/src/eval/libquiver_eval.a $B/src/encode/libquiver_encode.a $B/src/text/libquiver_text.a -lstemmer \
//     $B/src/multivector/libquiver_multivector.a $B/src/index/libquiver_index.a $B/src/simd/libquiver_simd.a \
//     $B/src/storage/libquiver_storage.a $B/src/core/libquiver_core.a -lfmt -lroaring -lopenblas -lz -lzstd -lpthread
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "quiver/engine/collection.h"

namespace {
double seconds(clockid_t clock) {
    timespec t{};
    clock_gettime(clock, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: compact_micro STORE_DIR WORK_DIR [FRACTION]\n");
        return 2;
    }
    const std::string store = argv[1];
    const std::string work = argv[2];
    const double fraction = argc > 3 ? std::atof(argv[3]) : 0.3;
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    std::filesystem::copy(store, work, std::filesystem::copy_options::recursive, ec);
    if (ec) {
        std::fprintf(stderr, "copy %s: %s\n", store.c_str(), ec.message().c_str());
        return 1;
    }
    quiver::engine::CollectionOptions options;
    options.background_merge = false;
    auto c = quiver::engine::Collection::open(work + "/load", options);
    if (!c) {
        std::fprintf(stderr, "%s\n", c.error().to_string().c_str());
        return 1;
    }
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<std::string> ids;
    for (int i = 0; i < 100000; ++i) {
        if (u(rng) < fraction) ids.push_back("doc" + std::to_string(i));
    }
    if (auto removed = (*c)->remove(ids); !removed) {
        std::fprintf(stderr, "%s\n", removed.error().to_string().c_str());
        return 1;
    }
    const double wall = seconds(CLOCK_MONOTONIC);
    const double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
    if (auto st = (*c)->optimize(); !st) {
        std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
        return 1;
    }
    std::printf("removed %zu: optimize %.3f s wall, %.3f s CPU, %zu segment(s), %zu documents\n", ids.size(),
                seconds(CLOCK_MONOTONIC) - wall, seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu,
                static_cast<std::size_t>((*c)->stats().segments), static_cast<std::size_t>((*c)->stats().documents));
    return 0;
}
