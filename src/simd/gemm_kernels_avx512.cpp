// AVX-512 GEMM micro-kernel (this file alone is compiled with -mavx512f/bw/dq/vl; chosen at run time).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "simd/gemm_kernels.h"

namespace quiver::simd::detail {
namespace avx512 {
namespace {

constexpr std::size_t kPanel = kGemmPanel;

inline __mmask16 tail_mask(std::size_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

// MR x 32 tile: 2 * MR accumulators (MR <= 12), 2 B registers, A broadcast from memory.
template <int MR>
void tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
          std::size_t nr, const float* bias, bool accumulate, float alpha) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (std::size_t i = 0; i < k; ++i) {
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
                        const float*, bool, float);
constexpr TileFn kTiles[13] = {nullptr,   &tile<1>, &tile<2>, &tile<3>,  &tile<4>,  &tile<5>, &tile<6>,
                               &tile<7>,  &tile<8>, &tile<9>, &tile<10>, &tile<11>, &tile<12>};

void gemm_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
               std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha) {
    kTiles[mr](a, lda, panel, k, c, ldc, nr, bias, accumulate, alpha);
}

std::size_t select(const float* s, const float* add, float scale, float offset, std::size_t n, float bound,
                   std::uint32_t* out) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512 vo = _mm512_set1_ps(offset);
    const __m512 vb = _mm512_set1_ps(bound);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; j += 16) {
        const __mmask16 live = tail_mask(n - j);
        __m512 base = vo;
        if (add != nullptr) base = _mm512_add_ps(base, _mm512_maskz_loadu_ps(live, add + j));
        // (The compiler may fuse the multiply-add: the selected set can differ from the scalar
        // kernel's by rounding at the bound, which callers re-check.)
        const __m512 d = _mm512_add_ps(base, _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(live, s + j)));
        const __mmask16 hit = _mm512_mask_cmp_ps_mask(live, d, vb, _CMP_LE_OQ);
        if (hit != 0) {
            const __m512i idx = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(j)));
            _mm512_mask_compressstoreu_epi32(out + m, hit, idx);
            m += static_cast<std::size_t>(__builtin_popcount(hit));
        }
    }
    return m;
}

}  // namespace

const GemmKernels kGemmKernels{"avx512", &gemm_tile, 12, &select};

}  // namespace avx512
}  // namespace quiver::simd::detail
