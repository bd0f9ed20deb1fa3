/// @file seismic.h
/// @brief Seismic (Bruch, Nardini, Rulli, Venturini, SIGIR 2024): approximate top-k inner-product search
/// over learned sparse vectors with blocked, summarised posting lists. See docs/seismic.md and
/// ../shared/research/algorithms.md section 1.
///
/// Build: (1) static pruning keeps the largest-weight postings of every list (global threshold with a
/// per-list cap, or a fixed size); (2) each pruned list is split into blocks by one-shot random k-means
/// on inner product, approximated with each document's `doc_cut` largest components; clusters of at most
/// `min_cluster_size` documents are dissolved into the best surviving one; (3) each block gets a summary:
/// the coordinate-wise maximum of its documents, trimmed to the largest coordinates that hold
/// `summary_energy` of its L1 mass, quantised to u8 with a per-summary minimum and step; (4) the forward
/// index holds every full document for exact scoring.
///
/// Query: the `query_cut` largest query weights select the lists to scan. For each list, the full query is
/// scored against every block summary; a block is skipped once the heap holds k documents and its
/// summary score is below `heap_factor` x the k-th best score. Unvisited documents of other blocks are
/// scored exactly with the forward index. With `first_sorted`, the first list's blocks are visited in
/// descending summary score. Documents with empty vectors are never returned.
///
/// Optional k-NN refinement (SeismicWave, CIKM 2024): with `knn` > 0 the build also stores, for every
/// document, its `knn` nearest documents found by a Seismic search with the document as the query
/// (query_cut 10, heap_factor 0.7); at query time, `n_knn` > 0 scores the first n_knn unvisited
/// neighbours of every document in the final heap before returning.
///
/// Weights must be >= 0 (summaries are maxima; signed vectors break the bound): canonical vectors only.
/// Thread-safety: a built or opened index is immutable; `search` is safe from many threads, each with its
/// own `SeismicSearcher`.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/sparse/forward_index.h"
#include "quiver/sparse/sparse_vector.h"
#include "quiver/storage/file_format.h"

namespace quiver::sparse {

/// A search hit: `doc` is the row number in the indexed collection; `score` the exact inner product.
struct SparseHit {
    std::uint32_t doc;
    float score;
};

/// Build-time configuration (values, not types: they only shape the data).
struct SeismicBuildParams {
    enum class Pruning : std::uint8_t { kGlobalThreshold = 0, kFixedSize = 1 };
    Pruning pruning = Pruning::kGlobalThreshold;
    /// lambda: average postings kept per list (global threshold) or exactly per list (fixed size).
    std::uint32_t n_postings = 3500;
    /// Global threshold only: no list keeps more than max_fraction * n_postings postings.
    float max_fraction = 1.5f;
    /// beta: blocks per list = max(1, floor(centroid_fraction * list length)), at most 65,535.
    float centroid_fraction = 0.1f;
    /// Clusters with at most this many documents are dissolved.
    std::uint32_t min_cluster_size = 2;
    /// alpha: share of each block summary's L1 mass that is kept, in (0, 1].
    float summary_energy = 0.4f;
    /// Document components used to assign documents to centroids.
    std::uint32_t doc_cut = 15;
    /// Neighbours stored per document for k-NN refinement (0 = no graph). Costs one search per document.
    std::uint32_t knn = 0;
    WeightFormat weights = WeightFormat::kF32;
    std::uint64_t seed = 42;
    /// Build threads; 0 = all cores.
    std::size_t threads = 0;
};

/// Query-time configuration.
struct SeismicSearchParams {
    std::size_t k = 10;
    std::uint32_t query_cut = 10;
    float heap_factor = 0.9f;
    bool first_sorted = true;
    /// Graph neighbours expanded per heap document (needs an index built with knn > 0).
    std::uint32_t n_knn = 0;
};

/// Sizes, for reports: `bytes()` of the index against the raw forward index (u32 terms, f32 weights).
struct SeismicStats {
    std::size_t docs = 0, nnz = 0, postings = 0, blocks = 0, summary_entries = 0;
    std::size_t forward_bytes = 0, postings_bytes = 0, summary_bytes = 0, other_bytes = 0, knn_bytes = 0;
    std::size_t raw_forward_bytes = 0;  ///< 8 bytes per nnz + 8 per document
    std::size_t total_bytes() const noexcept { return forward_bytes + postings_bytes + summary_bytes + other_bytes + knn_bytes; }
};

class SeismicSearcher;
struct SeismicSearcherPool;

class SeismicIndex {
public:
    /// Builds over `c` (vectors canonical by construction). Errors (kInvalidArgument): invalid parameters,
    /// a term id >= c.dim(), inconsistent CSR arrays.
    [[nodiscard]] static Result<SeismicIndex> build(const SparseCollection& c, const SeismicBuildParams& params);
    /// Maps a file written by save(). Truncated or corrupt files are kDataLoss naming the file; a newer
    /// format version is kFailedPrecondition.
    [[nodiscard]] static Result<SeismicIndex> open(const std::string& path);
    /// Writes the index (kind 'SEIS', format version kFormatVersion, CRC-32 checked on open).
    [[nodiscard]] Status save(const std::string& path) const;

    static constexpr std::uint32_t kFormatVersion = 1;

    SeismicIndex(SeismicIndex&&) noexcept;
    SeismicIndex& operator=(SeismicIndex&&) noexcept;
    ~SeismicIndex();

    std::size_t size() const noexcept { return forward_.size(); }
    std::uint32_t dim() const noexcept { return forward_.dim(); }
    const Vocabulary& vocab() const noexcept { return vocab_; }
    const ForwardIndex& forward() const noexcept { return forward_; }
    const SeismicBuildParams& params() const noexcept { return params_; }
    /// The caller's id of row `doc`.
    std::string_view doc_id(std::uint32_t doc) const noexcept { return ids_[doc]; }
    SeismicStats stats() const noexcept;

    /// Top-k documents for a canonical query, best first (ties by row). Thread-safe: borrows a searcher
    /// from the index's pool (made on first need, at most one per concurrent caller) and returns it, so
    /// no O(N) state is allocated per query. Hot loops may also keep a SeismicSearcher per thread.
    std::vector<SparseHit> search(SparseVectorView query, const SeismicSearchParams& params) const;
    /// Searchers idle in the pool (for tests).
    std::size_t pooled_searchers() const noexcept;

private:
    friend class SeismicSearcher;
    friend struct SeismicBuilder;
    friend struct SeismicIo;
    SeismicIndex();

    SeismicBuildParams params_;
    Vocabulary vocab_;
    ForwardIndex forward_;
    DocIdTable ids_;
    Buffer<std::uint64_t> list_blocks_;  // dim+1: block range of each list (global block numbers)
    Buffer<std::uint64_t> block_post_;   // blocks+1: posting range of each block
    Buffer<std::uint32_t> postings_;     // document rows, grouped by block
    Buffer<float> block_min_;            // blocks: summary dequantisation v = min + code * step
    Buffer<float> block_step_;
    Buffer<std::uint64_t> list_comps_;   // dim+1: range of each list's summary components
    Buffer<std::uint32_t> comp_term_;    // components: term id, ascending within a list
    Buffer<std::uint64_t> list_entries_; // dim+1: range of each list's (block, code) entries
    Buffer<std::uint32_t> comp_start_;   // components: first entry, relative to the list's first entry
    Buffer<std::uint16_t> entry_block_;  // entries: block number local to the list
    Buffer<std::uint8_t> entry_code_;    // entries: u8 code
    Buffer<std::uint32_t> knn_;          // N x params_.knn neighbour rows (kNoNeighbor pads)
    std::uint32_t max_blocks_per_list_ = 0;
    std::unique_ptr<storage::MappedFile> file_;  // set when opened from disk
    std::unique_ptr<SeismicSearcherPool> pool_;  // searchers for search(); moves with the index
};

/// Per-thread query state (dense query buffer, visited stamps, block scores). Reuse it across queries.
/// Not thread-safe; the index must outlive it.
class SeismicSearcher {
public:
    explicit SeismicSearcher(const SeismicIndex& index);
    /// See SeismicIndex::search. `evaluated`, when given, receives the number of documents scored.
    std::vector<SparseHit> search(SparseVectorView query, const SeismicSearchParams& params,
                                  std::size_t* evaluated = nullptr);

private:
    void score_summaries(std::uint32_t list, SparseVectorView query);
    void offer(std::vector<SparseHit>& heap, std::size_t k, std::uint32_t doc, std::size_t& n_eval);

    friend class SeismicIndex;  // rebinds pooled searchers
    const SeismicIndex* index_;
    std::vector<float> qdense_;
    std::vector<std::uint32_t> visited_;
    std::uint32_t stamp_ = 0;
    std::vector<float> acc_code_, acc_q_, block_score_;
    std::vector<std::uint32_t> order_;
};

// Searchers for SeismicIndex::search: each holds O(N) state (visited stamps), so they are pooled and
// reused instead of being allocated per query. A borrowed searcher is rebound to the index it serves
// (the index may have moved since the searcher was made; its arrays keep their sizes).
struct SeismicSearcherPool {
    std::mutex mu;
    std::vector<std::unique_ptr<SeismicSearcher>> free;
};

}  // namespace quiver::sparse
