// AVX-512 (BW) int8 kernels: 32 bytes sign-extended to 16 bits per step (vpmaddwd), masked tails.
// MaxSim keeps one document row's chunks hot against four query rows at a time.
// GCC 12.2 reports the AVX-512 intrinsics' deliberately undefined pass-through operands
// (_mm512_undefined_*) as uninitialised once they inline into these loops (GCC bug 105593, fixed in
// 12.3); the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <limits>

#include "simd/int8_kernels_impl.h"

namespace quiver::simd::avx512 {
namespace {

// Bytes [k, min(k + 32, d)) of p, sign-extended to 16 bits (zero past d).
inline __m512i widen(const std::int8_t* p, std::size_t k, std::size_t d) noexcept {
    const std::size_t n = d - k < 32 ? d - k : 32;
    const __mmask32 mask = n == 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1u;
    return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, p + k));
}

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    __m512i acc = _mm512_setzero_si512();
    for (std::size_t k = 0; k < d; k += 32) acc = _mm512_add_epi32(acc, _mm512_madd_epi16(widen(a, k, d), widen(b, k, d)));
    return _mm512_reduce_add_epi32(acc);
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        const float scale = ds[j];
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const std::int8_t* q0 = q + i * d;
            __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
            __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();
            for (std::size_t k = 0; k < d; k += 32) {
                const __m512i cv = widen(row, k, d);
                a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(widen(q0, k, d), cv));
                a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(widen(q0 + d, k, d), cv));
                a2 = _mm512_add_epi32(a2, _mm512_madd_epi16(widen(q0 + 2 * d, k, d), cv));
                a3 = _mm512_add_epi32(a3, _mm512_madd_epi16(widen(q0 + 3 * d, k, d), cv));
            }
            const float v0 = static_cast<float>(_mm512_reduce_add_epi32(a0)) * scale;
            const float v1 = static_cast<float>(_mm512_reduce_add_epi32(a1)) * scale;
            const float v2 = static_cast<float>(_mm512_reduce_add_epi32(a2)) * scale;
            const float v3 = static_cast<float>(_mm512_reduce_add_epi32(a3)) * scale;
            if (v0 > out[i]) out[i] = v0;
            if (v1 > out[i + 1]) out[i + 1] = v1;
            if (v2 > out[i + 2]) out[i + 2] = v2;
            if (v3 > out[i + 3]) out[i + 3] = v3;
        }
        for (; i < m; ++i) {
            const float v = static_cast<float>(s8_dot(q + i * d, row, d)) * scale;
            if (v > out[i]) out[i] = v;
        }
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{SimdLevel::kAvx512, false, &s8_dot, &s8_maxsim, nullptr, &avx2::s8_dot4_rows};

}  // namespace quiver::simd::avx512
