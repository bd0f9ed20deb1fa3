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

// Exact-search scan (GemmKernels::scan) of a 6 x 16 half of a panel (column offset 16 * `half`): masks[r]
// gets the row's kept columns (bits 0-15), and the distances of rows with any are stored.
template <int MR>
void scan_half(const float* a, std::size_t lda, const float* panel, std::size_t k, const float* row_add,
               const float* offset, float scale, const float* bound, float* d_out, std::uint32_t* masks) {
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
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 off0 = _mm256_loadu_ps(offset);
    const __m256 off1 = _mm256_loadu_ps(offset + 8);
    const __m256 bnd0 = _mm256_loadu_ps(bound);
    const __m256 bnd1 = _mm256_loadu_ps(bound + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        __m256 base0 = off0;
        __m256 base1 = off1;
        if (row_add != nullptr) {
            const __m256 add = _mm256_set1_ps(row_add[r]);
            base0 = _mm256_add_ps(base0, add);
            base1 = _mm256_add_ps(base1, add);
        }
        const __m256 d0 = _mm256_fmadd_ps(vs, acc[r][0], base0);
        const __m256 d1 = _mm256_fmadd_ps(vs, acc[r][1], base1);
        const auto m = static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(d0, bnd0, _CMP_LE_OQ))) |
                       static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(d1, bnd1, _CMP_LE_OQ))) << 8;
        masks[r] = m;
        if (m != 0) {
            _mm256_storeu_ps(d_out + static_cast<std::size_t>(r) * kPanel, d0);
            _mm256_storeu_ps(d_out + static_cast<std::size_t>(r) * kPanel + 8, d1);
        }
    }
}

using ScanHalfFn = void (*)(const float*, std::size_t, const float*, std::size_t, const float*, const float*, float,
                            const float*, float*, std::uint32_t*);
constexpr ScanHalfFn kScanHalves[7] = {nullptr, &scan_half<1>, &scan_half<2>, &scan_half<3>,
                                       &scan_half<4>, &scan_half<5>, &scan_half<6>};

std::uint32_t scan(const float* a, std::size_t lda, const float* panel, std::size_t k, std::size_t mr, std::size_t nr,
                   const float* row_add, const float* offset, float scale, const float* bound, float* d_out,
                   std::uint32_t* hits) {
    const ScanHalfFn f = kScanHalves[mr];
    std::uint32_t lo[6] = {};
    std::uint32_t hi[6] = {};
    f(a, lda, panel, k, row_add, offset, scale, bound, d_out, lo);
    if (nr > 16) f(a, lda, panel + 16, k, row_add, offset + 16, scale, bound + 16, d_out + 16, hi);
    std::uint32_t rows = 0;
    for (std::size_t r = 0; r < mr; ++r) {
        const std::uint32_t m = lo[r] | hi[r] << 16;
        if (m == 0) continue;
        hits[r] = m;
        rows |= 1u << r;
    }
    return rows;
}

}  // namespace

const GemmKernels kGemmKernels{"avx2", &gemm_tile, 6, &scan, &scalar::pack_panel};

}  // namespace avx2
}  // namespace quiver::simd::detail
