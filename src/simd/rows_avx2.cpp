// AVX2 row distances (quiver/simd/rows.h; this file alone is compiled with AVX2 and FMA flags and
// chosen at run time): four rows in flight, 8 dimensions per step, a scalar tail, one horizontal sum
// per row.
#include <immintrin.h>

#include "simd/rows_kernels.h"

namespace quiver::simd::detail::avx2 {
namespace {

template <bool L2>
inline __m256 term(__m256 qv, __m256 xv, __m256 acc) {
    if (L2) {
        const __m256 d = _mm256_sub_ps(qv, xv);
        return _mm256_fmadd_ps(d, d, acc);
    }
    return _mm256_fmadd_ps(qv, xv, acc);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <bool L2>
inline float tail_sum(const float* q, const float* x, std::size_t from, std::size_t dim) {
    float s = 0.0f;
    for (std::size_t j = from; j < dim; ++j) {
        const float d = L2 ? q[j] - x[j] : q[j] * x[j];
        s += L2 ? d * d : d;
    }
    return s;
}

template <bool L2>
void rows(const float* q, const float* base, std::size_t stride, std::size_t n, std::size_t dim,
          float* out) noexcept {
    const std::size_t full = dim / 8 * 8;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float* x0 = base + i * stride;
        const float* x1 = x0 + stride;
        const float* x2 = x1 + stride;
        const float* x3 = x2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
               a3 = _mm256_setzero_ps();
        for (std::size_t j = 0; j < full; j += 8) {
            const __m256 qv = _mm256_loadu_ps(q + j);
            a0 = term<L2>(qv, _mm256_loadu_ps(x0 + j), a0);
            a1 = term<L2>(qv, _mm256_loadu_ps(x1 + j), a1);
            a2 = term<L2>(qv, _mm256_loadu_ps(x2 + j), a2);
            a3 = term<L2>(qv, _mm256_loadu_ps(x3 + j), a3);
        }
        const float s0 = hsum(a0) + tail_sum<L2>(q, x0, full, dim);
        const float s1 = hsum(a1) + tail_sum<L2>(q, x1, full, dim);
        const float s2 = hsum(a2) + tail_sum<L2>(q, x2, full, dim);
        const float s3 = hsum(a3) + tail_sum<L2>(q, x3, full, dim);
        out[i] = L2 ? s0 : 1.0f - s0;
        out[i + 1] = L2 ? s1 : 1.0f - s1;
        out[i + 2] = L2 ? s2 : 1.0f - s2;
        out[i + 3] = L2 ? s3 : 1.0f - s3;
    }
    for (; i < n; ++i) {
        const float* x = base + i * stride;
        __m256 a = _mm256_setzero_ps();
        for (std::size_t j = 0; j < full; j += 8) a = term<L2>(_mm256_loadu_ps(q + j), _mm256_loadu_ps(x + j), a);
        const float s = hsum(a) + tail_sum<L2>(q, x, full, dim);
        out[i] = L2 ? s : 1.0f - s;
    }
}

}  // namespace

const RowKernels kRowKernels{&rows<true>, &rows<false>};

}  // namespace quiver::simd::detail::avx2
