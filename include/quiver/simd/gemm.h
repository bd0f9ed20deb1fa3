/// @file gemm.h
/// @brief Single-precision matrix products with the right-hand side packed once: the transformer's
/// linear layers and attention (encode/) and batched exact search (index/ FlatIndex, through the fused
/// distance filter GemmKernels::scan) share them.
///
/// C[m][n] = alpha * sum_k A[m][k] * W[n][k] (+ bias[n]) (+ C[m][n] when accumulating). W is given
/// row-major [n][k] (a linear layer's weight in PyTorch's [out, in] layout, or base vectors) and
/// packed by `pack_rows` into panels of kGemmPanel = 32 output columns: each panel is K rows of 32
/// contiguous floats (zero-padded past N), 64-byte aligned, so the micro-kernel streams it linearly.
/// `pack_cols` packs a row-major [k][n] right-hand side the same way (attention's values).
///
/// Micro-kernels: 12 x 32 on AVX-512, two 6 x 16 halves on AVX2, plain loops on scalar; chosen once
/// per process from simd::active_simd_level() (QUIVER_SIMD lowers it). gemm() walks row blocks of
/// about 96 rows, then panels, then K blocks (the whole K up to 2,048: a panel streams from L2 as fast as
/// from L1, measured; later K blocks add onto C), rows split into tiles of equal height.
/// Summation order depends on the level and on K blocking, so results agree with a double-precision
/// reference to about 1e-6 relative, not bit for bit across levels.
///
/// Thread-safety: a PackedB is immutable after packing; gemm() calls on disjoint outputs may run
/// concurrently. gemm_parallel() splits the panels over a ThreadPool (one call at a time per pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quiver/simd/kernels.h"

namespace quiver {
class ThreadPool;
}

namespace quiver::simd {

inline constexpr std::size_t kGemmPanel = 32;

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
    std::size_t n = 0;   ///< output columns
    std::size_t k = 0;   ///< inner dimension
    AlignedFloats data;  ///< panels() * k * kGemmPanel floats
    std::size_t panels() const noexcept { return (n + kGemmPanel - 1) / kGemmPanel; }
    const float* panel(std::size_t p) const noexcept { return data.data() + p * k * kGemmPanel; }
};

/// Packs W (row-major [n][k], row stride ld) for C = A W^T.
void pack_rows(const float* w, std::size_t n, std::size_t k, std::size_t ld, PackedB& out);
/// Packs V (row-major [k][n], row stride ld) for C = A V.
void pack_cols(const float* v, std::size_t k, std::size_t n, std::size_t ld, PackedB& out);

struct GemmArgs {
    const float* a = nullptr;  ///< m rows of k floats, row stride lda (no alignment required)
    std::size_t lda = 0;
    std::size_t m = 0;
    float* c = nullptr;        ///< m rows of n floats, row stride ldc
    std::size_t ldc = 0;
    const float* bias = nullptr;  ///< n entries or null
    bool accumulate = false;      ///< add the product to C's current values
    float alpha = 1.0f;
    /// Applied to each finished block of C (`rows` x `cols` at c, row stride ldc; after alpha, bias and
    /// accumulate) while the block is still in L1: an activation fused into the product. Null: none.
    void (*epilogue)(float* c, std::size_t ldc, std::size_t rows, std::size_t cols) = nullptr;
};

/// One level's micro-kernel: C[r][j] = alpha * sum_i a[r][i] * panel[i][j] (+ bias[j]) (+ C[r][j] when
/// `accumulate`) for r < mr <= this->mr, j < nr <= kGemmPanel; `panel` is k rows of kGemmPanel floats.
/// Columns j >= nr of C are never written.
struct GemmKernels {
    const char* name;
    void (*tile)(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
                 std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha);
    std::size_t mr;  ///< rows per tile at most
    /// Exact-search scan of one tile, the product never leaving registers: `a` holds mr <= this->mr base
    /// rows (row stride lda) and `panel` a packed panel of kGemmPanel queries (pack_rows of the queries).
    /// For r < mr, j < kGemmPanel: d[r][j] = offset[j] + (row_add ? row_add[r] : 0) + scale * (a_r . q_j),
    /// kept when d[r][j] <= bound[j]. (Cosine / inner product: offset 1, scale -1; L2: offset |q|^2,
    /// row_add the base rows' squared norms, scale -2.) `offset` and `bound` have kGemmPanel entries;
    /// columns past the queries must have bound -infinity. For every row with a kept column, bit r of
    /// the result is set, hits[r] gets the kept columns' bits (bit j) and d_out[r * kGemmPanel + j] the
    /// distances of the row (rows with nothing kept are left untouched). `nr` <= kGemmPanel is the
    /// number of real columns (levels may skip the work of columns >= nr, whose bound excludes them).
    /// Levels round differently (fused multiply-add, summation order): the exact search re-scores.
    std::uint32_t (*scan)(const float* a, std::size_t lda, const float* panel, std::size_t k, std::size_t mr,
                          std::size_t nr, const float* row_add, const float* offset, float scale, const float* bound,
                          float* d_out, std::uint32_t* hits);
    /// One panel of pack_rows: panel[i * kGemmPanel + j] = w[j * ld + i] for i < k, j < cols <= kGemmPanel,
    /// and 0 for cols <= j < kGemmPanel (a transpose: AVX-512 moves 16 x 16 blocks through registers).
    void (*pack_panel)(const float* w, std::size_t cols, std::size_t k, std::size_t ld, float* panel);
};

/// The micro-kernel of the active level.
const GemmKernels& gemm_kernels() noexcept;
/// The micro-kernel of `level`, or null when this CPU or build cannot run it (tests run every level).
const GemmKernels* gemm_kernels_for(SimdLevel level) noexcept;

/// Computes the columns of panels [panel_begin, panel_end) (all when panel_end == 0) with `kernels`
/// (null: the active level's).
void gemm(const GemmArgs& g, const PackedB& b, std::size_t panel_begin = 0, std::size_t panel_end = 0,
          const GemmKernels* kernels = nullptr);
/// gemm() for the transformer's products (encode/): the first row tile of each K block of B fetches the
/// next K block into L2 while it runs, so the next block's first tile does not wait on L3 (a query's
/// products stream every weight once; a batch's reuse each block for 8 tiles). Rows are split into tiles
/// of equal height over all m (then 8 tiles per row block), so a group of 128-token sequences runs in
/// tiles of 11-12 rows. Same K blocks, so the same sums as gemm() bit for bit. Levels without the
/// kernel (AVX2, scalar) run gemm().
void gemm_stream(const GemmArgs& g, const PackedB& b, std::size_t panel_begin = 0, std::size_t panel_end = 0);
/// gemm() with the panels split over `pool` (null or one thread: on the caller).
void gemm_parallel(ThreadPool* pool, const GemmArgs& g, const PackedB& b);

}  // namespace quiver::simd
