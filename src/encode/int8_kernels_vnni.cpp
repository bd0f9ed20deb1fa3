// int8 products with AVX-512 VNNI (this file alone is compiled with -mavx512vnni; used only when
// CPUID reports it). MR x 32 tiles: 2 * MR int32 accumulators, vpdpbusd (u8 x s8, 4 per lane).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "encode/linear.h"

namespace quiver::encode::detail {
namespace int8_vnni {
namespace {

// acc += dot4(a, b) per lane, in place. GCC 12 copies the accumulator of _mm512_dpbusd_epi32 through
// extra registers (and spills 24 of them); the asm form ties it to one register.
inline void dpbusd(__m512i& acc, __m512i a, __m512i b) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b)); }

inline __mmask16 tail_mask(std::size_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

template <int MR>
void tile_mr(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c, std::size_t ldc,
             std::size_t nr, const float* row_scale, const std::int32_t* row_zero, const float* col_scale,
             const std::int32_t* col_sum, const float* bias, bool accumulate) {
    __m512i acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (std::size_t g = 0; g < k4; ++g) {
        const __m512i b0 = _mm512_loadu_si512(panel + g * kPanel * 4);
        const __m512i b1 = _mm512_loadu_si512(panel + g * kPanel * 4 + 64);
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r) {
            std::int32_t four;
            __builtin_memcpy(&four, a + static_cast<std::size_t>(r) * lda + 4 * g, 4);
            const __m512i av = _mm512_set1_epi32(four);
            dpbusd(acc[r][0], av, b0);
            dpbusd(acc[r][1], av, b1);
        }
    }
    const __mmask16 m0 = tail_mask(nr);
    const __mmask16 m1 = nr > 16 ? tail_mask(nr - 16) : static_cast<__mmask16>(0);
    const __m512 cs0 = _mm512_maskz_loadu_ps(m0, col_scale);
    const __m512 cs1 = _mm512_maskz_loadu_ps(m1, col_scale + 16);
    const __m512i sum0 = _mm512_maskz_loadu_epi32(m0, col_sum);
    const __m512i sum1 = _mm512_maskz_loadu_epi32(m1, col_sum + 16);
    const __m512 bias0 = bias != nullptr ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias != nullptr ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
        const __m512i z = _mm512_set1_epi32(row_zero[r]);
        const __m512 rs = _mm512_set1_ps(row_scale[r]);
        const __m512i i0 = _mm512_sub_epi32(acc[r][0], _mm512_mullo_epi32(z, sum0));
        const __m512i i1 = _mm512_sub_epi32(acc[r][1], _mm512_mullo_epi32(z, sum1));
        __m512 v0 = _mm512_fmadd_ps(_mm512_mul_ps(rs, cs0), _mm512_cvtepi32_ps(i0), bias0);
        __m512 v1 = _mm512_fmadd_ps(_mm512_mul_ps(rs, cs1), _mm512_cvtepi32_ps(i1), bias1);
        float* cr = c + static_cast<std::size_t>(r) * ldc;
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

using TileFn = void (*)(const std::uint8_t*, std::size_t, const std::int8_t*, std::size_t, float*, std::size_t,
                        std::size_t, const float*, const std::int32_t*, const float*, const std::int32_t*, const float*,
                        bool);
constexpr TileFn kTiles[13] = {nullptr,      &tile_mr<1>, &tile_mr<2>, &tile_mr<3>,  &tile_mr<4>,
                               &tile_mr<5>,  &tile_mr<6>, &tile_mr<7>, &tile_mr<8>,  &tile_mr<9>,
                               &tile_mr<10>, &tile_mr<11>, &tile_mr<12>};

void tile(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c, std::size_t ldc,
          std::size_t mr, std::size_t nr, const float* row_scale, const std::int32_t* row_zero, const float* col_scale,
          const std::int32_t* col_sum, const float* bias, bool accumulate) {
    kTiles[mr](a, lda, panel, k4, c, ldc, nr, row_scale, row_zero, col_scale, col_sum, bias, accumulate);
}

void quantize(const float* x, std::size_t k, std::size_t kp, std::int32_t act_max, std::uint8_t* q, float* scale,
              std::int32_t* zero) {
    __m512 vlo = _mm512_setzero_ps(), vhi = _mm512_setzero_ps();
    for (std::size_t i = 0; i < k; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(k - i), x + i);  // masked lanes read 0: harmless
        vlo = _mm512_min_ps(vlo, v);
        vhi = _mm512_max_ps(vhi, v);
    }
    float inv;
    quant_params(_mm512_reduce_min_ps(vlo), _mm512_reduce_max_ps(vhi), act_max, scale, &inv, zero);
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vz = _mm512_set1_epi32(*zero);
    const __m512i vmax = _mm512_set1_epi32(act_max);
    for (std::size_t i = 0; i < k; i += 16) {
        const __mmask16 m = tail_mask(k - i);
        // cvtps rounds to nearest even under the default MXCSR, as nearbyint does.
        __m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv)), vz);
        v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_setzero_si512()), vmax);
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(v));
    }
    for (std::size_t i = k; i < kp; ++i) q[i] = 0;
}

}  // namespace

const Int8Kernels kInt8Kernels{"avx512-vnni", 255, 12, &tile, &quantize};

}  // namespace int8_vnni
}  // namespace quiver::encode::detail
