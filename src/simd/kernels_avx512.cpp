// AVX-512 (F) kernels. Compiled with -mavx512f...; called only when the CPU and OS support them.
// GCC 12.2 reports the AVX-512 intrinsics' deliberately undefined pass-through operands
// (_mm512_undefined_*) as uninitialised once they inline into loops (GCC bug 105593, fixed in 12.3);
// the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <limits>

#include "simd/kernels_impl.h"

namespace quiver::simd::avx512 {
namespace {

inline __mmask16 tail_mask(std::size_t n) noexcept {
    return static_cast<__mmask16>((1u << n) - 1u);
}

float l2_squared(const float* a, const float* b, std::size_t d) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i + 16 <= d) {
        const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        i += 16;
    }
    if (i < d) {
        const __mmask16 m = tail_mask(d - i);
        const __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d0, d0, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float dot(const float* a, const float* b, std::size_t d) noexcept {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= d) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < d) {
        const __mmask16 m = tail_mask(d - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float ip_distance(const float* a, const float* b, std::size_t d) noexcept { return 1.0f - dot(a, b, d); }
float norm_squared(const float* a, std::size_t d) noexcept { return dot(a, a, d); }

// MaxSim maxima: the query transposed (k-major), so one document value broadcast against 16 query
// rows is one FMA and no horizontal sum is ever needed. Eight document rows at a time while they last
// (eight independent accumulator chains cover the FMA latency on both pipes), then four, then one; one
// or two blocks of 16 query rows. Each sum is one chain of FMAs in k order whichever group computes it.
template <int kRows, int kBlocks>
inline void maxsim_rows(const float* qt, std::size_t stride, const float* d, std::size_t dim, __m512* best) noexcept {
    __m512 acc[kRows][kBlocks];
    for (int r = 0; r < kRows; ++r) {
        for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_ps();
    }
    for (std::size_t k = 0; k < dim; ++k) {
        const float* q = qt + k * stride;
        __m512 qv[kBlocks];
        for (int b = 0; b < kBlocks; ++b) qv[b] = _mm512_loadu_ps(q + 16 * b);
        for (int r = 0; r < kRows; ++r) {
            const __m512 x = _mm512_set1_ps(d[r * dim + k]);
            for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_fmadd_ps(qv[b], x, acc[r][b]);
        }
    }
    for (int r = 0; r < kRows; ++r) {
        for (int b = 0; b < kBlocks; ++b) best[b] = _mm512_max_ps(best[b], acc[r][b]);
    }
}

template <int kBlocks>
void maxsim_block(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                  float* out) noexcept {
    __m512 best[kBlocks];
    for (int b = 0; b < kBlocks; ++b) best[b] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    std::size_t j = 0;
    for (; j + 8 <= t; j += 8) maxsim_rows<8, kBlocks>(qt, stride, doc + j * dim, dim, best);
    if (j + 4 <= t) {
        maxsim_rows<4, kBlocks>(qt, stride, doc + j * dim, dim, best);
        j += 4;
    }
    for (; j < t; ++j) maxsim_rows<1, kBlocks>(qt, stride, doc + j * dim, dim, best);
    for (int b = 0; b < kBlocks; ++b) _mm512_storeu_ps(out + 16 * b, best[b]);
}

void maxsim_maxima(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                   float* out) noexcept {
    std::size_t c = 0;
    for (; c + 32 <= stride; c += 32) maxsim_block<2>(qt + c, stride, doc, t, dim, out + c);
    if (c < stride) maxsim_block<1>(qt + c, stride, doc, t, dim, out + c);
}

}  // namespace

const Kernels kKernels{SimdLevel::kAvx512, &l2_squared, &dot, &ip_distance, &norm_squared, &maxsim_maxima};

}  // namespace quiver::simd::avx512
