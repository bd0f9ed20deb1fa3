// AVX-512 VNNI u8 x s8 dot products (vpdpbusd: 4 byte products summed into each int32 lane, no
// saturation). Compiled with -mavx512vnni; called only when CPUID says so.
#include <immintrin.h>

#include "simd/code_kernels_avx512_inl.h"
#include "simd/code_kernels_impl.h"

namespace quiver::simd::avx512_vnni {
namespace {

inline __mmask64 tail_mask64(std::size_t n) noexcept {
    return n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1u;
}

}  // namespace

std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept {
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    std::size_t i = 0;
    for (; i + 128 <= d; i += 128) {
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(c + i + 64), _mm512_loadu_si512(q + i + 64));
    }
    for (; i < d; i += 64) {
        const __mmask64 m = tail_mask64(d - i < 64 ? d - i : 64);
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_maskz_loadu_epi8(m, c + i), _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// Four codes per pass over the query: each 64-byte query chunk is loaded once and fed to four
// independent vpdpbusd chains; the four sums are reduced together at the end.
void u8s8_dot_batch(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                    std::int32_t* out) noexcept {
    for (std::size_t j = 0; j < n; j += 4) {
        // A last group of 1-3 codes repeats its last code (scored, not stored).
        const std::size_t left = n - j < 4 ? n - j : 4;
        const std::uint8_t* c0 = codes[j];
        const std::uint8_t* c1 = codes[j + (left > 1 ? 1 : 0)];
        const std::uint8_t* c2 = codes[j + (left > 2 ? 2 : left - 1)];
        const std::uint8_t* c3 = codes[j + (left > 3 ? 3 : left - 1)];
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        // Whole 64-byte chunks with plain loads (a masked load costs an extra uop on the ports the
        // dot products need), then at most one masked tail.
        std::size_t i = 0;
        for (; i + 64 <= d; i += 64) {
            const __m512i qv = _mm512_loadu_si512(q + i);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(c0 + i), qv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(c1 + i), qv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(c2 + i), qv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(c3 + i), qv);
        }
        if (i < d) {
            const __mmask64 m = tail_mask64(d - i);
            const __m512i qv = _mm512_maskz_loadu_epi8(m, q + i);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_maskz_loadu_epi8(m, c0 + i), qv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_maskz_loadu_epi8(m, c1 + i), qv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_maskz_loadu_epi8(m, c2 + i), qv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_maskz_loadu_epi8(m, c3 + i), qv);
        }
        const __m128i sums = avx512::reduce4_epi32(a0, a1, a2, a3);
        if (left == 4) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), sums);
        } else {
            alignas(16) std::int32_t tmp[4];
            _mm_store_si128(reinterpret_cast<__m128i*>(tmp), sums);
            for (std::size_t t = 0; t < left; ++t) out[j + t] = tmp[t];
        }
    }
}

}  // namespace quiver::simd::avx512_vnni
