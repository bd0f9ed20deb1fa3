/// @file hnsw_index.h
/// @brief Hierarchical Navigable Small World graph index (Malkov and Yashunin), hnswlib-compatible
/// parameters and algorithm: heuristic neighbour selection, exponential level generation, beam search
/// with `ef`, tombstone deletes.
///
/// Memory layout: one contiguous level-0 array with a fixed-stride record per vector
/// `[dim x f32 vector][u32 count][maxM0 x u32 neighbours]` (stride rounded to 32 bytes), upper levels in
/// a separate arena, labels and flags in side arrays. With a codec (HnswParams::codec) the record holds
/// the code instead of the vector and the float32 vectors live in their own array, read only to build
/// and to re-score. See docs/formats.md for the file.
///
/// Deletes are tombstones: a removed label is traversed but never returned. Adding a label that is
/// present (live or removed) inserts a new node and tombstones the old one. Tombstones are reclaimed
/// by compaction: once they are a quarter of the slots (and at least kCompactMinDeleted), `add` and
/// `remove` rebuild the graph from the live nodes (O(live log live), amortised over the quarter of
/// slots deleted since the last rebuild), so churn neither grows memory nor degrades recall.
///
/// Thread-safety (the one contract, also in ARCHITECTURE.md): `search`, `save`, `info`,
/// `memory_bytes` and `unreachable_count` are const and may run concurrently with each other.
/// `add`, `remove`, `compact` and `repair_reachability` mutate (and may rebuild or copy the graph):
/// each needs exclusive access, so none may overlap any other call on the same index. `add` is
/// internally parallel (params.threads). Readers concurrent with writers are the collection layer's
/// job (immutable segments, snapshots).
#pragma once

#include <memory>

#include "quiver/index/codec.h"
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
    /// Codes the search walks: `none` walks float32 vectors; `sq8` (or any codec of codec.h) keeps
    /// codes in the level-0 records and float32 vectors beside them, builds the graph with exact
    /// float distances, walks it with the codec's estimates (SQ8: exact integer u8 x s8 products against
    /// the query quantised once) and re-scores the best SearchParams::rescore of the final beam in
    /// float32 (default min(ef, max(2k, 32)) for SQ8, min(ef, max(4k, 32)) for other codecs; 0 = none, code distances are returned).
    /// The codec is trained on the first add() (up to its default sample size).
    CodecSpec codec{};
};

/// How open() treats a coded index's float32 vectors.
struct HnswOpenOptions {
    /// Leave the vectors on disk: the re-score reads each candidate's vector with pread (one
    /// read per candidate, served by the page cache when warm), so resident memory holds only the
    /// codes, the graph and the ids. Ignored for float32 graphs (their walk needs the vectors).
    bool vectors_on_disk = false;
    /// Check the large sections (level-0 records, float vectors: their CRCs and the level-0 links) now,
    /// instead of on first use.
    bool verify = false;
};

struct HnswGraph;  // private state, src/index/hnsw/hnsw_graph.h
namespace detail {
class SearchPool;  // src/index/search_pool.h
}

class HnswIndex final : public VectorIndex {
public:
    static Result<std::unique_ptr<HnswIndex>> create(std::size_t dim, Metric metric,
                                                     const HnswParams& params = {});
    /// Maps the level-0 array of `path` read-only (zero copy); it is copied on the first add().
    /// Opening checks the header and the small sections (labels, levels, upper links); the level-0
    /// records and vectors are checked on first use (see verify()) unless options.verify.
    static Result<std::unique_ptr<HnswIndex>> open(const std::string& path, const HnswOpenOptions& options = {});
    /// Runs the checks open() deferred, once (thread-safe): every search, add, remove, save and
    /// compaction calls it first, so a damaged section fails that call with kDataLoss naming the
    /// section. Ok for an index that was built, not opened.
    Status verify() const override;
    /// Whether the float32 vectors stay on disk (a coded index opened with vectors_on_disk, until
    /// a mutation loads them).
    bool vectors_on_disk() const noexcept;
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
    /// Removes the nodes of `removed` (labels; absent ones are ignored) and every tombstone for good, and
    /// renumbers the rest: each remaining label becomes itself minus the number of labels in `removed`
    /// below it (a merge dropping a segment's deleted documents renumbers them so). Instead of a
    /// rebuild, each node that linked to a removed one takes replacement links among its other links
    /// and the removed node's links, selected with the build's heuristic (FreshDiskANN's delete
    /// consolidation), the slots are packed, a coded graph's codec is trained again on the vectors
    /// kept (every code re-encoded), and repair_reachability() runs. Dropping 30,000 of 100,000
    /// uniform 32-d vectors took 1.0-1.2 s against 1.5-2.1 s for a rebuild of the 70,000 (2
    /// threads); tests/index/hnsw_index_test.cpp measures recall against a rebuild over repeated
    /// rounds. `threads` workers (0 = all cores). Needs exclusive access.
    /// kFailedPrecondition for an index with external ids (they name labels by position).
    /// With `repair` false the reachability repair is left to the caller: the graph counts as
    /// unchecked (has_unchecked_nodes()), so the next add() runs it, or the caller does.
    Status drop(std::span<const Label> removed, std::size_t threads = 0, bool repair = true);
    /// Tombstones a rebuild is considered for; below this count they are kept.
    inline static constexpr std::size_t kCompactMinDeleted = 64;
    /// Whether tombstones reached the compaction threshold (a quarter of the slots).
    bool needs_compaction() const noexcept;
    /// Slots in use, live or tombstoned.
    std::size_t slots() const noexcept;

    const HnswParams& params() const noexcept;
    /// Highest level in the graph (-1 when empty).
    int max_level() const noexcept;
    /// Whether the level-0 array is still the read-only file mapping (open() and removals keep it;
    /// add() and compaction copy it).
    bool is_mapped() const noexcept;
    /// Live nodes with no level-0 path from the entry point (no search can return them); every live
    /// node when verify() fails.
    std::size_t unreachable_count() const;
    /// Gives every unreachable live node an in-link from its nearest reachable node, then searches
    /// for every live node's own vector (beam max(32, 2M)) and gives each one not found in-links
    /// from the nearest nodes found; returns how many were repaired. add() runs it once half the
    /// slots were inserted since the last run (so every build, merge and compaction ends with
    /// it). Needs exclusive access; copies a mapped level-0 array.
    std::size_t repair_reachability();
    /// Whether nodes were inserted (or a drop left the graph) since the last reachability check:
    /// add() checks only once half the slots are unchecked, so a caller that needs every node
    /// findable now (a segment build continuing a graph) repairs when this is true.
    bool has_unchecked_nodes() const noexcept;
    /// Reports progress of add() (not owned; may be null).
    void set_progress(ProgressBar* progress) noexcept;
    /// The graph state, for the filtered searches of filtered_search.h (src/index/hnsw/hnsw_acorn.cpp).
    const HnswGraph& graph() const noexcept { return *graph_; }

private:
    explicit HnswIndex(std::unique_ptr<HnswGraph> graph);
    Status compact_if_needed();
    std::unique_ptr<HnswGraph> graph_;
    std::unique_ptr<detail::SearchPool> search_pool_;  // worker threads kept across searches
    ProgressBar* progress_ = nullptr;
};

}  // namespace quiver::index
