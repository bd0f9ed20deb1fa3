// Portable kernels (reference semantics for the AVX2 versions).
#include <cmath>

#include "encode/bert_kernels.h"
#include "quiver/simd/kernels.h"

namespace quiver::encode::detail {
namespace scalar {
namespace {

void bias_gelu(float* x, const float* bias, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = x + r * cols;
        for (std::size_t c = 0; c < cols; ++c) {
            const float v = row[c] + (bias != nullptr ? bias[c] : 0.0f);
            row[c] = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
        }
    }
}

void gelu(float* x, std::size_t ld, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) bias_gelu(x + r * ld, nullptr, 1, cols);
}

void layernorm_row(float* row, const float* gamma, const float* beta, std::size_t cols, float eps) {
    float mean = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) mean += row[c];
    mean /= static_cast<float>(cols);
    float var = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) var += (row[c] - mean) * (row[c] - mean);
    var /= static_cast<float>(cols);
    const float rstd = 1.0f / std::sqrt(var + eps);
    for (std::size_t c = 0; c < cols; ++c) row[c] = (row[c] - mean) * rstd * gamma[c] + beta[c];
}

void layernorm(float* x, const float* gamma, const float* beta, std::size_t rows, std::size_t cols, float eps) {
    for (std::size_t r = 0; r < rows; ++r) layernorm_row(x + r * cols, gamma, beta, cols, eps);
}

void softmax_unscaled(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        float mx = row[0];
        for (std::size_t c = 1; c < cols; ++c) mx = row[c] > mx ? row[c] : mx;
        float sum = 0.0f;
        for (std::size_t c = 0; c < cols; ++c) {
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
        for (std::size_t c = 0; c < cols; ++c) row[c] *= inv;
    }
}

}  // namespace

const BertKernels kBertKernels{"scalar", &bias_gelu, &layernorm, &softmax, &gelu, &softmax_unscaled};

}  // namespace scalar

const BertKernels* bert_kernels_for(int level) noexcept {
    const auto l = static_cast<simd::SimdLevel>(level);
    if (simd::kernels_for(l) == nullptr) return nullptr;  // the CPU or the build lacks this level
    switch (l) {
        case simd::SimdLevel::kScalar: return &scalar::kBertKernels;
        case simd::SimdLevel::kAvx2: return &avx2::kBertKernels;
        case simd::SimdLevel::kAvx512: return &avx512::kBertKernels;
    }
    return nullptr;
}

const BertKernels& bert_kernels() noexcept {
    static const BertKernels* k = bert_kernels_for(static_cast<int>(simd::active_simd_level()));
    return k != nullptr ? *k : scalar::kBertKernels;
}

}  // namespace quiver::encode::detail
