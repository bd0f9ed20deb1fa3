// AVX2 + FMA GEMM micro-kernel (this file alone is compiled with -mavx2 -mfma; chosen at run time).
#include <immintrin.h>

#include "simd/gemm_kernels.h"

namespace quiver::simd::detail {
namespace avx2 {
namespace {

constexpr std::size_t kPanel = kGemmPanel;

// 6 x 16 half of a panel (column offset `half` * 16): 12 accumulators, 2 B registers, 1 broadcast.
template <int MR>
void tile_half(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
               std::size_t nr, const float* bias, bool accumulate, float alpha) {
    __m256 acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (std::size_t i = 0; i < k; ++i) {
        const __m256 b0 = _mm256_load_ps(panel + i * kPanel);
        const __m256 b1 = _mm256_load_ps(panel + i * kPanel + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m256 av = _mm256_broadcast_ss(a + static_cast<std::size_t>(r) * lda + i);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
    for (int r = 0; r < MR; ++r) {
        float* cr = c + static_cast<std::size_t>(r) * ldc;
        alignas(32) float tmp[16];
        _mm256_store_ps(tmp, _mm256_mul_ps(acc[r][0], va));
        _mm256_store_ps(tmp + 8, _mm256_mul_ps(acc[r][1], va));
        if (nr == 16) {
            __m256 v0 = _mm256_load_ps(tmp);
            __m256 v1 = _mm256_load_ps(tmp + 8);
            if (bias != nullptr) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
            }
            if (accumulate) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr + 8, v1);
            continue;
        }
        for (std::size_t j = 0; j < nr; ++j) {
            float v = tmp[j];
            if (bias != nullptr) v += bias[j];
            if (accumulate) v += cr[j];
            cr[j] = v;
        }
    }
}

using HalfFn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t,
                        const float*, bool, float);
constexpr HalfFn kHalves[7] = {nullptr, &tile_half<1>, &tile_half<2>, &tile_half<3>,
                               &tile_half<4>, &tile_half<5>, &tile_half<6>};

void gemm_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
               std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha) {
    const HalfFn f = kHalves[mr];
    f(a, lda, panel, k, c, ldc, nr < 16 ? nr : 16, bias, accumulate, alpha);
    if (nr > 16) f(a, lda, panel + 16, k, c + 16, ldc, nr - 16, bias != nullptr ? bias + 16 : nullptr, accumulate, alpha);
}

std::size_t select(const float* s, const float* add, float scale, float offset, std::size_t n, float bound,
                   std::uint32_t* out) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 vo = _mm256_set1_ps(offset);
    const __m256 vb = _mm256_set1_ps(bound);
    std::size_t m = 0;
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 base = vo;
        if (add != nullptr) base = _mm256_add_ps(base, _mm256_loadu_ps(add + j));
        // (The compiler may fuse the multiply-add: the selected set can differ from the scalar
        // kernel's by rounding at the bound, which callers re-check.)
        const __m256 d = _mm256_add_ps(base, _mm256_mul_ps(vs, _mm256_loadu_ps(s + j)));
        unsigned bits = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(d, vb, _CMP_LE_OQ)));
        while (bits != 0) {
            out[m++] = static_cast<std::uint32_t>(j + static_cast<std::size_t>(__builtin_ctz(bits)));
            bits &= bits - 1;
        }
    }
    for (; j < n; ++j) {
        const float d = offset + (add != nullptr ? add[j] : 0.0f) + scale * s[j];
        if (d <= bound) out[m++] = static_cast<std::uint32_t>(j);
    }
    return m;
}

}  // namespace

const GemmKernels kGemmKernels{"avx2", &gemm_tile, 6, &select};

}  // namespace avx2
}  // namespace quiver::simd::detail
