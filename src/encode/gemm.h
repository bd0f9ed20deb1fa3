// Private to encode/: matrix products of the transformer forward pass, with weights packed once.
//
// C[m][n] = alpha * sum_k A[m][k] * W[n][k] (+ bias[n]) (+ C[m][n] when accumulating): W is a linear
// layer's weight in PyTorch's [out, in] layout. `PackedB` stores W as panels of kPanel = 32 output
// columns, each panel K rows of 32 contiguous floats (zero-padded past N), 64-byte aligned, so the
// micro-kernel (12 x 32 on AVX-512, 6 x 16 twice on AVX2, plain loops on scalar) streams it
// linearly. Attention reuses the same kernel: keys and values are packed per (sequence, head).
//
// Thread-safety: a PackedB is immutable after packing; gemm() on disjoint outputs may run
// concurrently. gemm_parallel() splits the panels over a ThreadPool (one call at a time per pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace quiver {
class ThreadPool;
}

namespace quiver::encode::detail {

inline constexpr std::size_t kPanel = 32;

/// A 64-byte aligned float buffer (contents undefined after growth).
/// (Not copyable: the data pointer points into the buffer. Movable: a vector's move keeps its storage.)
class AlignedFloats {
public:
    AlignedFloats() = default;
    AlignedFloats(AlignedFloats&&) noexcept = default;
    AlignedFloats& operator=(AlignedFloats&&) noexcept = default;
    AlignedFloats(const AlignedFloats&) = delete;
    AlignedFloats& operator=(const AlignedFloats&) = delete;
    float* data() noexcept { return p_; }
    const float* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    void ensure(std::size_t n);

private:
    std::vector<float> buf_;
    float* p_ = nullptr;
    std::size_t n_ = 0;
};

struct PackedB {
    std::size_t n = 0;  ///< output columns
    std::size_t k = 0;  ///< inner dimension
    AlignedFloats data; ///< panels() * k * kPanel floats
    std::size_t panels() const noexcept { return (n + kPanel - 1) / kPanel; }
    const float* panel(std::size_t p) const noexcept { return data.data() + p * k * kPanel; }
};

/// Packs W (row-major [n][k], row stride ld) for C = A W^T.
void pack_rows(const float* w, std::size_t n, std::size_t k, std::size_t ld, PackedB& out);
/// Packs V (row-major [k][n], row stride ld) for C = A V (the attention's probabilities times values).
void pack_cols(const float* v, std::size_t k, std::size_t n, std::size_t ld, PackedB& out);

struct GemmArgs {
    const float* a = nullptr;
    std::size_t lda = 0;
    std::size_t m = 0;
    float* c = nullptr;
    std::size_t ldc = 0;
    const float* bias = nullptr;  ///< n entries or null
    bool accumulate = false;      ///< add the product to C's current values
    float alpha = 1.0f;
};

/// Computes the columns of panels [panel_begin, panel_end) (all when panel_end == 0).
void gemm(const GemmArgs& g, const PackedB& b, std::size_t panel_begin = 0, std::size_t panel_end = 0);
/// gemm() with the panels split over `pool` (null or one thread: on the caller).
void gemm_parallel(ThreadPool* pool, const GemmArgs& g, const PackedB& b);

}  // namespace quiver::encode::detail
