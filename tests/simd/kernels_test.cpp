#include "quiver/simd/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace quiver::simd {
namespace {

// Tolerance policy: float sums of products differ by association order only, so the relative error is
// bounded by ~dim * eps * sum|terms|; we allow 1e-5 relative to the sum of absolute terms, plus 1e-6.
double reference_l2(const float* a, const float* b, std::size_t d) {
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return s;
}
double reference_dot(const float* a, const float* b, std::size_t d, double* abs_sum) {
    double s = 0, as = 0;
    for (std::size_t i = 0; i < d; ++i) {
        s += double(a[i]) * b[i];
        as += std::fabs(double(a[i]) * b[i]);
    }
    *abs_sum = as;
    return s;
}

const std::size_t kDims[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 384, 769, 1536};

TEST(SimdKernels, EveryAvailableLevelMatchesReference) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    int levels_tested = 0;
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        const Kernels* k = kernels_for(level);
        if (k == nullptr) {
            std::printf("[ note ] SIMD level %s not supported by this CPU; skipped\n",
                        std::string(to_string(level)).c_str());
            continue;
        }
        ++levels_tested;
        EXPECT_EQ(k->level, level);
        for (std::size_t d : kDims) {
            // Offset by one float so unaligned loads are exercised.
            std::vector<float> a(d + 1), b(d + 1);
            for (auto& v : a) v = nd(rng);
            for (auto& v : b) v = nd(rng);
            const float* pa = a.data() + 1;
            const float* pb = b.data() + 1;
            double abs_sum = 0;
            const double dot = reference_dot(pa, pb, d, &abs_sum);
            const double l2 = reference_l2(pa, pb, d);
            const double tol_dot = 1e-5 * abs_sum + 1e-6;
            EXPECT_NEAR(k->dot(pa, pb, d), dot, tol_dot) << to_string(level) << " dim " << d;
            EXPECT_NEAR(k->ip_distance(pa, pb, d), 1.0 - dot, tol_dot) << to_string(level) << " dim " << d;
            EXPECT_NEAR(k->l2_squared(pa, pb, d), l2, 1e-5 * l2 + 1e-6) << to_string(level) << " dim " << d;
            double self_abs = 0;
            const double self_dot = reference_dot(pa, pa, d, &self_abs);
            EXPECT_NEAR(k->norm_squared(pa, d), self_dot, 1e-5 * self_abs + 1e-6);
        }
    }
    EXPECT_GE(levels_tested, 1);
}

// maxsim_maxima: every level gives the scalar level's bits (fused multiply-adds in k order), and the
// scalar level is within float rounding of a double reference; padded query lanes read 0; token counts
// below, at and past the 4-row unroll; strides of one to three blocks of 16; unaligned rows.
TEST(SimdKernels, MaxSimMaximaIdenticalAtEveryLevel) {
    std::mt19937 rng(17);
    std::normal_distribution<float> nd;
    const Kernels* ref = kernels_for(SimdLevel::kScalar);
    ASSERT_NE(ref, nullptr);
    int compared = 0;
    for (const std::size_t m : {1u, 5u, 16u, 17u, 32u, 33u, 40u}) {
        for (const std::size_t dim : {1u, 7u, 32u, 100u, 129u}) {
            for (const std::size_t t : {1u, 3u, 4u, 5u, 9u, 23u}) {
                const std::size_t stride = (m + 15) / 16 * 16;
                std::vector<float> q(m * dim), qt(dim * stride, 0.0f), doc(t * dim + 1);
                for (auto& v : q) v = nd(rng);
                for (auto& v : doc) v = nd(rng);
                for (std::size_t i = 0; i < m; ++i) {
                    for (std::size_t k = 0; k < dim; ++k) qt[k * stride + i] = q[i * dim + k];
                }
                const float* d = doc.data() + 1;
                std::vector<float> want(stride), got(stride);
                ref->maxsim_maxima(qt.data(), stride, d, t, dim, want.data());
                for (std::size_t i = 0; i < stride; ++i) {
                    if (i >= m) {
                        EXPECT_EQ(want[i], 0.0f);
                        continue;
                    }
                    double best = -1e300, abs_sum = 0;
                    for (std::size_t j = 0; j < t; ++j) {
                        double as = 0;
                        best = std::max(best, reference_dot(q.data() + i * dim, d + j * dim, dim, &as));
                        abs_sum = std::max(abs_sum, as);
                    }
                    EXPECT_NEAR(want[i], best, 1e-5 * abs_sum + 1e-6) << "m " << m << " dim " << dim << " t " << t;
                }
                for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
                    const Kernels* k = kernels_for(level);
                    if (k == nullptr) continue;
                    std::fill(got.begin(), got.end(), 42.0f);
                    k->maxsim_maxima(qt.data(), stride, d, t, dim, got.data());
                    for (std::size_t i = 0; i < stride; ++i) {
                        ASSERT_EQ(got[i], want[i]) << to_string(level) << " m " << m << " dim " << dim << " t " << t << " i " << i;
                    }
                    ++compared;
                }
            }
        }
    }
    std::printf("[ note ] maxsim_maxima compared bit for bit at %d (shape, level) pairs\n", compared);
}

TEST(SimdKernels, ActiveLevelIsSupported) {
    EXPECT_LE(active_simd_level(), detected_simd_level());
    EXPECT_NE(kernels_for(active_simd_level()), nullptr);
    EXPECT_EQ(active_kernels().level, active_simd_level());
}

TEST(SimdKernels, DecodesCpuFeatureBits) {
    const std::uint32_t osxsave_avx_fma = (1u << 27) | (1u << 28) | (1u << 12);
    const std::uint32_t avx2 = 1u << 5;
    const std::uint32_t avx512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
    // AVX2 without OS support for YMM state: unusable.
    EXPECT_EQ(best_level(decode_cpu_features(osxsave_avx_fma, avx2, 0x3)), SimdLevel::kScalar);
    EXPECT_EQ(best_level(decode_cpu_features(osxsave_avx_fma, avx2, 0x7)), SimdLevel::kAvx2);
    // AVX-512 bits but the OS does not save ZMM state: AVX2 only.
    EXPECT_EQ(best_level(decode_cpu_features(osxsave_avx_fma, avx2 | avx512, 0x7)), SimdLevel::kAvx2);
    EXPECT_EQ(best_level(decode_cpu_features(osxsave_avx_fma, avx2 | avx512, 0xE7)), SimdLevel::kAvx512);
    EXPECT_EQ(best_level(decode_cpu_features(0, 0, 0)), SimdLevel::kScalar);
}

TEST(SimdKernels, ParsesNames) {
    EXPECT_EQ(*parse_metric("cosine"), Metric::kCosine);
    EXPECT_EQ(*parse_metric("angular"), Metric::kCosine);
    EXPECT_EQ(*parse_metric("l2"), Metric::kL2);
    EXPECT_EQ(*parse_metric("ip"), Metric::kInnerProduct);
    EXPECT_FALSE(parse_metric("hamming"));
    EXPECT_EQ(*parse_simd_level("avx2"), SimdLevel::kAvx2);
    EXPECT_FALSE(parse_simd_level("sse9"));
}

TEST(SimdKernels, NormalizeMakesUnitLength) {
    std::vector<float> v = {3.0f, 4.0f};
    ASSERT_TRUE(normalize(v.data(), 2));
    EXPECT_FLOAT_EQ(v[0], 0.6f);
    EXPECT_FLOAT_EQ(v[1], 0.8f);
    std::vector<float> z = {0.0f, 0.0f};
    EXPECT_FALSE(normalize(z.data(), 2));
}

}  // namespace
}  // namespace quiver::simd
