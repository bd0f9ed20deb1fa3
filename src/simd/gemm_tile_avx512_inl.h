// Private header for the translation units compiled with AVX-512 flags (gemm_kernels_avx512.cpp,
// gemm_stream_avx512.cpp): the packed GEMM's MR x 32 micro-kernel, shared so gemm_stream() gives
// gemm()'s bits (same tile, FMA order and epilogue). Never include it from a file compiled for a
// lower level.
#pragma once

#include <immintrin.h>

#include <cstddef>

#include "simd/gemm_kernels.h"

namespace quiver::simd::detail::avx512 {

inline __mmask16 gemm_tail_mask(std::size_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
}

// MR x 32 tile: 2 * MR accumulators (MR <= 12), 2 B registers, A broadcast from memory.
// PREFETCH: the 2k cache lines from pf on into L2, two per step.
template <int MR, bool PREFETCH>
inline void packed_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
          std::size_t nr, const float* bias, bool accumulate, float alpha, const float* pf) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (std::size_t i = 0; i < k; ++i) {
        if (PREFETCH) {
            _mm_prefetch(reinterpret_cast<const char*>(pf + i * kGemmPanel), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(pf + i * kGemmPanel + 16), _MM_HINT_T1);
        }
        const __m512 b0 = _mm512_load_ps(panel + i * kGemmPanel);
        const __m512 b1 = _mm512_load_ps(panel + i * kGemmPanel + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(a[static_cast<std::size_t>(r) * lda + i]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    const __mmask16 m0 = gemm_tail_mask(nr);
    const __mmask16 m1 = nr > 16 ? gemm_tail_mask(nr - 16) : static_cast<__mmask16>(0);
    const __m512 va = _mm512_set1_ps(alpha);
    const __m512 bias0 = bias != nullptr ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias != nullptr ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
        float* cr = c + static_cast<std::size_t>(r) * ldc;
        __m512 v0 = _mm512_fmadd_ps(acc[r][0], va, bias0);
        __m512 v1 = _mm512_fmadd_ps(acc[r][1], va, bias1);
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

}  // namespace quiver::simd::detail::avx512
