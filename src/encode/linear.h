// Private to encode/: a linear layer's weight, packed once, applied as y = x W^T (+ bias).
//
// float32: gemm.h panels. int8 (opt-in, LoadOptions::int8): dynamic quantisation as ONNX Runtime's
// MatMulInteger path does it: each weight row (output channel) is scaled symmetrically to
// [-127, 127] at load; each activation row is scaled asymmetrically to unsigned 8 bits at run time
// ([0, 255] with AVX-512 VNNI `vpdpbusd` or plain loops; [0, 127] with the AVX2 `vpmaddubsw` kernel,
// whose 16-bit pair sums would otherwise saturate), products accumulate exactly in int32 and
// y = s_x s_w (acc - z_x * sum_k w_q) + bias.
//
// Int8 panels hold kPanel = 32 output columns; each group of 4 inner positions is 32 x 4 bytes
// (column j's 4 weights contiguous, the vpdpbusd operand layout); K is zero-padded to a multiple of 4.
//
// Thread-safety: immutable after construction; apply() with distinct scratch may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "encode/gemm.h"

namespace quiver::encode::detail {

struct Int8Kernels {
    const char* name;
    std::int32_t act_max;  ///< activations are quantised to [0, act_max]
    std::size_t mr;        ///< rows per tile
    /// C[r][j] = rs[r] cs[j] (sum_g dot4(a[r][4g..], panel[g][j]) - zp[r] colsum[j]) (+ bias[j]) (+ C[r][j]).
    void (*tile)(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c,
                 std::size_t ldc, std::size_t mr, std::size_t nr, const float* row_scale, const std::int32_t* row_zero,
                 const float* col_scale, const std::int32_t* col_sum, const float* bias, bool accumulate);
    /// Quantises x[0, k) to q[0, k) (q[k, kp) = 0): scale = (max - min) / act_max over the row and 0,
    /// zero = round(-min / scale), q = clamp(round(x / scale) + zero, 0, act_max) (ties to even).
    void (*quantize)(const float* x, std::size_t k, std::size_t kp, std::int32_t act_max, std::uint8_t* q, float* scale,
                     std::int32_t* zero);
};

/// The portable row quantiser (every level's reference).
void quantize_row_scalar(const float* x, std::size_t k, std::size_t kp, std::int32_t act_max, std::uint8_t* q,
                         float* scale, std::int32_t* zero);
/// The scale and zero point of a row with minimum `lo` <= 0 and maximum `hi` >= 0 (shared by all levels).
inline void quant_params(float lo, float hi, std::int32_t act_max, float* scale, float* inv, std::int32_t* zero) {
    const auto levels = static_cast<float>(act_max);
    *scale = hi > lo ? (hi - lo) / levels : 1.0f;
    *inv = 1.0f / *scale;
    const float z = __builtin_nearbyintf(-lo * *inv);
    *zero = static_cast<std::int32_t>(z < 0.0f ? 0.0f : (z > levels ? levels : z));
}

/// The int8 kernels for `level` (0 scalar, 1 AVX2, 2 AVX-512 with VNNI), or null when unavailable.
const Int8Kernels* int8_kernels_for(int level) noexcept;
/// The best available at the active SIMD level.
const Int8Kernels& int8_kernels() noexcept;

namespace int8_scalar {
extern const Int8Kernels kInt8Kernels;
}
namespace int8_avx2 {
extern const Int8Kernels kInt8Kernels;
}
namespace int8_vnni {
extern const Int8Kernels kInt8Kernels;
}

struct LinearScratch {
    std::vector<std::uint8_t> xq;
    std::vector<float> row_scale;
    std::vector<std::int32_t> row_zero;
};

class Linear {
public:
    Linear() = default;
    /// `w` is row-major [n][k] (PyTorch's [out, in]).
    Linear(const float* w, std::size_t n, std::size_t k, bool int8);

    std::size_t n() const noexcept { return n_; }
    std::size_t k() const noexcept { return k_; }
    bool int8() const noexcept { return int8_; }

    /// C[m][n] = A[m][k] W^T (+ bias) (+ C when accumulating), then `epilogue` (GemmArgs::epilogue) on
    /// each finished block. A row stride lda, C row stride ldc. With a `team`, the columns are split
    /// over its threads (float32: panels claimed dynamically, so a thread slowed by other load does
    /// not hold the rest back).
    void apply(ThreadPool* team, const float* a, std::size_t lda, std::size_t m, float* c, std::size_t ldc,
               const float* bias, bool accumulate, LinearScratch& scratch,
               void (*epilogue)(float*, std::size_t, std::size_t, std::size_t) = nullptr) const;

    /// The float32 panels (gemm.h), for callers that compute a subset of the columns themselves;
    /// empty in int8 mode.
    const PackedB& packed() const noexcept { return f32_; }

private:
    std::size_t n_ = 0, k_ = 0, k4_ = 0;
    bool int8_ = false;
    PackedB f32_;
    std::vector<std::int8_t> q_;          // panels() * k4 * kPanel * 4
    std::vector<float> col_scale_;        // [panels * kPanel]
    std::vector<std::int32_t> col_sum_;   // [panels * kPanel]
};

}  // namespace quiver::encode::detail
