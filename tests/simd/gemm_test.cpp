// simd/gemm.h's score filter (the exact search's SIMD top-k pre-selection) at every level this CPU
// and build offer, against the formula in double precision. (The GEMM itself is tested at every level
// by tests/encode/kernels_test.cpp, where the transformer uses it.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quiver/simd/gemm.h"

namespace quiver::simd {
namespace {

TEST(GemmSelect, KeepsExactlyTheColumnsUnderTheBoundAtEveryLevel) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int level = 0; level <= 2; ++level) {
        const GemmKernels* k = gemm_kernels_for(static_cast<SimdLevel>(level));
        if (k == nullptr) {
            std::printf("level %d: not available on this CPU/build\n", level);
            continue;
        }
        for (const std::size_t n : {0, 1, 7, 16, 17, 31, 512, 1000}) {
            std::vector<float> s(n), add(n);
            for (auto& x : s) x = nd(rng);
            for (auto& x : add) x = std::abs(nd(rng));
            for (const bool l2 : {false, true}) {
                const float scale = l2 ? -2.0f : -1.0f;
                const float offset = l2 ? 1.5f : 1.0f;
                for (const float bound : {-1e30f, 0.2f, 1.0f, 2.5f, INFINITY}) {
                    std::vector<std::uint32_t> out(n + 1, 0xFFFFFFFFu);
                    const std::size_t m = k->select(s.data(), l2 ? add.data() : nullptr, scale, offset, n, bound,
                                                    out.data());
                    ASSERT_LE(m, n);
                    ASSERT_EQ(out[m], 0xFFFFFFFFu) << k->name << ": wrote past the count";
                    std::size_t at = 0;
                    for (std::size_t j = 0; j < n; ++j) {
                        const double d = double(offset) + (l2 ? double(add[j]) : 0.0) + double(scale) * s[j];
                        const bool want = d <= bound;
                        const bool got = at < m && out[at] == j;
                        if (got) ++at;
                        // A column within float rounding of the bound may go either way (fused multiply-add).
                        if (std::abs(d - double(bound)) > 1e-5) {
                            ASSERT_EQ(got, want) << k->name << " n " << n << " j " << j << " bound " << bound;
                        }
                    }
                    ASSERT_EQ(at, m) << k->name << ": indices not ascending or out of range";
                }
            }
        }
    }
}

}  // namespace
}  // namespace quiver::simd
