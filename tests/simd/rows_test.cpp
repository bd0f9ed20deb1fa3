#include "quiver/simd/rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace quiver::simd {
namespace {

// One query against n rows at every level the CPU has: each value within float rounding of a double
// reference (1e-5 of the sum of absolute terms, plus 1e-6), for dimensions below, at and past the
// vector widths (tails), row counts below and past the four-row unroll, a row stride larger than the
// dimension and unaligned rows.
TEST(RowDistances, EveryLevelMatchesDoubleReference) {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd;
    int levels = 0;
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        if (row_distances_fn(Metric::kL2, level) == nullptr) {
            std::printf("[ note ] SIMD level %s not supported by this CPU; skipped\n",
                        std::string(to_string(level)).c_str());
            continue;
        }
        ++levels;
        for (std::size_t dim : {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 384}) {
            for (std::size_t n : {0, 1, 3, 4, 5, 8, 13}) {
                const std::size_t stride = dim + 3;
                std::vector<float> q(dim + 1), base(n * stride + 1);
                for (auto& v : q) v = nd(rng);
                for (auto& v : base) v = nd(rng);
                const float* pq = q.data() + 1;
                const float* pb = base.data() + 1;
                for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
                    std::vector<float> out(n + 1, -7.0f);
                    row_distances_fn(metric, level)(pq, pb, stride, n, dim, out.data());
                    for (std::size_t i = 0; i < n; ++i) {
                        const float* x = pb + i * stride;
                        double s = 0, abs = 0;
                        for (std::size_t j = 0; j < dim; ++j) {
                            const double t = metric == Metric::kL2 ? (double(pq[j]) - x[j]) * (double(pq[j]) - x[j])
                                                                   : double(pq[j]) * x[j];
                            s += t;
                            abs += std::fabs(t);
                        }
                        const double want = metric == Metric::kL2 ? s : 1.0 - s;
                        EXPECT_NEAR(out[i], want, 1e-5 * abs + 1e-6)
                            << to_string(level) << " " << to_string(metric) << " dim " << dim << " row " << i << "/" << n;
                    }
                    EXPECT_EQ(out[n], -7.0f) << "wrote past n";
                }
            }
        }
    }
    EXPECT_GE(levels, 1);
    // The active level's function is one of them.
    EXPECT_NE(row_distances_fn(Metric::kInnerProduct), nullptr);
}

}  // namespace
}  // namespace quiver::simd
