// Private to encode/: the element-wise kernels of the transformer forward pass (everything that is
// not a matrix product; those are quiver/simd/gemm.h). One table per instruction set, chosen once per process from
// simd::active_simd_level() (QUIVER_SIMD=scalar forces the portable one).
//
// Levels: scalar, avx2 (AVX2 + FMA), avx512 (F/BW/DQ/VL; its own translation unit).
// All matrices are row-major; `rows` x `cols` with row stride `cols` unless a `ld` is given.
#pragma once

#include <cstddef>

namespace quiver::encode::detail {

struct BertKernels {
    const char* name;
    /// x[r][c] = gelu(x[r][c] + bias[c]) (bias may be null: no bias), gelu(v) = v/2 (1 + erf(v / sqrt 2)) (|error| < 1e-6 |v|)
    void (*bias_gelu)(float* x, const float* bias, std::size_t rows, std::size_t cols);
    /// x[r] = LayerNorm(x[r]) * gamma + beta (population variance, eps inside the root)
    void (*layernorm)(float* x, const float* gamma, const float* beta, std::size_t rows, std::size_t cols,
                      float eps);
    /// Each of `rows` rows (stride ld) of `cols` values becomes softmax(row).
    void (*softmax)(float* s, std::size_t rows, std::size_t cols, std::size_t ld);
    /// x[r][c] = gelu(x[r][c]) for `rows` rows of `cols` values, row stride `ld` (a GEMM epilogue:
    /// simd::GemmArgs::epilogue applies it to each finished block of the product while it is in L1).
    void (*gelu)(float* x, std::size_t ld, std::size_t rows, std::size_t cols);
    /// softmax without its last pass: each row becomes exp(row - max(row)) and inv_sum[r] gets
    /// 1 / sum(row), for the caller to scale what it computes from the row (attention scales a head's
    /// d context values per query instead of the n scores).
    void (*softmax_unscaled)(float* s, std::size_t rows, std::size_t cols, std::size_t ld, float* inv_sum);
};

/// The kernels of the active SIMD level (QUIVER_SIMD may lower it).
const BertKernels& bert_kernels() noexcept;
/// The kernels of `level`, or null when this CPU or build cannot run them (tests run every level).
const BertKernels* bert_kernels_for(int level) noexcept;

namespace scalar {
extern const BertKernels kBertKernels;
}
namespace avx2 {
extern const BertKernels kBertKernels;
}
namespace avx512 {
extern const BertKernels kBertKernels;
}

}  // namespace quiver::encode::detail
