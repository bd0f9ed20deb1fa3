// AVX-512 VPOPCNTDQ Hamming distance. Compiled with -mavx512vpopcntdq; called only when CPUID says so.
#include <immintrin.h>

#include "simd/code_kernels_impl.h"

namespace quiver::simd::avx512_vpopcnt {

std::uint64_t hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept {
    __m512i acc = _mm512_setzero_si512();
    for (std::size_t i = 0; i < words; i += 8) {
        const std::size_t n = words - i < 8 ? words - i : 8;
        const __mmask8 m = static_cast<__mmask8>((1u << n) - 1u);
        const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i), _mm512_maskz_loadu_epi64(m, b + i));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
    }
    return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(acc));
}

}  // namespace quiver::simd::avx512_vpopcnt
