/// @file fde_blocks.h
/// @brief MUVERA document encodings stored by partition block, for a flat scan of FDE inner products
/// that visits only the blocks a query occupies.
///
/// A query FDE block (repetition r, SimHash partition p) is the sum of the query's tokens in p, so it
/// is zero wherever no query token falls: a query of m tokens fills at most m of the 2^k_sim blocks of
/// each repetition. <F_q, F_doc> is therefore a sum over the query's non-zero blocks only. This layout
/// keeps, per FDE coordinate i = block * width + j, the coordinate of every document contiguously
/// (column-major: `codes[i * n + doc]`), as int8 codes with one scale per coordinate
/// (s_i = max over documents |F_doc[i]| / 127, code round(F_doc[i] / s_i)). A query scans
/// (non-zero blocks) x width x n bytes: for k_sim 6, d_proj 8, r_reps 8 and 12 query tokens at most
/// 96 of 512 blocks, under 5% of what a flat float32 scan of the same FDEs reads, with the same
/// ranking up to the int8 rounding.
/// Needs FDEs without the final projection (d_final = 0: the Count-Sketch mixes blocks).
///
/// Scores are approximate FDE inner products used only to pick candidates; the multi-vector index
/// re-ranks them by MaxSim. Order: score descending, then document ascending.
///
/// Thread-safety: immutable after build/read; `top` is const and safe concurrently (scratch per call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/multivector/muvera.h"
#include "quiver/multivector/token_store.h"
#include "quiver/storage/buffer.h"
#include "quiver/storage/file_format.h"

namespace quiver::multivector {

class FdeBlocks {
public:
    FdeBlocks() = default;
    FdeBlocks(FdeBlocks&&) noexcept = default;
    FdeBlocks& operator=(FdeBlocks&&) noexcept = default;

    /// Encodes every document of `store` with `mv` (d_final must be 0: kInvalidArgument otherwise),
    /// twice (scales, then codes) on `threads` threads (0 = all cores).
    static Result<FdeBlocks> build(const Muvera& mv, const TokenStore& store, std::size_t threads);

    std::size_t size() const noexcept { return n_; }
    std::size_t dim() const noexcept { return scales_.size(); }
    std::size_t block_width() const noexcept { return width_; }
    /// Bytes held (codes and scales).
    std::size_t bytes() const noexcept { return codes_.bytes() + scales_.bytes(); }

    /// The `c` best documents by (approximate) <fq, F_doc>, score descending then document ascending;
    /// fq is a query FDE of dim() floats. `scores` is scratch (resized to size()).
    std::vector<std::uint32_t> top(const float* fq, std::size_t c, std::vector<float>& scores) const;
    /// Writes every document's approximate score into `scores` (size() floats); returns the number of
    /// non-zero query blocks scanned.
    std::size_t score_all(const float* fq, std::vector<float>& scores) const;
    /// The `c` best documents of `scores` (one per document, as score_all writes them), score
    /// descending then document ascending, leaving out documents whose score is -infinity (a caller
    /// excludes documents, e.g. deleted or filtered ones, by setting that).
    static std::vector<std::uint32_t> best(const std::vector<float>& scores, std::size_t c);

    /// Sections: u64 n, u64 width, f32 scales[dim], i8 codes[dim * n].
    Status write(storage::FileWriter& w) const;
    /// Reads what write() wrote, checking it against `mv` (dimension, block width) and `n` documents;
    /// views the mapping unless `in_memory`.
    static Result<FdeBlocks> read(storage::BinaryReader& r, const Muvera& mv, std::size_t n, bool in_memory);

private:
    std::size_t n_ = 0;
    std::size_t width_ = 0;
    storage::Buffer<float> scales_;       // dim
    storage::Buffer<std::int8_t> codes_;  // dim x n, coordinate-major
};

}  // namespace quiver::multivector
