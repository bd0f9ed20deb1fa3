// int8 products with AVX2 (this file alone is compiled with -mavx2 -mfma): vpmaddubsw multiplies
// u8 x s8 pairs into saturating int16 sums, so activations are quantised to [0, 127] (act_max) and
// 2 * 127 * 127 never saturates; vpmaddwd with ones widens the pairs to int32. MR x 16 half-panels.
#include <immintrin.h>

#include "encode/linear.h"

namespace quiver::encode::detail {
namespace int8_avx2 {
namespace {

// Columns [16 * half, 16 * half + 16) of the panel: 8 columns per register, 2 registers per row.
template <int MR>
void tile_half(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c,
               std::size_t ldc, std::size_t nr, const float* row_scale, const std::int32_t* row_zero,
               const float* col_scale, const std::int32_t* col_sum, const float* bias, bool accumulate) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (std::size_t g = 0; g < k4; ++g) {
        const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * kPanel * 4));
        const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + g * kPanel * 4 + 32));
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
            std::int32_t four;
            __builtin_memcpy(&four, a + static_cast<std::size_t>(r) * lda + 4 * g, 4);
            const __m256i av = _mm256_set1_epi32(four);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
        }
    }
    for (int r = 0; r < MR; ++r) {
        alignas(32) std::int32_t tmp[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[r][0]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), acc[r][1]);
        float* cr = c + static_cast<std::size_t>(r) * ldc;
        for (std::size_t j = 0; j < nr; ++j) {
            float v = row_scale[r] * col_scale[j] * static_cast<float>(tmp[j] - row_zero[r] * col_sum[j]);
            if (bias != nullptr) v += bias[j];
            if (accumulate) v += cr[j];
            cr[j] = v;
        }
    }
}

using HalfFn = void (*)(const std::uint8_t*, std::size_t, const std::int8_t*, std::size_t, float*, std::size_t,
                        std::size_t, const float*, const std::int32_t*, const float*, const std::int32_t*, const float*,
                        bool);
constexpr HalfFn kHalves[5] = {nullptr, &tile_half<1>, &tile_half<2>, &tile_half<3>, &tile_half<4>};

void tile(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c, std::size_t ldc,
          std::size_t mr, std::size_t nr, const float* row_scale, const std::int32_t* row_zero, const float* col_scale,
          const std::int32_t* col_sum, const float* bias, bool accumulate) {
    const HalfFn f = kHalves[mr];
    f(a, lda, panel, k4, c, ldc, nr < 16 ? nr : 16, row_scale, row_zero, col_scale, col_sum, bias, accumulate);
    if (nr > 16) {
        f(a, lda, panel + 64, k4, c + 16, ldc, nr - 16, row_scale, row_zero, col_scale + 16, col_sum + 16,
          bias != nullptr ? bias + 16 : nullptr, accumulate);
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{"avx2", 127, 4, &tile, &quantize_row_scalar};

}  // namespace int8_avx2
}  // namespace quiver::encode::detail
