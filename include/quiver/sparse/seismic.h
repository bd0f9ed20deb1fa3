/// @file seismic.h
/// @brief Seismic (Bruch, Nardini, Rulli, Venturini, SIGIR 2024): approximate top-k inner-product search
/// over learned sparse vectors with blocked, summarised posting lists. See docs/seismic.md and
/// ../shared/research/algorithms.md section 1.
///
/// Build: (1) static pruning keeps the largest-weight postings of every list (global threshold with a
/// per-list cap, or a fixed size); (2) a list with fewer than `summary_min_postings` kept postings is one
/// block without a summary (always scanned when the query picks the list: a summary of a short list
/// costs more than scoring it); a longer list is split into blocks by one-shot random k-means on inner
/// product, approximated with each document's `doc_cut` largest components; clusters of at most
/// `min_cluster_size` documents are dissolved into the best surviving one; (3) each block gets a summary:
/// the coordinate-wise maximum of its documents, trimmed to the largest coordinates that hold
/// `summary_energy` of its L1 mass (and to at most `summary_max_entries` of them), stored per block as
/// (term, u8 code) pairs with one f32 scale per block, codes rounded up (`v <= code x scale`), so an
/// untrimmed summary is an upper bound of every document in its block; (4) the forward index holds
/// every full document for exact scoring.
///
/// Query: the `query_cut` largest query weights select the lists to scan. For each list, the full query is
/// scored against every block summary; a block is skipped once the heap holds k documents and its
/// summary score is below `heap_factor` x the k-th best score (a block without a summary is never skipped). Unvisited documents of other blocks are
/// scored exactly with the forward index. With `first_sorted`, the first list's blocks are visited in
/// descending summary score. Documents with empty vectors are never returned.
///
/// Optional k-NN refinement (SeismicWave, CIKM 2024): with `knn` > 0 the build also stores, for every
/// document, its `knn` nearest documents found by a Seismic search with the document as the query
/// (query_cut 10, heap_factor 0.7); at query time, `n_knn` > 0 scores the first n_knn unvisited
/// neighbours of every document in the final heap before returning.
///
/// Weights must be >= 0 (summaries are maxima; signed vectors break the bound): canonical vectors only.
/// Thread-safety: `search` is safe from many threads, each with its own `SeismicSearcher`; `add` and
/// `merge` (the incremental tail) need exclusive access.
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
    /// At most this many components per summary after the alpha cut (the largest; 0 = no cap).
    std::uint32_t summary_max_entries = 0;
    /// Lists with fewer kept postings are one block without a summary (0 = every list is blocked).
    std::uint32_t summary_min_postings = 0;
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
    std::size_t unsummarised_blocks = 0;  ///< blocks of short lists, always scanned
    std::size_t tail_docs = 0;            ///< rows added since the build (not in the byte counts)
    std::size_t forward_bytes = 0, postings_bytes = 0, summary_bytes = 0, other_bytes = 0, knn_bytes = 0;
    std::size_t raw_forward_bytes = 0;  ///< 8 bytes per nnz + 8 per document
    std::size_t total_bytes() const noexcept { return forward_bytes + postings_bytes + summary_bytes + other_bytes + knn_bytes; }
};

class SeismicSearcher;
struct SeismicSearcherPool;
struct SeismicTail;

class SeismicIndex {
public:
    /// Builds over `c` (vectors canonical by construction). Errors (kInvalidArgument): invalid parameters,
    /// a term id >= c.dim(), inconsistent CSR arrays.
    [[nodiscard]] static Result<SeismicIndex> build(const SparseCollection& c, const SeismicBuildParams& params);
    /// Maps a file written by save(). Truncated or corrupt files are kDataLoss naming the file; a newer
    /// format version, or version 1 (the inverted summary layout before issue 15, no longer read: rebuild
    /// it), is kFailedPrecondition.
    [[nodiscard]] static Result<SeismicIndex> open(const std::string& path);
    /// Writes the index (kind 'SEIS', format version kFormatVersion, CRC-32 checked on open; docs/seismic.md).
    [[nodiscard]] Status save(const std::string& path) const;

    static constexpr std::uint32_t kFormatVersion = 2;

    SeismicIndex(SeismicIndex&&) noexcept;
    SeismicIndex& operator=(SeismicIndex&&) noexcept;
    ~SeismicIndex();

    /// Rows: the built (or opened) ones, then the tail's.
    std::size_t size() const noexcept { return forward_.size() + tail_size(); }
    /// Rows added since the build or open (see add()).
    std::size_t tail_size() const noexcept;
    std::uint32_t dim() const noexcept { return forward_.dim(); }
    const Vocabulary& vocab() const noexcept { return vocab_; }
    const ForwardIndex& forward() const noexcept { return forward_; }
    const SeismicBuildParams& params() const noexcept { return params_; }
    /// The caller's id of row `doc`.
    std::string_view doc_id(std::uint32_t doc) const noexcept;
    SeismicStats stats() const noexcept;

    /// Top-k documents for a canonical query, best first (ties by row). Thread-safe: borrows a searcher
    /// from the index's pool (made on first need, at most one per concurrent caller) and returns it, so
    /// no O(N) state is allocated per query. Hot loops may also keep a SeismicSearcher per thread.
    std::vector<SparseHit> search(SparseVectorView query, const SeismicSearchParams& params) const;
    /// Searchers idle in the pool (for tests).
    std::size_t pooled_searchers() const noexcept;

    /// Incremental add: appends document `v` (canonical: terms ascending and below dim(), weights finite
    /// and > 0; kInvalidArgument otherwise) as row size(). Added rows form an exact tail held in memory
    /// (a CSR of the rows and a list per term): every search scores the tail exactly, term at a time over
    /// all query terms, next to the Seismic part, so a new document is found as soon as it is added.
    /// merge() folds the tail in by rebuilding the whole index with params() (the built rows as stored);
    /// save() refuses a non-empty tail (kFailedPrecondition: merge first). Not thread-safe: no search may
    /// run during add or merge.
    [[nodiscard]] Status add(std::string id, SparseVectorView v);
    /// Rebuilds the index over every row (built and tail), keeping row numbers and ids; a no-op without a tail.
    [[nodiscard]] Status merge();

private:
    friend class SeismicSearcher;
    friend struct SeismicBuilder;
    friend struct SeismicIo;
    SeismicIndex();

    SeismicBuildParams params_;
    Vocabulary vocab_;
    ForwardIndex forward_;
    DocIdTable ids_;
    Buffer<std::uint32_t> list_blocks_;  // dim+1: block range of each list (global block numbers)
    Buffer<std::uint64_t> block_post_;   // blocks+1: posting range of each block
    Buffer<std::uint32_t> postings_;     // document rows, grouped by block, ascending inside a block
    Buffer<std::uint64_t> block_sum_;    // blocks+1: summary entry range of each block (empty: no summary)
    Buffer<float> block_scale_;          // blocks: summary value = code * scale
    Buffer<std::uint16_t> sum_terms16_;  // entries: term ids when dim <= 65,536, ascending per block
    Buffer<std::uint32_t> sum_terms32_;  // entries: term ids when dim > 65,536
    Buffer<std::uint8_t> sum_codes_;     // entries: u8 codes
    Buffer<std::uint32_t> knn_;          // N x params_.knn neighbour rows (kNoNeighbor pads)
    std::uint32_t max_blocks_per_list_ = 0;
    std::unique_ptr<storage::MappedFile> file_;  // set when opened from disk
    std::unique_ptr<SeismicSearcherPool> pool_;  // searchers for search(); moves with the index
    std::unique_ptr<SeismicTail> tail_;          // rows added since the build or open (null: none yet)
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
    void score_summaries(std::uint32_t list);
    template <class TermT>
    void score_blocks(const TermT* terms, std::uint64_t b0, std::size_t nb);
    void offer(std::vector<SparseHit>& heap, std::size_t k, std::uint32_t doc, std::size_t& n_eval);
    static void push(std::vector<SparseHit>& heap, std::size_t k, SparseHit h);
    void score_tail(SparseVectorView query, std::vector<SparseHit>& heap, std::size_t k, std::size_t& n_eval);

    friend class SeismicIndex;  // rebinds pooled searchers
    const SeismicIndex* index_;
    std::vector<float> qdense_;
    std::vector<std::uint32_t> visited_;
    std::uint32_t stamp_ = 0;
    std::vector<float> block_score_;
    std::vector<std::uint32_t> order_;
    std::vector<float> tail_acc_;  // tail rows: accumulated scores, stamped like visited_
    std::vector<std::uint32_t> tail_stamp_, tail_touched_;
};

// The exact tail of an index (SeismicIndex::add).
struct SeismicTail {
    std::vector<std::uint64_t> offsets{0};
    std::vector<TermId> terms;
    std::vector<float> weights;
    std::vector<std::string> ids;
    std::vector<std::vector<std::pair<std::uint32_t, float>>> lists;  // per term: (tail row, weight)
};

// Searchers for SeismicIndex::search: each holds O(N) state (visited stamps), so they are pooled and
// reused instead of being allocated per query. A borrowed searcher is rebound to the index it serves
// (the index may have moved since the searcher was made; its arrays keep their sizes).
struct SeismicSearcherPool {
    std::mutex mu;
    std::vector<std::unique_ptr<SeismicSearcher>> free;
};

}  // namespace quiver::sparse
