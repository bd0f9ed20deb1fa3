// AVX-512 VNNI int8 kernels. vpdpbusd multiplies unsigned by signed bytes, so one operand is biased:
// (a ^ 0x80) reads as a + 128, and dot(a, b) = dpbusd(a ^ 0x80, b) - 128 * sum(b), all exact in int32.
// Compiled with -mavx512vnni; used only when CPUID says so.
// GCC 12.2 reports the AVX-512 intrinsics' deliberately undefined pass-through operands
// (_mm512_undefined_*) as uninitialised once they inline into these loops (GCC bug 105593, fixed in
// 12.3); the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <limits>

#include "simd/int8_kernels_impl.h"

namespace quiver::simd::avx512_vnni {
namespace {

inline __mmask64 tail_mask(std::size_t k, std::size_t d) noexcept {
    const std::size_t n = d - k < 64 ? d - k : 64;
    return n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1u;
}

// Biased bytes of a (a + 128 as unsigned); bytes past d read as 0 (the matching b bytes are 0 too).
inline __m512i biased(const std::int8_t* a, std::size_t k, __mmask64 mask) noexcept {
    return _mm512_maskz_mov_epi8(mask, _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, a + k), _mm512_set1_epi8(-128)));
}

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512(), sum = _mm512_setzero_si512();
    for (std::size_t k = 0; k < d; k += 64) {
        const __mmask64 mask = tail_mask(k, d);
        const __m512i bv = _mm512_maskz_loadu_epi8(mask, b + k);
        acc = _mm512_dpbusd_epi32(acc, biased(a, k, mask), bv);
        sum = _mm512_dpbusd_epi32(sum, ones, bv);
    }
    return _mm512_reduce_add_epi32(acc) - 128 * _mm512_reduce_add_epi32(sum);
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    const __m512i ones = _mm512_set1_epi8(1);
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        const float scale = ds[j];
        // The bias correction depends on the document row only: 128 * sum(c_j).
        __m512i sum = _mm512_setzero_si512();
        for (std::size_t k = 0; k < d; k += 64) {
            sum = _mm512_dpbusd_epi32(sum, ones, _mm512_maskz_loadu_epi8(tail_mask(k, d), row + k));
        }
        const std::int32_t bias = 128 * _mm512_reduce_add_epi32(sum);
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const std::int8_t* q0 = q + i * d;
            __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
            __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();
            for (std::size_t k = 0; k < d; k += 64) {
                const __mmask64 mask = tail_mask(k, d);
                const __m512i cv = _mm512_maskz_loadu_epi8(mask, row + k);
                a0 = _mm512_dpbusd_epi32(a0, biased(q0, k, mask), cv);
                a1 = _mm512_dpbusd_epi32(a1, biased(q0 + d, k, mask), cv);
                a2 = _mm512_dpbusd_epi32(a2, biased(q0 + 2 * d, k, mask), cv);
                a3 = _mm512_dpbusd_epi32(a3, biased(q0 + 3 * d, k, mask), cv);
            }
            const float v0 = static_cast<float>(_mm512_reduce_add_epi32(a0) - bias) * scale;
            const float v1 = static_cast<float>(_mm512_reduce_add_epi32(a1) - bias) * scale;
            const float v2 = static_cast<float>(_mm512_reduce_add_epi32(a2) - bias) * scale;
            const float v3 = static_cast<float>(_mm512_reduce_add_epi32(a3) - bias) * scale;
            if (v0 > out[i]) out[i] = v0;
            if (v1 > out[i + 1]) out[i + 1] = v1;
            if (v2 > out[i + 2]) out[i + 2] = v2;
            if (v3 > out[i + 3]) out[i + 3] = v3;
        }
        for (; i < m; ++i) {
            __m512i acc = _mm512_setzero_si512();
            for (std::size_t k = 0; k < d; k += 64) {
                const __mmask64 mask = tail_mask(k, d);
                acc = _mm512_dpbusd_epi32(acc, biased(q + i * d, k, mask), _mm512_maskz_loadu_epi8(mask, row + k));
            }
            const float v = static_cast<float>(_mm512_reduce_add_epi32(acc) - bias) * scale;
            if (v > out[i]) out[i] = v;
        }
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{SimdLevel::kAvx512, true, &s8_dot, &s8_maxsim, &avx512::s8_axpy_rows};

}  // namespace quiver::simd::avx512_vnni
