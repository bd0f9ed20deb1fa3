// The transformer kernels at every SIMD level this CPU and build offer (scalar, AVX2, AVX-512;
// int8: scalar, AVX2, AVX-512 VNNI), against double-precision references: the float32 GEMM tile
// for every tile height and panel width with bias / accumulate / alpha, GELU, LayerNorm, softmax,
// and the int8 tile against the exact integer formula. Levels missing here are reported, not failed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "encode/bert_kernels.h"
#include "encode/gemm.h"
#include "encode/linear.h"

namespace quiver::encode::detail {
namespace {

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

TEST(EncodeKernels, GemmTileEveryLevelShapeAndEpilogue) {
    std::mt19937 rng(7);
    for (int level = 0; level <= 2; ++level) {
        const simd::GemmKernels* k = simd::gemm_kernels_for(static_cast<simd::SimdLevel>(level));
        if (k == nullptr) {
            std::printf("level %d: not available on this CPU/build\n", level);
            continue;
        }
        // K 300 spans two K blocks (the second adds onto C); m = 2 mr + 3 and 100 rows give tiles of
        // every height the equal split makes, and two row blocks.
        for (const std::size_t K : {1, 5, 32, 67, 300}) {
            for (const std::size_t n : {1, 17, 32, 45, 96}) {
              for (const std::size_t m : {2 * k->mr + 3, std::size_t{100}}) {
                const auto a = random_floats(m * (K + 3), rng);  // row stride K + 3
                const auto w = random_floats(n * K, rng);
                const auto bias = random_floats(n, rng);
                PackedB b;
                pack_rows(w.data(), n, K, K, b);
                for (const bool acc : {false, true}) {
                    const auto c0 = random_floats(m * (n + 1), rng);  // row stride n + 1
                    std::vector<float> c = c0;
                    GemmArgs g;
                    g.a = a.data();
                    g.lda = K + 3;
                    g.m = m;
                    g.c = c.data();
                    g.ldc = n + 1;
                    g.bias = acc ? bias.data() : nullptr;
                    g.accumulate = acc;
                    g.alpha = acc ? 0.5f : 1.0f;
                    simd::gemm(g, b, 0, 0, k);  // the driver (K blocks, equal tiles) over `level`'s tiles
                    for (std::size_t r = 0; r < m; ++r) {
                        for (std::size_t j = 0; j < n; ++j) {
                            double want = 0.0;
                            for (std::size_t i = 0; i < K; ++i) want += double(a[r * (K + 3) + i]) * w[j * K + i];
                            want *= g.alpha;
                            if (acc) want += bias[j] + double(c0[r * (n + 1) + j]);
                            ASSERT_NEAR(c[r * (n + 1) + j], want, 1e-4 * (1.0 + std::abs(want)))
                                << k->name << " K " << K << " n " << n << " m " << m << " r " << r << " j " << j;
                        }
                        // The padding column beyond n is never written.
                        ASSERT_EQ(c[r * (n + 1) + n], c0[r * (n + 1) + n]) << k->name;
                    }
                }
              }
            }
        }
    }
}

TEST(EncodeKernels, ElementwiseKernelsMatchScalarAtEveryLevel) {
    std::mt19937 rng(11);
    const BertKernels* ref = bert_kernels_for(0);
    ASSERT_NE(ref, nullptr);
    for (int level = 0; level <= 2; ++level) {
        const BertKernels* k = bert_kernels_for(level);
        if (k == nullptr) continue;
        for (const std::size_t cols : {1, 7, 16, 33, 384}) {
            const std::size_t rows = 5;
            auto x = random_floats(rows * cols, rng, 3.0f);
            x[0] = 12.0f;  // GELU saturates, softmax's max shift matters
            const auto gamma = random_floats(cols, rng);
            const auto beta = random_floats(cols, rng);
            auto a = x, b = x;
            ref->bias_gelu(a.data(), beta.data(), rows, cols);
            k->bias_gelu(b.data(), beta.data(), rows, cols);
            for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-6 * (1 + std::abs(a[i]))) << k->name;
            // The GEMM-epilogue GELU on a block of a wider matrix (row stride cols + 3) leaves the
            // padding alone and equals bias_gelu without a bias.
            std::vector<float> wide(rows * (cols + 3), -7.0f);
            for (std::size_t r = 0; r < rows; ++r) {
                std::copy(x.begin() + static_cast<std::ptrdiff_t>(r * cols),
                          x.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), wide.begin() + static_cast<std::ptrdiff_t>(r * (cols + 3)));
            }
            a = x;
            ref->bias_gelu(a.data(), nullptr, rows, cols);
            k->gelu(wide.data(), cols + 3, rows, cols);
            for (std::size_t r = 0; r < rows; ++r) {
                for (std::size_t c = 0; c < cols + 3; ++c) {
                    const float got = wide[r * (cols + 3) + c];
                    if (c >= cols) {
                        ASSERT_EQ(got, -7.0f) << k->name;
                    } else {
                        ASSERT_NEAR(got, a[r * cols + c], 2e-6 * (1 + std::abs(a[r * cols + c]))) << k->name;
                    }
                }
            }
            a = x;
            b = x;
            ref->layernorm(a.data(), gamma.data(), beta.data(), rows, cols, 1e-12f);
            k->layernorm(b.data(), gamma.data(), beta.data(), rows, cols, 1e-12f);
            for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 * (1 + std::abs(a[i]))) << k->name;
            a = x;
            b = x;
            ref->softmax(a.data(), rows, cols, cols);
            k->softmax(b.data(), rows, cols, cols);
            for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6) << k->name << " cols " << cols;
            // Without the normalising pass: the rows hold exp(x - max) and inv_sum their 1 / sum, so
            // row * inv_sum is the softmax.
            b = x;
            std::vector<float> inv(rows, -1.0f);
            k->softmax_unscaled(b.data(), rows, cols, cols, inv.data());
            for (std::size_t r = 0; r < rows; ++r) {
                float mx = x[r * cols];
                for (std::size_t c = 0; c < cols; ++c) mx = std::max(mx, x[r * cols + c]);
                double sum = 0;
                for (std::size_t c = 0; c < cols; ++c) {
                    const double e = std::exp(double(x[r * cols + c]) - mx);
                    sum += e;
                    ASSERT_NEAR(b[r * cols + c], e, 4e-6 * e) << k->name << " cols " << cols;  // x - max rounds in float
                }
                ASSERT_NEAR(inv[r], 1.0 / sum, 4e-6 / sum) << k->name;
                for (std::size_t c = 0; c < cols; ++c) ASSERT_NEAR(b[r * cols + c] * inv[r], a[r * cols + c], 1e-6);
            }
        }
    }
}

// The GELU epilogue of the driver (the transformer's intermediate layer) equals the product followed
// by GELU in double precision, at every level, over K blocks and uneven tiles.
TEST(EncodeKernels, GemmGeluEpilogueEveryLevel) {
    std::mt19937 rng(13);
    for (int level = 0; level <= 2; ++level) {
        const simd::GemmKernels* k = simd::gemm_kernels_for(static_cast<simd::SimdLevel>(level));
        const BertKernels* bk = bert_kernels_for(level);
        if (k == nullptr || bk == nullptr) continue;
        const std::size_t K = 300, n = 45, m = 2 * k->mr + 3;
        const auto a = random_floats(m * K, rng, 0.2f);
        const auto w = random_floats(n * K, rng, 0.2f);
        const auto bias = random_floats(n, rng);
        PackedB b;
        pack_rows(w.data(), n, K, K, b);
        std::vector<float> c(m * (n + 2), 5.0f);  // row stride n + 2
        GemmArgs g;
        g.a = a.data();
        g.lda = K;
        g.m = m;
        g.c = c.data();
        g.ldc = n + 2;
        g.bias = bias.data();
        g.epilogue = bk->gelu;
        simd::gemm(g, b, 0, 0, k);
        for (std::size_t r = 0; r < m; ++r) {
            for (std::size_t j = 0; j < n; ++j) {
                double v = bias[j];
                for (std::size_t i = 0; i < K; ++i) v += double(a[r * K + i]) * w[j * K + i];
                const double want = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
                ASSERT_NEAR(c[r * (n + 2) + j], want, 1e-5 * (1.0 + std::abs(want))) << k->name << " r " << r << " j " << j;
            }
            ASSERT_EQ(c[r * (n + 2) + n], 5.0f) << k->name;
            ASSERT_EQ(c[r * (n + 2) + n + 1], 5.0f) << k->name;
        }
    }
}

// The encoder's driver (next K block of B prefetched by each block's first tile) equals gemm() bit for
// bit: same K blocks, so the same sums (its row tiling differs, which does not change them). (gemm()
// itself is checked against double precision above.) Whole and partial panel ranges, one and several
// row blocks.
TEST(EncodeKernels, GemmStreamEqualsGemmBitForBit) {
    std::mt19937 rng(17);
    for (const std::size_t K : {1, 37, 256, 300, 600}) {
        for (const std::size_t n : {5, 45, 96}) {
            for (const std::size_t m : {1, 11, 12, 13, 100, 203}) {
                const auto a = random_floats(m * (K + 1), rng);  // row stride K + 1
                const auto w = random_floats(n * K, rng);
                const auto bias = random_floats(n, rng);
                PackedB b;
                pack_rows(w.data(), n, K, K, b);
                for (const bool acc : {false, true}) {
                    for (const std::size_t p0 : {std::size_t{0}, b.panels() - 1}) {
                        const auto c0 = random_floats(m * (n + 3), rng);
                        std::vector<float> want = c0, got = c0;
                        GemmArgs g;
                        g.a = a.data();
                        g.lda = K + 1;
                        g.m = m;
                        g.ldc = n + 3;
                        g.bias = acc ? bias.data() : nullptr;
                        g.accumulate = acc;
                        g.alpha = acc ? 0.25f : 1.0f;
                        g.epilogue = acc ? bert_kernels().gelu : nullptr;
                        g.c = want.data();
                        simd::gemm(g, b, p0, b.panels());
                        g.c = got.data();
                        simd::gemm_stream(g, b, p0, b.panels());
                        for (std::size_t i = 0; i < want.size(); ++i) {
                            ASSERT_EQ(got[i], want[i]) << "K " << K << " n " << n << " m " << m << " p0 " << p0
                                                       << " at " << i;
                        }
                    }
                }
            }
        }
    }
}

TEST(EncodeKernels, Int8TileIsTheExactIntegerFormulaAtEveryLevel) {
    std::mt19937 rng(3);
    for (int level = 0; level <= 2; ++level) {
        const Int8Kernels* k = int8_kernels_for(level);
        if (k == nullptr) {
            std::printf("int8 level %d: not available on this CPU/build\n", level);
            continue;
        }
        std::uniform_int_distribution<int> act(0, k->act_max), wt(-127, 127);
        for (const std::size_t k4 : {1, 3, 96}) {
            const std::size_t m = k->mr;
            const std::size_t nr = 27;
            std::vector<std::uint8_t> a(m * k4 * 4);
            for (auto& x : a) x = static_cast<std::uint8_t>(act(rng));
            std::vector<std::int8_t> panel(k4 * kPanel * 4);
            for (auto& x : panel) x = static_cast<std::int8_t>(wt(rng));
            std::vector<float> rs(m), cs(kPanel), bias(kPanel), c(m * kPanel, 1.0f);
            std::vector<std::int32_t> rz(m), csum(kPanel);
            for (std::size_t r = 0; r < m; ++r) {
                rs[r] = 0.01f * static_cast<float>(r + 1);
                rz[r] = static_cast<std::int32_t>(r * 7 % (k->act_max + 1));
            }
            for (std::size_t j = 0; j < kPanel; ++j) {
                cs[j] = 0.003f * static_cast<float>(j + 1);
                bias[j] = static_cast<float>(j) * 0.25f;
                std::int32_t s = 0;
                for (std::size_t g = 0; g < k4; ++g) {
                    for (std::size_t t = 0; t < 4; ++t) s += panel[g * kPanel * 4 + j * 4 + t];
                }
                csum[j] = s;
            }
            k->tile(a.data(), k4 * 4, panel.data(), k4, c.data(), kPanel, m, nr, rs.data(), rz.data(), cs.data(),
                    csum.data(), bias.data(), true);
            for (std::size_t r = 0; r < m; ++r) {
                for (std::size_t j = 0; j < kPanel; ++j) {
                    if (j >= nr) {
                        ASSERT_EQ(c[r * kPanel + j], 1.0f) << k->name;  // beyond nr: untouched
                        continue;
                    }
                    std::int64_t acc = 0;
                    for (std::size_t g = 0; g < k4; ++g) {
                        for (std::size_t t = 0; t < 4; ++t) acc += std::int64_t{a[r * k4 * 4 + 4 * g + t]} * panel[g * kPanel * 4 + j * 4 + t];
                    }
                    const double want = double(rs[r]) * cs[j] * double(acc - std::int64_t{rz[r]} * csum[j]) + bias[j] + 1.0;
                    ASSERT_NEAR(c[r * kPanel + j], want, 1e-5 * (1 + std::abs(want))) << k->name << " k4 " << k4;
                }
            }
        }
    }
}

TEST(EncodeKernels, Int8QuantiseEqualsScalarAtEveryLevel) {
    std::mt19937 rng(9);
    for (int level = 0; level <= 2; ++level) {
        const Int8Kernels* k = int8_kernels_for(level);
        if (k == nullptr) continue;
        for (const std::size_t n : {1, 15, 16, 17, 130, 384}) {
            auto x = random_floats(n, rng, 2.0f);
            if (n == 15) std::fill(x.begin(), x.end(), 0.0f);  // all zero: scale 1, zero point 0
            if (n == 17) for (float& v : x) v = std::abs(v);   // no negatives: zero point 0
            const std::size_t kp = (n + 3) / 4 * 4;
            std::vector<std::uint8_t> a(kp, 99), b(kp, 77);
            float sa = 0, sb = 0;
            std::int32_t za = -1, zb = -2;
            quantize_row_scalar(x.data(), n, kp, k->act_max, a.data(), &sa, &za);
            k->quantize(x.data(), n, kp, k->act_max, b.data(), &sb, &zb);
            EXPECT_EQ(a, b) << k->name << " n " << n;
            EXPECT_EQ(sa, sb);
            EXPECT_EQ(za, zb);
            for (std::size_t i = 0; i < n; ++i) {
                // Dequantised values are within half a step of the input.
                ASSERT_NEAR((static_cast<float>(b[i]) - static_cast<float>(zb)) * sb, x[i], 0.5f * sb + 1e-6f) << k->name;
            }
        }
    }
}

TEST(EncodeKernels, Int8LinearApproximatesFloat) {
    std::mt19937 rng(5);
    const std::size_t n = 70, K = 130, m = 9;
    const auto w = random_floats(n * K, rng, 0.1f);
    const auto x = random_floats(m * K, rng);
    Linear fp(w.data(), n, K, false), q8(w.data(), n, K, true);
    EXPECT_FALSE(fp.int8());
    EXPECT_TRUE(q8.int8());
    std::vector<float> a(m * n), b(m * n);
    LinearScratch s;
    fp.apply(nullptr, x.data(), K, m, a.data(), n, nullptr, false, s);
    q8.apply(nullptr, x.data(), K, m, b.data(), n, nullptr, false, s);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * double(a[i] - b[i]);
        den += double(a[i]) * a[i];
    }
    std::printf("int8 linear (%s): relative error %.4f\n", int8_kernels().name, std::sqrt(num / den));
    EXPECT_LT(std::sqrt(num / den), 0.03);
    EXPECT_GT(num, 0.0);
}

}  // namespace
}  // namespace quiver::encode::detail
