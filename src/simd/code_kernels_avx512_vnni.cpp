// AVX-512 VNNI u8 x s8 dot product (vpdpbusd: 4 byte products summed into each int32 lane, no
// saturation). Compiled with -mavx512vnni; called only when CPUID says so.
#include <immintrin.h>

#include "simd/code_kernels_impl.h"

namespace quiver::simd::avx512_vnni {

std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept {
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    std::size_t i = 0;
    for (; i + 128 <= d; i += 128) {
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(c + i + 64), _mm512_loadu_si512(q + i + 64));
    }
    for (; i < d; i += 64) {
        const std::size_t n = d - i < 64 ? d - i : 64;
        const __mmask64 m = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1u;
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_maskz_loadu_epi8(m, c + i), _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

}  // namespace quiver::simd::avx512_vnni
