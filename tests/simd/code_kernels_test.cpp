#include "quiver/simd/code_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace quiver::simd {
namespace {

const std::size_t kDims[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 96, 100, 127, 128, 129, 384, 769};

// Every level (and the AVX-512 level with and without VPOPCNTDQ and VNNI) the CPU can run.
std::vector<const CodeKernels*> available() {
    std::vector<const CodeKernels*> out;
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        for (bool pop : {false, true}) {
            for (bool vnni : {false, true}) {
                const CodeKernels* k = code_kernels_for(level, pop, vnni);
                if (k == nullptr) {
                    std::printf("[ note ] SIMD level %s not supported by this CPU; skipped\n",
                                std::string(to_string(level)).c_str());
                    return out;
                }
                if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
            }
        }
    }
    return out;
}

double ref_u8_dot(const float* w, const std::uint8_t* c, std::size_t d, double* abs_sum) {
    double s = 0, a = 0;
    for (std::size_t i = 0; i < d; ++i) {
        s += double(w[i]) * c[i];
        a += std::fabs(double(w[i]) * c[i]);
    }
    *abs_sum = a;
    return s;
}
double ref_u8_l2(const float* a, const float* sc, const std::uint8_t* c, std::size_t d) {
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) {
        const double t = double(a[i]) - double(sc[i]) * c[i];
        s += t * t;
    }
    return s;
}

TEST(CodeKernels, ScalarQuantisedDotAndL2MatchReferenceAtEveryLevel) {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd;
    std::uniform_int_distribution<int> byte(0, 255);
    const auto levels = available();
    ASSERT_GE(levels.size(), 1u);
    for (const CodeKernels* k : levels) {
        for (std::size_t d : kDims) {
            std::vector<float> w(d + 1), s(d + 1);
            std::vector<std::uint8_t> c8(d + 1), c4((d + 1) / 2 + 1), n4(d);
            for (auto& v : w) v = nd(rng);
            for (auto& v : s) v = std::fabs(nd(rng)) * 0.01f;
            for (auto& v : c8) v = static_cast<std::uint8_t>(byte(rng));
            for (std::size_t i = 0; i < d; ++i) n4[i] = static_cast<std::uint8_t>(byte(rng) & 15);
            std::fill(c4.begin(), c4.end(), 0);
            for (std::size_t i = 0; i < d; ++i) c4[1 + i / 2] |= static_cast<std::uint8_t>(n4[i] << ((i & 1) * 4));
            const float* pw = w.data() + 1;  // unaligned
            const float* ps = s.data() + 1;
            double abs_sum = 0;
            const double dot8 = ref_u8_dot(pw, c8.data() + 1, d, &abs_sum);
            EXPECT_NEAR(k->u8_dot(pw, c8.data() + 1, d), dot8, 1e-5 * abs_sum + 1e-5) << to_string(k->level) << " d " << d;
            const double l28 = ref_u8_l2(pw, ps, c8.data() + 1, d);
            EXPECT_NEAR(k->u8_l2(pw, ps, c8.data() + 1, d), l28, 1e-5 * l28 + 1e-5) << to_string(k->level) << " d " << d;
            const double dot4 = ref_u8_dot(pw, n4.data(), d, &abs_sum);
            EXPECT_NEAR(k->u4_dot(pw, c4.data() + 1, d), dot4, 1e-5 * abs_sum + 1e-5) << to_string(k->level) << " d " << d;
            const double l24 = ref_u8_l2(pw, ps, n4.data(), d);
            EXPECT_NEAR(k->u4_l2(pw, ps, c4.data() + 1, d), l24, 1e-5 * l24 + 1e-5) << to_string(k->level) << " d " << d;
        }
    }
}

// The integer SQ8 kernel is exact: every level (VNNI and 16-bit multiply-adds alike) equals a
// 64-bit reference, on random bytes and on the extremes (255 x -128 and 255 x 127 over 769 dims).
TEST(CodeKernels, U8S8DotIsExactAtEveryLevelWithAndWithoutVnni) {
    std::mt19937 rng(17);
    std::uniform_int_distribution<int> ubyte(0, 255), sbyte(-128, 127);
    const auto levels = available();
    bool saw_vnni = false;
    for (const CodeKernels* k : levels) {
        saw_vnni = saw_vnni || k->vnni;
        for (std::size_t d : kDims) {
            std::vector<std::uint8_t> c(d + 1);
            std::vector<std::int8_t> q(d + 1);
            for (auto& v : c) v = static_cast<std::uint8_t>(ubyte(rng));
            for (auto& v : q) v = static_cast<std::int8_t>(sbyte(rng));
            std::int64_t ref = 0;
            for (std::size_t i = 1; i <= d; ++i) ref += std::int64_t{c[i]} * q[i];
            // Unaligned starts; the byte past the end must not be read into the sum.
            c.push_back(255);
            q.push_back(127);
            EXPECT_EQ(k->u8s8_dot(c.data() + 1, q.data() + 1, d), ref)
                << to_string(k->level) << " vnni " << k->vnni << " d " << d;
            std::vector<std::uint8_t> hi(d, 255);
            std::vector<std::int8_t> lo(d, -128), top(d, 127);
            EXPECT_EQ(k->u8s8_dot(hi.data(), lo.data(), d), -255 * 128 * static_cast<std::int64_t>(d));
            EXPECT_EQ(k->u8s8_dot(hi.data(), top.data(), d), 255 * 127 * static_cast<std::int64_t>(d));
        }
        EXPECT_EQ(k->u8s8_dot(nullptr, nullptr, 0), 0);
    }
    if (has_avx512_vnni()) {
        EXPECT_TRUE(saw_vnni);
        EXPECT_TRUE(code_kernels_for(SimdLevel::kAvx512)->vnni);
        EXPECT_FALSE(code_kernels_for(SimdLevel::kAvx512, true, false)->vnni);
    } else {
        std::printf("[ note ] AVX-512 VNNI not present; the 16-bit u8s8_dot was tested at every level\n");
    }
}

// The batched kernel equals the 64-bit reference for every code of the batch, at every level, for
// batch sizes around the four-code groups (0, 1, 3, 4, 5, 7, 8, 9, 33), codes at scattered unaligned
// addresses with a 255 byte right after each (a read past d would change the sum), and on the extremes.
TEST(CodeKernels, U8S8DotBatchIsExactAtEveryLevel) {
    std::mt19937 rng(23);
    std::uniform_int_distribution<int> ubyte(0, 255), sbyte(-128, 127);
    const auto levels = available();
    const std::size_t kBatches[] = {0, 1, 3, 4, 5, 7, 8, 9, 33};
    for (const CodeKernels* k : levels) {
        ASSERT_NE(k->u8s8_dot_batch, nullptr);
        for (std::size_t d : kDims) {
            for (std::size_t n : kBatches) {
                const std::size_t pitch = d + 3;  // codes start at odd offsets of one buffer
                std::vector<std::uint8_t> buf(n * pitch + 8, 255);
                std::vector<std::int8_t> q(d + 2, 127);
                for (std::size_t i = 0; i < d; ++i) q[1 + i] = static_cast<std::int8_t>(sbyte(rng));
                std::vector<const std::uint8_t*> codes(n);
                std::vector<std::int64_t> ref(n, 0);
                for (std::size_t j = 0; j < n; ++j) {
                    // Reverse order, so the pointers are not ascending.
                    std::uint8_t* c = buf.data() + (n - 1 - j) * pitch + 1 + (j % 2);
                    for (std::size_t i = 0; i < d; ++i) c[i] = static_cast<std::uint8_t>(ubyte(rng));
                    codes[j] = c;
                }
                for (std::size_t j = 0; j < n; ++j) {
                    for (std::size_t i = 0; i < d; ++i) ref[j] += std::int64_t{codes[j][i]} * q[1 + i];
                }
                std::vector<std::int32_t> out(n + 1, 12345);
                k->u8s8_dot_batch(codes.data(), n, q.data() + 1, d, out.data());
                for (std::size_t j = 0; j < n; ++j) {
                    ASSERT_EQ(out[j], ref[j]) << to_string(k->level) << " vnni " << k->vnni << " d " << d << " n " << n
                                              << " code " << j;
                }
                EXPECT_EQ(out[n], 12345) << "wrote past the batch";
            }
            // Extremes: 255 x -128 and 255 x 127 in every lane, five codes (one group of four and one single).
            std::vector<std::uint8_t> hi(d, 255);
            std::vector<std::int8_t> lo(d, -128), top(d, 127);
            const std::uint8_t* five[5] = {hi.data(), hi.data(), hi.data(), hi.data(), hi.data()};
            std::int32_t out[5];
            k->u8s8_dot_batch(five, 5, lo.data(), d, out);
            for (std::int32_t v : out) EXPECT_EQ(v, -255 * 128 * static_cast<std::int64_t>(d));
            k->u8s8_dot_batch(five, 5, top.data(), d, out);
            for (std::int32_t v : out) EXPECT_EQ(v, 255 * 127 * static_cast<std::int64_t>(d));
        }
    }
}

TEST(CodeKernels, HammingIsExactAtEveryLevelWithAndWithoutVpopcntdq) {
    std::mt19937_64 rng(5);
    const auto levels = available();
    for (const CodeKernels* k : levels) {
        for (std::size_t words : {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33}) {
            std::vector<std::uint64_t> a(words + 1), b(words + 1);
            for (auto& v : a) v = rng();
            for (auto& v : b) v = rng();
            std::uint64_t ref = 0;
            for (std::size_t i = 1; i <= words; ++i) {
                for (int bit = 0; bit < 64; ++bit) ref += ((a[i] ^ b[i]) >> bit) & 1u;
            }
            EXPECT_EQ(k->hamming(a.data() + 1, b.data() + 1, words), ref)
                << to_string(k->level) << " vpopcntdq " << k->vpopcntdq << " words " << words;
            EXPECT_EQ(k->hamming(a.data() + 1, a.data() + 1, words), 0u);
        }
    }
    if (has_avx512_vpopcntdq()) {
        EXPECT_TRUE(code_kernels_for(SimdLevel::kAvx512, true)->vpopcntdq);
    } else {
        std::printf("[ note ] AVX-512 VPOPCNTDQ not present; the AVX2 popcount was tested at every level\n");
    }
}

TEST(CodeKernels, LookupTableSumsMatchReference) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    std::uniform_int_distribution<int> byte(0, 255);
    for (const CodeKernels* k : available()) {
        for (std::size_t m : {1, 2, 7, 8, 9, 15, 16, 17, 32, 50, 64}) {
            std::vector<float> lut(m * 256);
            for (auto& v : lut) v = nd(rng);
            std::vector<std::uint8_t> code(m);
            for (auto& v : code) v = static_cast<std::uint8_t>(byte(rng));
            double ref = 0, abs_sum = 0;
            for (std::size_t j = 0; j < m; ++j) {
                ref += lut[j * 256 + code[j]];
                abs_sum += std::fabs(lut[j * 256 + code[j]]);
            }
            EXPECT_NEAR(k->lut8_sum(lut.data(), code.data(), m), ref, 1e-5 * abs_sum + 1e-6)
                << to_string(k->level) << " m " << m;
        }
        for (std::size_t m : {2, 4, 6, 8, 10, 16, 32, 50, 64, 254, 256}) {
            std::vector<std::uint8_t> lut(m * 16), block(m * 16);
            for (auto& v : lut) v = static_cast<std::uint8_t>(byte(rng));
            for (auto& v : block) v = static_cast<std::uint8_t>(byte(rng));
            // The largest sums the contract allows: every entry 255 (m = 256: 65,280).
            if (m >= 254) std::fill(lut.begin(), lut.end(), std::uint8_t{255});
            std::uint16_t out[32];
            k->lut4_scan32(block.data(), lut.data(), m, out);
            for (std::size_t j = 0; j < 32; ++j) {
                unsigned ref = 0;
                for (std::size_t s = 0; s < m; ++s) {
                    const unsigned nib = j < 16 ? block[s * 16 + j] & 15 : block[s * 16 + j - 16] >> 4;
                    ref += lut[s * 16 + nib];
                }
                ASSERT_EQ(out[j], ref) << to_string(k->level) << " m " << m << " code " << j;
            }
        }
    }
}

}  // namespace
}  // namespace quiver::simd
