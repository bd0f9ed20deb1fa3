// AVX-512 row distances (quiver/simd/rows.h; this file alone is compiled with AVX-512 flags and
// chosen at run time): four rows in flight, 16 dimensions per step, a masked tail, one horizontal sum
// per row.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "simd/rows_kernels.h"

namespace quiver::simd::detail::avx512 {
namespace {

template <bool L2>
inline __m512 term(__m512 qv, __m512 xv, __m512 acc) {
    if (L2) {
        const __m512 d = _mm512_sub_ps(qv, xv);
        return _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_fmadd_ps(qv, xv, acc);
}

template <bool L2>
void rows(const float* q, const float* base, std::size_t stride, std::size_t n, std::size_t dim,
          float* out) noexcept {
    const std::size_t full = dim / 16 * 16;
    const __mmask16 tail = static_cast<__mmask16>((1u << (dim - full)) - 1);
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float* x0 = base + i * stride;
        const float* x1 = x0 + stride;
        const float* x2 = x1 + stride;
        const float* x3 = x2 + stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
               a3 = _mm512_setzero_ps();
        for (std::size_t j = 0; j < full; j += 16) {
            const __m512 qv = _mm512_loadu_ps(q + j);
            a0 = term<L2>(qv, _mm512_loadu_ps(x0 + j), a0);
            a1 = term<L2>(qv, _mm512_loadu_ps(x1 + j), a1);
            a2 = term<L2>(qv, _mm512_loadu_ps(x2 + j), a2);
            a3 = term<L2>(qv, _mm512_loadu_ps(x3 + j), a3);
        }
        if (tail != 0) {
            const __m512 qv = _mm512_maskz_loadu_ps(tail, q + full);
            a0 = term<L2>(qv, _mm512_maskz_loadu_ps(tail, x0 + full), a0);
            a1 = term<L2>(qv, _mm512_maskz_loadu_ps(tail, x1 + full), a1);
            a2 = term<L2>(qv, _mm512_maskz_loadu_ps(tail, x2 + full), a2);
            a3 = term<L2>(qv, _mm512_maskz_loadu_ps(tail, x3 + full), a3);
        }
        const float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1), s2 = _mm512_reduce_add_ps(a2),
                    s3 = _mm512_reduce_add_ps(a3);
        out[i] = L2 ? s0 : 1.0f - s0;
        out[i + 1] = L2 ? s1 : 1.0f - s1;
        out[i + 2] = L2 ? s2 : 1.0f - s2;
        out[i + 3] = L2 ? s3 : 1.0f - s3;
    }
    for (; i < n; ++i) {
        const float* x = base + i * stride;
        __m512 a = _mm512_setzero_ps();
        for (std::size_t j = 0; j < full; j += 16) a = term<L2>(_mm512_loadu_ps(q + j), _mm512_loadu_ps(x + j), a);
        if (tail != 0) a = term<L2>(_mm512_maskz_loadu_ps(tail, q + full), _mm512_maskz_loadu_ps(tail, x + full), a);
        const float s = _mm512_reduce_add_ps(a);
        out[i] = L2 ? s : 1.0f - s;
    }
}

}  // namespace

const RowKernels kRowKernels{&rows<true>, &rows<false>};

}  // namespace quiver::simd::detail::avx512
