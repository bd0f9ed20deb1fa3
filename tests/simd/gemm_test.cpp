// simd/gemm.h's fused distance filter (the exact search's SIMD top-k pre-selection) at every level this
// CPU and build offer, against the formula in double precision. (The GEMM itself is tested at every level
// by tests/encode/kernels_test.cpp, where the transformer uses it.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quiver/simd/gemm.h"

namespace quiver::simd {
namespace {

// GemmKernels::pack_panel (pack_rows' transpose) at every level: every element lands where the contract
// says, the columns past `cols` are zero, and nothing past k rows of the panel is written.
TEST(GemmPack, PackPanelIsTheTransposeAtEveryLevel) {
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int level = 0; level <= 2; ++level) {
        const GemmKernels* kern = gemm_kernels_for(static_cast<SimdLevel>(level));
        if (kern == nullptr) continue;
        for (const std::size_t k : {1, 5, 15, 16, 17, 32, 33, 100}) {
            for (const std::size_t cols : {1, 7, 15, 16, 17, 31, 32}) {
                const std::size_t ld = k + 5;
                std::vector<float> w(cols * ld);
                for (auto& x : w) x = nd(rng);
                std::vector<float> panel((k + 1) * kGemmPanel, -9.0f);
                kern->pack_panel(w.data(), cols, k, ld, panel.data());
                for (std::size_t i = 0; i < k; ++i) {
                    for (std::size_t j = 0; j < kGemmPanel; ++j) {
                        const float want = j < cols ? w[j * ld + i] : 0.0f;
                        ASSERT_EQ(panel[i * kGemmPanel + j], want)
                            << kern->name << " k " << k << " cols " << cols << " i " << i << " j " << j;
                    }
                }
                for (std::size_t j = 0; j < kGemmPanel; ++j) ASSERT_EQ(panel[k * kGemmPanel + j], -9.0f) << kern->name;
            }
        }
    }
}

// GemmKernels::scan: every (row, column) whose distance offset[j] + add[r] + scale * (a_r . q_j) is at
// most bound[j] is reported, with its distance, and nothing else; rows with nothing kept are untouched.
TEST(GemmScan, KeepsExactlyTheDistancesUnderTheBoundsAtEveryLevel) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int level = 0; level <= 2; ++level) {
        const GemmKernels* kern = gemm_kernels_for(static_cast<SimdLevel>(level));
        if (kern == nullptr) {
            std::printf("level %d: not available on this CPU/build\n", level);
            continue;
        }
        for (const std::size_t k : {1, 7, 100, 300}) {
            for (const std::size_t nq : {1, 9, 16, 17, 32}) {
                const std::size_t lda = k + 3;  // a row stride wider than the rows
                std::vector<float> q(nq * k);
                for (auto& x : q) x = nd(rng);
                PackedB packed;
                pack_rows(q.data(), nq, k, k, packed);
                for (std::size_t mr = 1; mr <= kern->mr; ++mr) {
                    std::vector<float> a(mr * lda), add(mr);
                    for (auto& x : a) x = nd(rng);
                    for (auto& x : add) x = std::abs(nd(rng));
                    for (const bool l2 : {false, true}) {
                        const float scale = l2 ? -2.0f : -1.0f;
                        std::vector<double> want(mr * kGemmPanel);
                        std::vector<float> offset(kGemmPanel, 0.0f);
                        std::vector<float> bound(kGemmPanel, -INFINITY);
                        for (std::size_t j = 0; j < nq; ++j) {
                            offset[j] = l2 ? 1.0f + 0.1f * float(j) : 1.0f;
                            // Bounds from everything to nothing, and about half the rows.
                            bound[j] = j % 4 == 0 ? INFINITY : j % 4 == 1 ? -1e30f : float(offset[j]) + nd(rng);
                        }
                        for (std::size_t r = 0; r < mr; ++r) {
                            for (std::size_t j = 0; j < nq; ++j) {
                                double dot = 0;
                                for (std::size_t i = 0; i < k; ++i) dot += double(a[r * lda + i]) * q[j * k + i];
                                want[r * kGemmPanel + j] = double(offset[j]) + (l2 ? double(add[r]) : 0.0) + scale * dot;
                            }
                        }
                        std::vector<float> d(kern->mr * kGemmPanel, 12345.0f);
                        std::vector<std::uint32_t> hits(kern->mr, 0xDEADu);
                        const std::uint32_t rows = kern->scan(a.data(), lda, packed.panel(0), k, mr, nq,
                                                              l2 ? add.data() : nullptr, offset.data(), scale,
                                                              bound.data(), d.data(), hits.data());
                        ASSERT_EQ(rows >> mr, 0u) << kern->name << ": a row past mr";
                        for (std::size_t r = 0; r < mr; ++r) {
                            const bool row_kept = (rows >> r & 1u) != 0;
                            if (!row_kept) ASSERT_EQ(hits[r], 0xDEADu) << kern->name << ": an unkept row was written";
                            const std::uint32_t cols = row_kept ? hits[r] : 0;
                            if (row_kept) ASSERT_NE(cols, 0u) << kern->name;
                            for (std::size_t j = 0; j < kGemmPanel; ++j) {
                                const bool got = (cols >> j & 1u) != 0;
                                if (j >= nq) {
                                    ASSERT_FALSE(got) << kern->name << ": padding column " << j << " kept";
                                    continue;
                                }
                                const double w = want[r * kGemmPanel + j];
                                // Within float rounding of the bound a column may go either way.
                                const double tol = 1e-4 * (1.0 + std::abs(w));
                                if (std::abs(w - double(bound[j])) > tol) {
                                    ASSERT_EQ(got, w <= double(bound[j]))
                                        << kern->name << " k " << k << " nq " << nq << " mr " << mr << " r " << r
                                        << " j " << j;
                                }
                                if (got) ASSERT_NEAR(d[r * kGemmPanel + j], w, tol) << kern->name;
                            }
                        }
                    }
                }
            }
        }
    }
}

}  // namespace
}  // namespace quiver::simd
