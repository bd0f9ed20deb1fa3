// AVX2 int8 kernels: sign-extended 16-bit multiply-adds (vpmaddwd), exact in int32. MaxSim keeps one
// document row's 16-byte chunks hot against four query rows at a time.
#include <immintrin.h>

#include <limits>

#include "simd/int8_kernels_impl.h"

namespace quiver::simd::avx2 {
namespace {

inline __m256i widen(const std::int8_t* p) noexcept {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline std::int32_t hsum(__m256i v) noexcept {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

inline std::int32_t tail_dot(const std::int8_t* a, const std::int8_t* b, std::size_t from, std::size_t d) noexcept {
    std::int32_t s = 0;
    for (std::size_t k = from; k < d; ++k) s += static_cast<std::int32_t>(a[k]) * b[k];
    return s;
}

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    __m256i acc = _mm256_setzero_si256();
    std::size_t k = 0;
    for (; k + 16 <= d; k += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(widen(a + k), widen(b + k)));
    return hsum(acc) + tail_dot(a, b, k, d);
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    const std::size_t full = d - d % 16;
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        const float scale = ds[j];
        std::size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const std::int8_t* q0 = q + i * d;
            const std::int8_t* q1 = q0 + d;
            const std::int8_t* q2 = q1 + d;
            const std::int8_t* q3 = q2 + d;
            __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
            __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
            for (std::size_t k = 0; k < full; k += 16) {
                const __m256i cv = widen(row + k);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(widen(q0 + k), cv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(widen(q1 + k), cv));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(widen(q2 + k), cv));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(widen(q3 + k), cv));
            }
            const float v0 = static_cast<float>(hsum(a0) + tail_dot(q0, row, full, d)) * scale;
            const float v1 = static_cast<float>(hsum(a1) + tail_dot(q1, row, full, d)) * scale;
            const float v2 = static_cast<float>(hsum(a2) + tail_dot(q2, row, full, d)) * scale;
            const float v3 = static_cast<float>(hsum(a3) + tail_dot(q3, row, full, d)) * scale;
            if (v0 > out[i]) out[i] = v0;
            if (v1 > out[i + 1]) out[i + 1] = v1;
            if (v2 > out[i + 2]) out[i + 2] = v2;
            if (v3 > out[i + 3]) out[i + 3] = v3;
        }
        for (; i < m; ++i) {
            const float v = static_cast<float>(s8_dot(q + i * d, row, d)) * scale;
            if (v > out[i]) out[i] = v;
        }
    }
}

void s8_axpy_rows(const float* a, std::size_t w, const std::int8_t* x, std::size_t stride, std::size_t count,
                  float* y) noexcept {
    std::size_t n = 0;
    for (; n + 8 <= count; n += 8) {
        __m256 acc = _mm256_loadu_ps(y + n);
        for (std::size_t c = 0; c < w; ++c) {
            const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + c * stride + n));
            const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(a[c]), v));
        }
        _mm256_storeu_ps(y + n, acc);
    }
    for (; n < count; ++n) {
        float acc = y[n];
        for (std::size_t c = 0; c < w; ++c) {
            const float term = a[c] * static_cast<float>(x[c * stride + n]);
            acc = acc + term;
        }
        y[n] = acc;
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{SimdLevel::kAvx2, false, &s8_dot, &s8_maxsim, &s8_axpy_rows};

}  // namespace quiver::simd::avx2
