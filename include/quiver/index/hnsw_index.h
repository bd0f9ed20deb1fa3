/// @file hnsw_index.h
/// @brief Hierarchical Navigable Small World graph index (Malkov and Yashunin), hnswlib-compatible
/// parameters and algorithm: heuristic neighbour selection, exponential level generation, beam search
/// with `ef`, tombstone deletes.
///
/// Memory layout: one contiguous level-0 array with a fixed-stride record per vector
/// `[dim x f32 vector][u32 count][maxM0 x u32 neighbours]` (stride rounded to 32 bytes), upper levels in
/// a separate arena, labels and flags in side arrays. See docs/formats.md for the file.
///
/// Deletes are tombstones: a removed label is traversed but never returned. Adding a label that is
/// present (live or removed) inserts a new node and tombstones the old one. Tombstones are reclaimed
/// by compaction: once they are a quarter of the slots (and at least kCompactMinDeleted), `add` and
/// `remove` rebuild the graph from the live nodes (O(live log live), amortised over the quarter of
/// slots deleted since the last rebuild), so churn neither grows memory nor degrades recall.
///
/// Thread-safety: `search` may run concurrently with other searches. `add` is internally parallel
/// (params.threads) but must not overlap with `search`, `remove` or `save` on the same index.
#pragma once

#include <memory>

#include "quiver/index/vector_index.h"

namespace quiver {
class ProgressBar;
}

namespace quiver::index {

struct HnswParams {
    std::size_t M = 16;                 ///< links per node on upper levels; 2*M on level 0
    std::size_t ef_construction = 200;  ///< beam width while building (raised to at least M)
    std::uint64_t seed = 100;           ///< level generator seed
    std::size_t threads = 0;            ///< build threads for add(); 0 = all cores
};

struct HnswGraph;  // private state, src/index/hnsw/hnsw_graph.h

class HnswIndex final : public VectorIndex {
public:
    static Result<std::unique_ptr<HnswIndex>> create(std::size_t dim, Metric metric,
                                                     const HnswParams& params = {});
    /// Maps the level-0 array of `path` read-only (zero copy); it is copied on the first add().
    static Result<std::unique_ptr<HnswIndex>> open(const std::string& path);
    ~HnswIndex() override;

    IndexInfo info() const override;
    /// Inserts rows with params.threads threads. Reports inserted rows to the progress bar if set.
    Status add(MatrixView<float> vectors, std::span<const Label> labels) override;
    Result<std::size_t> remove(std::span<const Label> labels) override;
    /// ef = max(params.ef or 64, k). Queries are split over params.threads threads.
    Result<SearchResults> search(MatrixView<float> queries, const SearchParams& params) const override;
    Status save(const std::string& path) const override;
    std::size_t memory_bytes() const override;

    /// Rebuilds the graph from live nodes (same parameters and seed), dropping every tombstone.
    Status compact();
    /// Tombstones a rebuild is considered for; below this count they are kept.
    inline static constexpr std::size_t kCompactMinDeleted = 64;
    /// Whether tombstones reached the compaction threshold (a quarter of the slots).
    bool needs_compaction() const noexcept;
    /// Slots in use, live or tombstoned.
    std::size_t slots() const noexcept;

    const HnswParams& params() const noexcept;
    /// Highest level in the graph (-1 when empty).
    int max_level() const noexcept;
    /// Reports progress of add() (not owned; may be null).
    void set_progress(ProgressBar* progress) noexcept;
    /// The graph state, for the filtered searches of filtered_search.h (src/index/hnsw/hnsw_acorn.cpp).
    const HnswGraph& graph() const noexcept { return *graph_; }

private:
    explicit HnswIndex(std::unique_ptr<HnswGraph> graph);
    Status compact_if_needed();
    std::unique_ptr<HnswGraph> graph_;
    ProgressBar* progress_ = nullptr;
};

}  // namespace quiver::index
