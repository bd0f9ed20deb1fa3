/// @file filtered_search.h
/// @brief Filtered k-NN over a dense index: three strategies, the planner that picks one from the
/// filter's selectivity, and ACORN (Patel et al., SIGMOD 2024; `../shared/research/algorithms.md` §4).
///
/// A filter reaches the index as a `Bitmap` of allowed labels (< 2^32; a segment's document numbers,
/// or CLI row numbers), already without deleted documents. Its cardinality is the exact match count.
/// Strategies (`FilterStrategy`):
///   - kExactScan: the exact distance to every matching vector (cost: matches distance computations,
///     recall 1). Best for small matching sets.
///   - kAcorn: ACORN traversal of the graph restricted to matching nodes. Level 0 expands a node's
///     matching neighbours and, beyond the first m_beta entries of its list, the matching neighbours of
///     each neighbour (two hops), until 2M matching nodes were found for it. With an `AcornGraph`
///     (ACORN-γ) the lists are the denser predicate-agnostic ones built once; without (ACORN-1) they are
///     the HNSW level-0 lists and every entry is expanded two hops. Upper levels: the usual greedy
///     descent (it only picks the level-0 entry).
///   - kPostFilter: the HNSW beam over every node, keeping only matching ones as results (the beam
///     continues until it holds `ef` matches, i.e. ef grows with 1/selectivity). Best for permissive
///     filters.
///   - kUnfiltered: the filter matches as many labels as the index holds: the plain HNSW beam, still
///     checking the bitmap per result (a bitmap may name labels the index lacks); callers that know
///     every label passes pass no bitmap and get the unchecked search.
/// The planner (kAuto): no filter or all match -> kUnfiltered; matches <= exact_max_matches ->
/// kExactScan; selectivity >= post_filter_min_selectivity -> kPostFilter; else kAcorn. Whatever the
/// strategy, the result holds min(k, matching vectors) hits: when ACORN returns fewer (the matching
/// subgraph is disconnected from its entry), the search is repeated as a post-filter walk (which
/// reaches every node of the connected graph) and `FilterPlan::fallback` says so.
/// Flat indexes are exact already: they always scan with the filter (kExactScan in the plan).
///
/// ACORN-γ construction (`AcornGraph::build`): per node, the list starts with its HNSW level-0 links
/// (pruned for diversity: they keep the graph navigable), then adds the nearest of its HNSW two-hop
/// neighbourhood (the candidate set, instead of a fresh search with efConstruction = M·γ), unpruned,
/// up to M·γ entries, compressed predicate-agnostically: the first m_beta entries always stay; a
/// later candidate is dropped when it is an HNSW neighbour of a kept entry past m_beta (search
/// expands those two hops, so it still reaches it).
///
/// Thread-safety: searches are const and may run concurrently with each other (not with add/remove on
/// the index). An `AcornGraph` belongs to the index state it was built from; rebuild it after the
/// index changes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/bitmap.h"
#include "quiver/core/ids.h"
#include "quiver/core/result.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/index/vector_index.h"

namespace quiver::index {

enum class FilterStrategy : std::uint8_t { kAuto = 0, kUnfiltered = 1, kExactScan = 2, kAcorn = 3, kPostFilter = 4 };

/// "auto", "unfiltered", "exact", "acorn", "post_filter".
std::string_view to_string(FilterStrategy s) noexcept;
Result<FilterStrategy> parse_filter_strategy(std::string_view name);

struct PlannerParams {
    std::uint64_t exact_max_matches = 20000;  ///< exact scan up to this many matching vectors
    /// At or above this fraction of live vectors: post-filter. On GloVe-100k (`quiver bench filter`) the
    /// walk beat ACORN-1 from about 10% up, ACORN led below.
    double post_filter_min_selectivity = 0.1;
};

struct FilterPlan {
    FilterStrategy strategy = FilterStrategy::kUnfiltered;
    std::uint64_t matches = 0;  ///< allowed labels (the filter's cardinality)
    std::uint64_t size = 0;     ///< live vectors in the index
    double selectivity = 1.0;   ///< matches / size, capped at 1
    std::string reason;         ///< one sentence: why this strategy
    bool fallback = false;      ///< ACORN found fewer than min(k, matches); answered by the post-filter walk
};

/// The planner's choice for `matches` of `size` vectors (no filter: matches = size). `graph` = the
/// index is HNSW (a flat index always scans). `forced` != kAuto overrides (the reason says so).
FilterPlan plan_filtered_search(std::uint64_t matches, std::uint64_t size, bool graph, const PlannerParams& params,
                                FilterStrategy forced = FilterStrategy::kAuto);

/// ACORN-γ level-0 neighbour lists over the slots of one HnswIndex.
struct AcornParams {
    std::size_t gamma = 8;    ///< list length before compression = M * gamma (gamma >= 1)
    std::size_t m_beta = 0;   ///< uncompressed prefix; 0 = 2M
    std::size_t threads = 0;  ///< build threads; 0 = all cores
};

class AcornGraph {
public:
    AcornGraph() = default;
    /// Builds the lists for every slot of `hnsw` (kInvalidArgument for gamma 0 or > 64).
    [[nodiscard]] static Result<AcornGraph> build(const HnswIndex& hnsw, const AcornParams& params);
    /// Container kind `ACRN`, version 1; written atomically.
    [[nodiscard]] Status save(const std::string& path) const;
    /// kDataLoss for damage or when the file does not fit `hnsw` (slot count, link range).
    [[nodiscard]] static Result<AcornGraph> open(const std::string& path, const HnswIndex& hnsw);

    std::size_t gamma() const noexcept { return gamma_; }
    std::size_t m_beta() const noexcept { return m_beta_; }
    std::size_t nodes() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    std::span<const std::uint32_t> neighbors(std::uint32_t slot) const noexcept {
        return {links_.data() + offsets_[slot], links_.data() + offsets_[slot + 1]};
    }
    std::size_t memory_bytes() const noexcept { return offsets_.size() * 8 + links_.size() * 4; }

private:
    std::size_t gamma_ = 0;
    std::size_t m_beta_ = 0;
    std::vector<std::uint64_t> offsets_;  // nodes + 1
    std::vector<std::uint32_t> links_;
};

struct Neighbor {
    Label label;
    float distance;
};

struct FilteredSearchParams {
    std::size_t k = 10;
    std::size_t ef = 0;  ///< beam width (0 = max(k, 64)); ACORN and post-filter
    FilterStrategy strategy = FilterStrategy::kAuto;
    PlannerParams planner{};
    const AcornGraph* acorn = nullptr;  ///< ACORN-γ lists of this index; null = ACORN-1
    /// Indexes over codes, when the index answers (SearchParams::rescore): candidates re-scored in float32.
    std::size_t rescore = SearchParams::kRescoreDefault;
};

/// The k nearest allowed vectors to `query` (dim of the index), nearest first (ties by label).
/// `allowed` null = every live vector (the unchecked search). `plan` (optional) receives the plan that answered.
[[nodiscard]] Result<std::vector<Neighbor>> filtered_search(const VectorIndex& index, std::span<const float> query,
                                                            const Bitmap* allowed, const FilteredSearchParams& params,
                                                            FilterPlan* plan = nullptr);

/// The strategies on an HNSW index, for tests and benchmarks (query already validated; normalised
/// here for cosine; an opened index already verified, see VectorIndex::verify). `allowed` labels;
/// results nearest first.
std::vector<Neighbor> hnsw_exact_scan(const HnswIndex& hnsw, std::span<const float> query, const Bitmap& allowed,
                                      std::size_t k);
std::vector<Neighbor> hnsw_acorn_search(const HnswIndex& hnsw, const AcornGraph* gamma, std::span<const float> query,
                                        const Bitmap& allowed, std::size_t k, std::size_t ef);

}  // namespace quiver::index
