// AVX-512 GEMM micro-kernel (this file alone is compiled with -mavx512f/bw/dq/vl; chosen at run time).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "simd/gemm_kernels.h"
#include "simd/gemm_tile_avx512_inl.h"

namespace quiver::simd::detail {
namespace avx512 {
namespace {

constexpr std::size_t kPanel = kGemmPanel;

inline __mmask16 tail_mask(std::size_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

template <int MR>
void tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
          std::size_t nr, const float* bias, bool accumulate, float alpha) {
    packed_tile<MR, false>(a, lda, panel, k, c, ldc, nr, bias, accumulate, alpha, nullptr);
}

using TileFn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t,
                        const float*, bool, float);
constexpr TileFn kTiles[13] = {nullptr,   &tile<1>, &tile<2>, &tile<3>,  &tile<4>,  &tile<5>, &tile<6>,
                               &tile<7>,  &tile<8>, &tile<9>, &tile<10>, &tile<11>, &tile<12>};

void gemm_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
               std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha) {
    kTiles[mr](a, lda, panel, k, c, ldc, nr, bias, accumulate, alpha);
}

// Exact-search scan (GemmKernels::scan): an MR x (16 NV) product in 2 * MR (NV = 2) or MR (NV = 1, the last
// panel of at most 16 queries) accumulators, turned into distances and compared with the queries' bounds
// while in registers; only rows with a kept column are stored.
template <int MR, int NV>
std::uint32_t scan_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, const float* row_add,
                        const float* offset, float scale, const float* bound, float* d_out, std::uint32_t* hits) {
    __m512 acc[MR][NV];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
    }
    for (std::size_t i = 0; i < k; ++i) {
        __m512 b[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) b[v] = _mm512_load_ps(panel + i * kPanel + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(a[static_cast<std::size_t>(r) * lda + i]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, b[v], acc[r][v]);
        }
    }
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 off[NV];
    __m512 bnd[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
        off[v] = _mm512_loadu_ps(offset + 16 * v);
        bnd[v] = _mm512_loadu_ps(bound + 16 * v);
    }
    std::uint32_t rows = 0;
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
        __m512 d[NV];
        std::uint32_t mask = 0;
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            const __m512 base = row_add != nullptr ? _mm512_add_ps(off[v], _mm512_set1_ps(row_add[r])) : off[v];
            d[v] = _mm512_fmadd_ps(vs, acc[r][v], base);
            mask |= static_cast<std::uint32_t>(_mm512_cmp_ps_mask(d[v], bnd[v], _CMP_LE_OQ)) << (16 * v);
        }
        if (mask != 0) {
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) _mm512_storeu_ps(d_out + static_cast<std::size_t>(r) * kPanel + 16 * v, d[v]);
            hits[r] = mask;
            rows |= 1u << r;
        }
    }
    return rows;
}

using ScanFn = std::uint32_t (*)(const float*, std::size_t, const float*, std::size_t, const float*, const float*, float,
                                 const float*, float*, std::uint32_t*);
constexpr ScanFn kScans[2][13] = {
    {nullptr, &scan_tile<1, 1>, &scan_tile<2, 1>, &scan_tile<3, 1>, &scan_tile<4, 1>, &scan_tile<5, 1>, &scan_tile<6, 1>,
     &scan_tile<7, 1>, &scan_tile<8, 1>, &scan_tile<9, 1>, &scan_tile<10, 1>, &scan_tile<11, 1>, &scan_tile<12, 1>},
    {nullptr, &scan_tile<1, 2>, &scan_tile<2, 2>, &scan_tile<3, 2>, &scan_tile<4, 2>, &scan_tile<5, 2>, &scan_tile<6, 2>,
     &scan_tile<7, 2>, &scan_tile<8, 2>, &scan_tile<9, 2>, &scan_tile<10, 2>, &scan_tile<11, 2>, &scan_tile<12, 2>}};

std::uint32_t scan(const float* a, std::size_t lda, const float* panel, std::size_t k, std::size_t mr, std::size_t nr,
                   const float* row_add, const float* offset, float scale, const float* bound, float* d_out,
                   std::uint32_t* hits) {
    return kScans[nr > 16 ? 1 : 0][mr](a, lda, panel, k, row_add, offset, scale, bound, d_out, hits);
}

// In-register transpose of a 16 x 16 block: r[j][i] becomes r[i][j]. Unpacks of floats and of pairs
// within 128-bit lanes, then two rounds of 128-bit lane shuffles (64 shuffles in all).
inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int q = 0; q < 8; ++q) {
        t[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
    }
    // u[4g + c], 128-bit lane L: rows 4g..4g+3 at column 4L + c.
    __m512 u[16];
    for (int g = 0; g < 4; ++g) {
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d c2 = _mm512_castps_pd(t[4 * g + 2]), d2 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c2));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c2));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d2));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d2));
    }
    // Column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
    for (int c = 0; c < 4; ++c) {
        const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
        const __m512 y0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        const __m512 x1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        const __m512 y1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[0 + c] = _mm512_shuffle_f32x4(x0, x1, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(x0, x1, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(y0, y1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(y0, y1, 0xDD);
    }
}

void pack_panel(const float* w, std::size_t cols, std::size_t k, std::size_t ld, float* panel) {
    for (std::size_t i0 = 0; i0 < k; i0 += 16) {
        const std::size_t n = std::min<std::size_t>(16, k - i0);
        const __mmask16 m = tail_mask(n);
        for (std::size_t half = 0; half < 2; ++half) {
            __m512 r[16];
#pragma GCC unroll 16
            for (std::size_t j = 0; j < 16; ++j) {
                const std::size_t col = half * 16 + j;
                r[j] = col < cols ? _mm512_maskz_loadu_ps(m, w + col * ld + i0) : _mm512_setzero_ps();
            }
            transpose16(r);
            for (std::size_t t = 0; t < n; ++t) _mm512_storeu_ps(panel + (i0 + t) * kPanel + half * 16, r[t]);
        }
    }
}

}  // namespace

const GemmKernels kGemmKernels{"avx512", &gemm_tile, 12, &scan, &pack_panel};

}  // namespace avx512
}  // namespace quiver::simd::detail
