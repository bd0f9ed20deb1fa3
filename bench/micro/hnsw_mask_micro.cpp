// Micro-benchmark of HNSW searches under a mask that allows most nodes (not built by default): the
// CheckedBeam walk (LabelFilter::mostly_allows) against the two-heap walk, on a graph shaped as one
// of the load test's segments (32-d cosine, M 16, ef_construction 64; uniform random vectors, as the
// load script's) with a random fraction of its nodes masked, as a segment's deletes are. Whole passes
// over the queries, one thread, CPU time, the two walks interleaved; checks their results are equal.
// Usage: hnsw_mask_micro [N=100000] [MASKED=0.1,0.3,0.5] [EF=64] [REPEAT=5]. Build (B = a build dir):
//   g++ -O3 -DNDEBUG -std=c++20 -DFMT_SHARED -Iinclude -Isrc bench/micro/hnsw_mask_micro.cpp -o hnsw_mask_micro \
//     $B/src/index/libquiver_index.a $B/src/storage/libquiver_storage.a $B/src/simd/libquiver_simd.a \
//     $B/src/core/libquiver_core.a -lfmt -lroaring -lz -lzstd -lpthread
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "quiver/index/hnsw_index.h"

using namespace quiver;
using namespace quiver::index;

namespace {

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Mask final : LabelFilter {
    std::vector<std::uint8_t> dead;
    bool mostly = false;
    bool allows(Label l) const noexcept override { return dead[to_int(l)] == 0; }
    bool mostly_allows() const noexcept override { return mostly; }
};

Matrix<float> uniform(std::size_t n, std::size_t d, std::uint64_t seed) {
    Matrix<float> m(n, d);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    for (float& x : m.values) x = u(rng);
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
    std::vector<double> fractions;
    {
        std::stringstream ss(argc > 2 ? argv[2] : "0.1,0.3,0.5");
        for (std::string part; std::getline(ss, part, ',');) fractions.push_back(std::atof(part.c_str()));
    }
    const std::size_t ef = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 64;
    const int repeat = argc > 4 ? std::atoi(argv[4]) : 5;
    const std::size_t d = 32, nq = 2000;
    auto base = uniform(n, d, 1);
    auto queries = uniform(nq, d, 2);
    auto idx = HnswIndex::create(d, Metric::kCosine, {.M = 16, .ef_construction = 64, .threads = 2}).value();
    if (!idx->add(base, sequential_labels(n)).ok()) return 1;
    std::mt19937 rng(3);
    std::printf("n %zu, %zu queries, k 10, ef %zu, one thread, CPU seconds per pass\n", n, nq, ef);
    {
        std::vector<double> t;
        for (int r = 0; r < repeat; ++r) {
            const double t0 = cpu_seconds();
            (void)idx->search(queries.view(), {.k = 10, .ef = ef, .threads = 1}).value();
            t.push_back(cpu_seconds() - t0);
        }
        std::sort(t.begin(), t.end());
        std::printf("no mask: %.4f s (the unchecked sorted beam)\n", t[t.size() / 2]);
    }
    std::printf("%8s %12s %12s %8s %s\n", "masked", "two heaps", "checked", "speedup", "results");
    for (double f : fractions) {
        Mask mask;
        mask.dead.resize(n);
        for (auto& x : mask.dead) x = std::uniform_real_distribution<double>(0, 1)(rng) < f ? 1 : 0;
        std::vector<double> heaps, beam;
        bool equal = true;
        for (int r = 0; r < repeat; ++r) {
            for (bool mostly : {false, true}) {
                mask.mostly = mostly;
                const double t0 = cpu_seconds();
                auto res = idx->search(queries.view(), {.k = 10, .ef = ef, .threads = 1, .filter = &mask}).value();
                (mostly ? beam : heaps).push_back(cpu_seconds() - t0);
                static SearchResults first;
                if (r == 0 && !mostly) first = res;
                if (r == 0 && mostly) equal = res.labels == first.labels && res.distances == first.distances;
            }
        }
        std::sort(heaps.begin(), heaps.end());
        std::sort(beam.begin(), beam.end());
        const double h = heaps[heaps.size() / 2], b = beam[beam.size() / 2];
        std::printf("%8.2f %12.4f %12.4f %7.2fx %s\n", f, h, b, h / b, equal ? "equal" : "DIFFER");
    }
    return 0;
}
