/// @file exact_sparse.h
/// @brief The exact learned-sparse baseline: top-k inner product over the shared posting core
/// (postings.h, block-max MaxScore in maxscore.h), plus a brute-force reference for tests.
///
/// Weights are stored as raw float32 (exact; the ground truth for Seismic's recall) or as 8-bit codes
/// times a per-list scale (WeightType::kQuantized8; 4x smaller weights, scores within ~0.2% of each
/// list maximum per posting). `quiver bench sparse --exact-weights u8` reports the ranking effect.
///
/// Results are sorted by score descending, then row ascending, and only documents with score > 0 are
/// returned (a document sharing no term with the query is never a hit). Query terms the index does not
/// know are ignored. Thread-safety: immutable after build/open; `search` may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/sparse/forward_index.h"
#include "quiver/sparse/maxscore.h"
#include "quiver/sparse/postings.h"
#include "quiver/sparse/seismic.h"
#include "quiver/sparse/sparse_vector.h"

namespace quiver::sparse {

class ExactSparseIndex {
public:
    /// `weights` must be kFloat32 or kQuantized8 (kInvalidArgument otherwise).
    [[nodiscard]] static Result<ExactSparseIndex> build(const SparseCollection& c,
                                                        WeightType weights = WeightType::kFloat32);
    /// Maps a file written by save() (kind 'SPEX'); corrupt or truncated files are kDataLoss.
    [[nodiscard]] static Result<ExactSparseIndex> open(const std::string& path);
    [[nodiscard]] Status save(const std::string& path) const;
    static constexpr std::uint32_t kFormatVersion = 1;

    std::size_t size() const noexcept { return ids_.size(); }
    const Vocabulary& vocab() const noexcept { return vocab_; }
    std::string_view doc_id(std::uint32_t doc) const noexcept { return ids_[doc]; }
    const PostingStore& store() const noexcept { return store_; }
    /// Bytes of the posting data, block and term tables, and document ids.
    std::size_t bytes() const noexcept;

    /// Exact top-k for a canonical query. `stats` may be null; `allowed` (may be null) restricts the
    /// hits inside the walk (the k best allowed documents); `min_score` as in search_top_k.
    std::vector<SparseHit> search(SparseVectorView query, std::size_t k, TopKStats* stats = nullptr,
                                  const AllowedDocs* allowed = nullptr, const FilterWalkParams& walk = {},
                                  float min_score = 0.0f) const;

private:
    ExactSparseIndex() = default;

    Vocabulary vocab_;
    DocIdTable ids_;
    PostingStore store_;
    std::shared_ptr<const storage::MappedFile> file_;
};

/// Reference top-k: scores every row of `c` with a merge dot product. Same ordering contract.
std::vector<SparseHit> brute_force_top_k(const SparseCollection& c, SparseVectorView query, std::size_t k);

}  // namespace quiver::sparse
