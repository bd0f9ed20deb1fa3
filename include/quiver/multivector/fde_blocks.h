/// @file fde_blocks.h
/// @brief MUVERA document encodings stored by partition block, for a flat scan of FDE inner products
/// that visits only the blocks a query occupies.
///
/// A query FDE block (repetition r, SimHash partition p) is the sum of the query's tokens in p, so it
/// is zero wherever no query token falls: a query of m tokens fills at most m of the 2^k_sim blocks of
/// each repetition. <F_q, F_doc> is therefore a sum over the query's non-zero blocks only.
///
/// Codes: one int8 per document and FDE coordinate i, with one scale per coordinate
/// (s_i = max over documents |F_doc[i]| / 127, code round(F_doc[i] / s_i) in [-127, 127]; a coordinate
/// that is 0 in every document has scale 0 and codes 0). Layout (format version 3, interleaved): each
/// block of `width` coordinates is cut into G = ceil(width / 4) groups of 4; group row g = block * G + j
/// holds, for every document d, the codes of coordinates block * width + 4 j + t (t < 4; 0 past the
/// block's width) at `codes[(g * n + d) * 4 + t]`. So a group row is n x 4 contiguous bytes and one
/// 32-bit lane holds one document's four coordinates, which is what `vpdpbusd` sums
/// (simd/int8_kernels.h `s8_dot4_rows`). Version 2 (coordinate-major, `codes[i * n + d]`) is still read
/// and re-laid out in memory.
///
/// Scoring a query FDE fq: over the coordinates of its non-zero blocks, a_i = fq_i * s_i is quantised
/// with one scale per query (alpha = max |a_i| / 127, q_i = round(a_i / alpha)), the integer sums
/// sum_i q_i * code_i are exact in int32 (the same integers at every SIMD level), and the score is
/// alpha times that sum. It differs from <fq, F_doc> by at most
///   sum_i |fq_i| s_i / 2 + alpha / 2 * sum_i |code_i|        (i over the non-zero blocks)
/// plus float rounding. The scan reads (non-zero blocks) x G x 4 x n bytes, in tiles of documents whose
/// int32 sums stay in L1: for k_sim 6, d_proj 8, r_reps 8 and a 12-token query at most 96 of 512
/// blocks, under 5% of what a flat float32 scan of the same FDEs reads.
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
    /// Groups of 4 coordinates per block: ceil(block_width() / 4).
    std::size_t groups() const noexcept { return (width_ + 3) / 4; }
    /// Bytes held (codes and scales).
    std::size_t bytes() const noexcept { return codes_.bytes() + scales_.bytes(); }

    /// The `c` best documents by (approximate) <fq, F_doc>, score descending then document ascending;
    /// fq is a query FDE of dim() floats. `scores` is scratch (resized to size()).
    std::vector<std::uint32_t> top(const float* fq, std::size_t c, std::vector<float>& scores) const;
    /// Writes every document's approximate score (see the file comment) into `scores` (size() floats);
    /// returns the number of non-zero query blocks scanned.
    std::size_t score_all(const float* fq, std::vector<float>& scores) const;
    /// The `c` best documents of `scores` (one per document, as score_all writes them), score
    /// descending then document ascending, leaving out documents whose score is -infinity (a caller
    /// excludes documents, e.g. deleted or filtered ones, by setting that).
    static std::vector<std::uint32_t> best(const std::vector<float>& scores, std::size_t c);

    /// The file layout write() produces (the containing MVIX file's version).
    inline static constexpr std::uint32_t kLayoutVersion = 3;
    /// Sections: u64 n, u64 width, f32 scales[dim], i8 codes[blocks * groups() * 4 * n] (interleaved).
    Status write(storage::FileWriter& w) const;
    /// Reads what write() wrote (`version` 3), or the coordinate-major codes of version 2 (re-laid out
    /// into memory), checking them against `mv` (dimension, block width) and `n` documents; views the
    /// mapping unless `in_memory` (or version 2). Damaged or mismatched sections are kDataLoss.
    static Result<FdeBlocks> read(storage::BinaryReader& r, const Muvera& mv, std::size_t n, bool in_memory,
                                  std::uint32_t version = kLayoutVersion);

private:
    std::size_t n_ = 0;
    std::size_t width_ = 0;
    storage::Buffer<float> scales_;       // dim
    storage::Buffer<std::int8_t> codes_;  // blocks x groups() x n x 4, interleaved (file comment)
};

}  // namespace quiver::multivector
