// AVX-512 micro-kernel of gemm_stream() (this file alone is compiled with -mavx512f/bw/dq/vl and
// chosen at run time): the 12 x 32 tile, FMA order and epilogue of gemm_kernels_avx512.cpp, so results
// are bit for bit those of gemm(), that can also fetch the next K block of B into L2 while it runs
// (two cache lines per step).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "simd/gemm_stream.h"

namespace quiver::simd::detail {
namespace avx512 {
namespace {

constexpr std::size_t kPanel = kGemmPanel;

inline __mmask16 tail_mask(std::size_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

// PREFETCH: the 2k cache lines from pf on into L2, two per step.
template <int MR, bool PREFETCH>
void tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
          std::size_t nr, const float* bias, bool accumulate, float alpha, const float* pf) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (std::size_t i = 0; i < k; ++i) {
        if (PREFETCH) {
            _mm_prefetch(reinterpret_cast<const char*>(pf + i * kPanel), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(pf + i * kPanel + 16), _MM_HINT_T1);
        }
        const __m512 b0 = _mm512_load_ps(panel + i * kPanel);
        const __m512 b1 = _mm512_load_ps(panel + i * kPanel + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(a[static_cast<std::size_t>(r) * lda + i]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    const __mmask16 m0 = tail_mask(nr);
    const __mmask16 m1 = nr > 16 ? tail_mask(nr - 16) : static_cast<__mmask16>(0);
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

using TileFn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t,
                        const float*, bool, float, const float*);

template <bool PREFETCH>
constexpr TileFn kTiles[13] = {nullptr,
                               &tile<1, PREFETCH>,
                               &tile<2, PREFETCH>,
                               &tile<3, PREFETCH>,
                               &tile<4, PREFETCH>,
                               &tile<5, PREFETCH>,
                               &tile<6, PREFETCH>,
                               &tile<7, PREFETCH>,
                               &tile<8, PREFETCH>,
                               &tile<9, PREFETCH>,
                               &tile<10, PREFETCH>,
                               &tile<11, PREFETCH>,
                               &tile<12, PREFETCH>};

void stream_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
                 std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha,
                 const float* prefetch) {
    (prefetch != nullptr ? kTiles<true> : kTiles<false>)[mr](a, lda, panel, k, c, ldc, nr, bias, accumulate, alpha,
                                                            prefetch);
}

}  // namespace

const GemmStreamKernels kGemmStreamKernels{"avx512", &stream_tile, 12};

}  // namespace avx512
}  // namespace quiver::simd::detail
