// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; called only when the CPU has them.
#include <immintrin.h>

#include <limits>

#include "simd/kernels_impl.h"

namespace quiver::simd::avx2 {
namespace {

inline float hsum(__m256 v) noexcept {
    const __m128 lo = _mm256_castps256_ps128(v);
    const __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Mask with the first n (< 8) lanes set, for the tail.
inline __m256i tail_mask(std::size_t n) noexcept {
    alignas(32) static const int kMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - n));
}

float l2_squared(const float* a, const float* b, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= d) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    if (i < d) {
        const __m256i m = tail_mask(d - i);
        const __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(d0, d0, s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

float dot(const float* a, const float* b, std::size_t d) noexcept {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= d) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i < d) {
        const __m256i m = tail_mask(d - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

float ip_distance(const float* a, const float* b, std::size_t d) noexcept { return 1.0f - dot(a, b, d); }
float norm_squared(const float* a, std::size_t d) noexcept { return dot(a, a, d); }

// MaxSim maxima: the query transposed (k-major), so one document value broadcast against 8 query
// rows is one FMA and no horizontal sum is ever needed. Four document rows at a time (independent
// accumulators keep the FMA pipes full), one or two blocks of 8 query rows.
template <int kBlocks>
void maxsim_block(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                  float* out) noexcept {
    __m256 best[kBlocks];
    for (int b = 0; b < kBlocks; ++b) best[b] = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    std::size_t j = 0;
    for (; j + 4 <= t; j += 4) {
        const float* d = doc + j * dim;
        __m256 acc[4][kBlocks];
        for (int r = 0; r < 4; ++r) {
            for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm256_setzero_ps();
        }
        for (std::size_t k = 0; k < dim; ++k) {
            const float* q = qt + k * stride;
            __m256 qv[kBlocks];
            for (int b = 0; b < kBlocks; ++b) qv[b] = _mm256_loadu_ps(q + 8 * b);
            for (int r = 0; r < 4; ++r) {
                const __m256 x = _mm256_set1_ps(d[r * dim + k]);
                for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm256_fmadd_ps(qv[b], x, acc[r][b]);
            }
        }
        for (int b = 0; b < kBlocks; ++b) {
            best[b] = _mm256_max_ps(best[b], _mm256_max_ps(_mm256_max_ps(acc[0][b], acc[1][b]),
                                                           _mm256_max_ps(acc[2][b], acc[3][b])));
        }
    }
    for (; j < t; ++j) {
        const float* d = doc + j * dim;
        __m256 acc[kBlocks];
        for (int b = 0; b < kBlocks; ++b) acc[b] = _mm256_setzero_ps();
        for (std::size_t k = 0; k < dim; ++k) {
            const __m256 x = _mm256_set1_ps(d[k]);
            for (int b = 0; b < kBlocks; ++b) acc[b] = _mm256_fmadd_ps(_mm256_loadu_ps(qt + k * stride + 8 * b), x, acc[b]);
        }
        for (int b = 0; b < kBlocks; ++b) best[b] = _mm256_max_ps(best[b], acc[b]);
    }
    for (int b = 0; b < kBlocks; ++b) _mm256_storeu_ps(out + 8 * b, best[b]);
}

void maxsim_maxima(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                   float* out) noexcept {
    // stride is a multiple of 16: two blocks of 8 query rows at a time.
    for (std::size_t c = 0; c < stride; c += 16) maxsim_block<2>(qt + c, stride, doc, t, dim, out + c);
}

}  // namespace

const Kernels kKernels{SimdLevel::kAvx2, &l2_squared, &dot, &ip_distance, &norm_squared, &maxsim_maxima};

}  // namespace quiver::simd::avx2
