// AVX-512 kernels (this file alone is compiled with -mavx512f/bw/dq/vl; chosen at run time by
// bert_kernels()). Same approximations as the AVX2 file (exp: Cody-Waite + degree-5 polynomial;
// gelu: Abramowitz & Stegun 7.1.28), 16 lanes, masked tails instead of scalar loops.
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

#include "encode/bert_kernels.h"

namespace quiver::encode::detail {
namespace avx512 {
namespace {

inline __mmask16 tail_mask(std::size_t n) { return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
    __m512 fx = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f));
    fx = _mm512_roundscale_ps(fx, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_cvttps_epi32(fx);
    n = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(n));
}

// gelu(v) = v Phi(v), Phi(v) = (1 + erf(v / sqrt 2)) / 2, by Abramowitz & Stegun 7.1.28:
// erf(z) = 1 - P(z)^-16 for z >= 0, P(z) = 1 + a1 z + ... + a6 z^6 (|error| <= 3e-7), so
// Phi(v) = 1 - P^-16 / 2 for v >= 0 and P^-16 / 2 for v < 0 (no cancellation on the negative side).
// About 20 operations per 16 values, no division and no exp: float32 evaluation stays within
// 8.3e-7 |v| of the exact gelu (checked over [-12, 12]). |z| is capped at 10 (erf(10) is 1 in float)
// so P^16 stays finite for the reciprocal's Newton step.
inline __m512 gelu512(__m512 v) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 az = _mm512_min_ps(_mm512_abs_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f))),
                                    _mm512_set1_ps(10.0f));
    __m512 p = _mm512_set1_ps(0.0000430638f);
    p = _mm512_fmadd_ps(p, az, _mm512_set1_ps(0.0002765672f));
    p = _mm512_fmadd_ps(p, az, _mm512_set1_ps(0.0001520143f));
    p = _mm512_fmadd_ps(p, az, _mm512_set1_ps(0.0092705272f));
    p = _mm512_fmadd_ps(p, az, _mm512_set1_ps(0.0422820123f));
    p = _mm512_fmadd_ps(p, az, _mm512_set1_ps(0.0705230784f));
    p = _mm512_fmadd_ps(p, az, one);
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p);
    // r = 1 / P^16: a 14-bit reciprocal and one Newton step (relative error about 2^-28).
    __m512 r = _mm512_rcp14_ps(p);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(p, r, one), r);
    const __m512 half = _mm512_set1_ps(0.5f);
    const __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 phi = _mm512_mask_mul_ps(_mm512_fnmadd_ps(r, half, one), negative, r, half);
    return _mm512_mul_ps(v, phi);
}

void bias_gelu(float* x, const float* bias, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = x + r * cols;
        for (std::size_t c = 0; c < cols; c += 16) {
            const __mmask16 m = tail_mask(cols - c);
            __m512 v = _mm512_maskz_loadu_ps(m, row + c);
            if (bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(row + c, m, gelu512(v));
        }
    }
}

void gelu(float* x, std::size_t ld, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) bias_gelu(x + r * ld, nullptr, 1, cols);
}

void layernorm_row(float* row, const float* gamma, const float* beta, std::size_t cols, float eps) {
    __m512 acc = _mm512_setzero_ps();
    for (std::size_t c = 0; c < cols; c += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(cols - c), row + c));
    const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(cols);
    const __m512 vmean = _mm512_set1_ps(mean);
    acc = _mm512_setzero_ps();
    for (std::size_t c = 0; c < cols; c += 16) {
        const __mmask16 m = tail_mask(cols - c);
        const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, row + c), vmean);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    const float var = _mm512_reduce_add_ps(acc) / static_cast<float>(cols);
    const __m512 vrstd = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
    for (std::size_t c = 0; c < cols; c += 16) {
        const __mmask16 m = tail_mask(cols - c);
        const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + c), vmean), vrstd);
        _mm512_mask_storeu_ps(row + c, m,
                              _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + c), _mm512_maskz_loadu_ps(m, beta + c)));
    }
}

void layernorm(float* x, const float* gamma, const float* beta, std::size_t rows, std::size_t cols, float eps) {
    for (std::size_t r = 0; r < rows; ++r) layernorm_row(x + r * cols, gamma, beta, cols, eps);
}

void softmax_unscaled(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (std::size_t c = 0; c < cols; c += 16) {
            vmax = _mm512_mask_max_ps(vmax, tail_mask(cols - c), vmax, _mm512_maskz_loadu_ps(tail_mask(cols - c), row + c));
        }
        const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 acc = _mm512_setzero_ps();
        for (std::size_t c = 0; c < cols; c += 16) {
            const __mmask16 m = tail_mask(cols - c);
            const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + c), vm)));
            _mm512_mask_storeu_ps(row + c, m, e);
            acc = _mm512_add_ps(acc, e);
        }
        inv_sum[r] = 1.0f / _mm512_reduce_add_ps(acc);
    }
}

// softmax = softmax_unscaled, then each row times its 1 / sum.
void softmax(float* s, std::size_t rows, std::size_t cols, std::size_t ld) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        float inv;
        softmax_unscaled(row, 1, cols, ld, &inv);
        const __m512 vinv = _mm512_set1_ps(inv);
        for (std::size_t c = 0; c < cols; c += 16) {
            const __mmask16 m = tail_mask(cols - c);
            _mm512_mask_storeu_ps(row + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + c), vinv));
        }
    }
}

}  // namespace

const BertKernels kBertKernels{"avx512", &bias_gelu, &layernorm, &softmax, &gelu, &softmax_unscaled};

}  // namespace avx512
}  // namespace quiver::encode::detail
