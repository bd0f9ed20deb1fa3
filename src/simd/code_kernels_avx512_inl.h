// Private header for the translation units compiled with AVX-512 flags (code_kernels_avx512*.cpp):
// helpers their kernels share. Never include it from a file compiled for a lower level.
#pragma once

#include <immintrin.h>

namespace quiver::simd::avx512 {

/// The four int32 totals of a0..a3 (each summed over its 16 lanes), in order: the halves of each are
/// added, then two rounds of pairwise horizontal adds interleave the four sums.
inline __m128i reduce4_epi32(__m512i a0, __m512i a1, __m512i a2, __m512i a3) noexcept {
    auto half = [](__m512i a) {
        return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    };
    const __m256i h =
        _mm256_hadd_epi32(_mm256_hadd_epi32(half(a0), half(a1)), _mm256_hadd_epi32(half(a2), half(a3)));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

}  // namespace quiver::simd::avx512
