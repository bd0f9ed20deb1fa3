// AVX-512 GEMM micro-kernel (this file alone is compiled with -mavx512f/bw/dq/vl; chosen at run time).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

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

}  // namespace

const GemmKernels kGemmKernels{"avx512", &gemm_tile, 12, &scan};

}  // namespace avx512
}  // namespace quiver::simd::detail
