// AVX2 + FMA kernels (this file alone is compiled with -mavx2 -mfma; see src/encode/CMakeLists.txt).
// exp uses Cody-Waite range reduction and a degree-5 polynomial (relative error ~2e-7); gelu uses
// Abramowitz & Stegun 7.1.28 (erf's absolute error <= 3e-7), within 1e-6 |x| of the exact one.
#include <immintrin.h>

#include <cmath>

#include "encode/bert_kernels.h"

namespace quiver::encode::detail {
namespace avx2 {
namespace {

inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_cvttps_epi32(fx);
    n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

// gelu by Abramowitz & Stegun 7.1.28 (the AVX-512 file explains it): Phi(v) = 1 - P^-16 / 2 for
// v >= 0 and P^-16 / 2 for v < 0, the reciprocal from rcp_ps (12 bits) and one Newton step.
inline __m256 gelu256(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
    const __m256 az = _mm256_min_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), _mm256_set1_ps(10.0f));
    __m256 p = _mm256_set1_ps(0.0000430638f);
    p = _mm256_fmadd_ps(p, az, _mm256_set1_ps(0.0002765672f));
    p = _mm256_fmadd_ps(p, az, _mm256_set1_ps(0.0001520143f));
    p = _mm256_fmadd_ps(p, az, _mm256_set1_ps(0.0092705272f));
    p = _mm256_fmadd_ps(p, az, _mm256_set1_ps(0.0422820123f));
    p = _mm256_fmadd_ps(p, az, _mm256_set1_ps(0.0705230784f));
    p = _mm256_fmadd_ps(p, az, one);
    p = _mm256_mul_ps(p, p);
    p = _mm256_mul_ps(p, p);
    p = _mm256_mul_ps(p, p);
    p = _mm256_mul_ps(p, p);
    __m256 r = _mm256_rcp_ps(p);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(p, r, one), r);
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 negative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 phi = _mm256_blendv_ps(_mm256_fnmadd_ps(r, half, one), _mm256_mul_ps(r, half), negative);
    return _mm256_mul_ps(v, phi);
}

inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

inline float hmax(__m256 v) {
    __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

void bias_gelu(float* x, const float* bias, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = x + r * cols;
        std::size_t c = 0;
        if (bias == nullptr) {
            for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(row + c, gelu256(_mm256_loadu_ps(row + c)));
        } else {
            for (; c + 8 <= cols; c += 8) {
                const __m256 v = _mm256_add_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(bias + c));
                _mm256_storeu_ps(row + c, gelu256(v));
            }
        }
        for (; c < cols; ++c) {
            const float v = row[c] + (bias != nullptr ? bias[c] : 0.0f);
            row[c] = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
        }
    }
}

void gelu(float* x, std::size_t ld, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) bias_gelu(x + r * ld, nullptr, 1, cols);
}

void layernorm_row(float* row, const float* gamma, const float* beta, std::size_t cols, float eps) {
    __m256 acc = _mm256_setzero_ps();
    std::size_t c = 0;
    for (; c + 8 <= cols; c += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(row + c));
    float sum = hsum(acc);
    for (; c < cols; ++c) sum += row[c];
    const float mean = sum / static_cast<float>(cols);
    const __m256 vmean = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (c = 0; c + 8 <= cols; c += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(row + c), vmean);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float var = hsum(acc);
    for (; c < cols; ++c) var += (row[c] - mean) * (row[c] - mean);
    var /= static_cast<float>(cols);
    const float rstd = 1.0f / std::sqrt(var + eps);
    const __m256 vrstd = _mm256_set1_ps(rstd);
    for (c = 0; c + 8 <= cols; c += 8) {
        const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + c), vmean), vrstd);
        _mm256_storeu_ps(row + c, _mm256_fmadd_ps(d, _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(beta + c)));
    }
    for (; c < cols; ++c) row[c] = (row[c] - mean) * rstd * gamma[c] + beta[c];
}

void layernorm(float* x, const float* gamma, const float* beta, std::size_t rows, std::size_t cols, float eps) {
    for (std::size_t r = 0; r < rows; ++r) layernorm_row(x + r * cols, gamma, beta, cols, eps);
}

void softmax_unscaled(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        std::size_t c = 0;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (; c + 8 <= cols; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(row + c));
        float mx = hmax(vmax);
        for (; c < cols; ++c) mx = row[c] > mx ? row[c] : mx;
        const __m256 vm = _mm256_set1_ps(mx);
        __m256 acc = _mm256_setzero_ps();
        for (c = 0; c + 8 <= cols; c += 8) {
            const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + c), vm));
            _mm256_storeu_ps(row + c, e);
            acc = _mm256_add_ps(acc, e);
        }
        float sum = hsum(acc);
        for (; c < cols; ++c) {
            row[c] = std::exp(row[c] - mx);
            sum += row[c];
        }
        inv_sum[r] = 1.0f / sum;
    }
}

// softmax = softmax_unscaled, then each row times its 1 / sum.
void softmax(float* s, std::size_t rows, std::size_t cols, std::size_t ld) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        float inv;
        softmax_unscaled(row, 1, cols, ld, &inv);
        const __m256 vinv = _mm256_set1_ps(inv);
        std::size_t c = 0;
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(row + c, _mm256_mul_ps(_mm256_loadu_ps(row + c), vinv));
        for (; c < cols; ++c) row[c] *= inv;
    }
}

}  // namespace

const BertKernels kBertKernels{"avx2", &bias_gelu, &layernorm, &softmax, &gelu, &softmax_unscaled};

}  // namespace avx2
}  // namespace quiver::encode::detail
