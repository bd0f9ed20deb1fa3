/// @file flat_index.h
/// @brief Exact (brute-force) search: the ground truth for every other index.
///
/// Single queries scan with the SIMD kernel (split over the base across threads when there are
/// fewer queries than threads); batches (>= 16 queries) use matrix products (quiver/simd/gemm.h, the
/// packed AVX-512/AVX2 kernel, not BLAS) over blocks of the base split across threads, each block's
/// scores filtered into per-query top-k lists while still in cache, then an exact re-score of the best
/// candidates in double precision, so the returned order is the exact order even where float rounding
/// would tie.
/// Cosine vectors are normalised on insert and queries at search time.
#pragma once

#include <memory>
#include <unordered_map>

#include "quiver/index/vector_index.h"
#include "quiver/simd/rows.h"
#include "quiver/storage/file_format.h"

namespace quiver::index {

namespace detail {
class SearchPool;  // src/index/search_pool.h
}

class FlatIndex final : public VectorIndex {
public:
    static Result<std::unique_ptr<FlatIndex>> create(std::size_t dim, Metric metric);
    /// Maps `path` (zero copy). The vectors section is checked on first use (verify()), or now with
    /// `verify`.
    static Result<std::unique_ptr<FlatIndex>> open(const std::string& path, bool verify = false);
    ~FlatIndex() override;

    IndexInfo info() const override;
    Status add(MatrixView<float> vectors, std::span<const Label> labels) override;
    Result<std::size_t> remove(std::span<const Label> labels) override;
    /// Thread-safe. `params.threads` threads split the queries (and the base, for one query).
    Result<SearchResults> search(MatrixView<float> queries, const SearchParams& params) const override;
    Status save(const std::string& path) const override;
    std::size_t memory_bytes() const override;
    Status verify() const override;

    /// Stored (possibly normalised) vector of slot i, for tests and re-ranking (of an opened index: after
    /// verify() passed).
    const float* vector(std::size_t slot) const noexcept { return base_ + slot * dim_; }
    /// Number of slots (live and removed).
    std::size_t slots() const noexcept { return labels_.size(); }

private:
    friend struct FlatIo;
    FlatIndex(std::size_t dim, Metric metric);
    /// Copies mapped vectors into owned memory before the first mutation after open().
    void materialize();
    /// Exact top-`kk` candidate slots per query (float), before the double-precision re-score.
    void candidates_gemm(MatrixView<float> queries, std::size_t kk, const SearchParams& params,
                         std::vector<std::vector<std::pair<float, std::uint64_t>>>& out) const;
    void candidates_scan(MatrixView<float> queries, std::size_t kk, const SearchParams& params,
                         std::vector<std::vector<std::pair<float, std::uint64_t>>>& out) const;
    double exact_distance(const float* query, std::size_t slot) const noexcept;
    bool live(std::size_t slot, const LabelFilter* filter) const noexcept {
        return removed_[slot] == 0 && (filter == nullptr || filter->allows(labels_[slot]));
    }

    std::size_t dim_;
    Metric metric_;
    simd::RowDistancesFn row_distances_;  // one query against a block of rows (simd/rows.h)
    std::vector<float> owned_;          // slots x dim, when not mapped
    const float* base_ = nullptr;       // owned_.data() or the mapped file
    std::shared_ptr<storage::MappedFile> mapping_;
    std::unique_ptr<storage::DeferredCheck> deferred_;  // the vectors section's CRC (opened files)
    std::vector<float> norms_;          // squared norms per slot (L2 from inner products)
    std::vector<Label> labels_;         // per slot
    std::vector<std::uint8_t> removed_; // per slot
    std::unordered_map<std::uint64_t, std::uint32_t> slot_of_;  // live label -> slot
    std::size_t live_ = 0;
    std::unique_ptr<detail::SearchPool> pool_;  // worker threads kept across searches
};

}  // namespace quiver::index
