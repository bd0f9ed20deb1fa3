/// @file maxscore.h
/// @brief Exact top-k over a PostingStore with block-max MaxScore dynamic pruning.
///
/// A query is a list of (term, query weight) pairs. A document's score is the sum, over query terms
/// present in it, of a per-posting contribution defined by the scorer:
///   - DotProductScorer: query_weight * weight (learned-sparse inner product);
///   - Bm25Scorer: Lucene's BM25, query_weight - query_weight / (1 + tf * norm_inverse[norm[doc]]),
///     where query_weight = boost * idf (see bm25_index.h).
/// Both are `query_weight * unit(doc, weight)` with unit() in the posting's block bounds, which is
/// what makes MaxScore and block-max skipping exact: a document is skipped only when the sum of
/// upper bounds of the lists that could still contain it cannot beat the current k-th score.
///
/// Walk (document at a time): lists sorted by upper bound; the lowest ones whose bounds sum to at most
/// the k-th score are non-essential (checked per candidate with their block bounds); candidates come
/// from the essential lists, and before a candidate is scored the essential lists' current block bounds
/// are summed (block-max on the essential lists): when no document up to the nearest block end can
/// beat the k-th score, that whole interval is skipped without decoding.
///
/// Filters (`AllowedDocs` with a filter bitmap F, m members): the bitmap drives the walk, never a wider
/// top-k. Three regimes (`FilterWalk`), chosen per call from m, the store's n documents and the query
/// lists' summed document frequency D over t terms (`FilterWalkParams`):
///   - kBitmap (very selective, m * t <= bitmap_max_ratio * D): the matching set is scored directly;
///     each member of F (cursor order) seeks the term cursors to it, after a block-max check that
///     reads only block bounds: when the blocks holding the member cannot beat the k-th score, F is
///     seeked past the nearest block end. Cost O(m * t) seeks, independent of the lists' lengths.
///   - kSeek (selective, m / n < mask_min_selectivity, or window_mask_min_selectivity for a query the
///     mask walk would score with the window scan): MaxScore as above, but a candidate outside F
///     moves the essential cursors straight to F's next member >= candidate (`Bitmap::Cursor::seek`):
///     postings between filter members are skipped without being visited.
///   - kMask (permissive): MaxScore testing F per candidate (a failing candidate costs one `next`).
/// A delete set (`AllowedDocs::deleted`) is tested per document in every regime; with no filter the
/// walk is kMask (or unchecked when nothing is deleted).
///
/// Short dense queries (few lists holding many postings, `FilterWalkParams::window_*`; unfiltered and
/// kMask only): document-at-a-time MaxScore pays its per-candidate checks on nearly every posting, so
/// they are scored in bulk instead, as Lucene's BooleanScorer does: windows of 2,048 documents, each
/// list adding its postings to the window's accumulators in query order (the exhaustive reference's
/// summation order, so scores are bit-identical to it), then the accumulators above the k-th score
/// offered in ascending order (the mask tested only for them); a window whose lists' block bounds
/// cannot beat the k-th score is skipped undecoded. Once the k-th score exceeds what the other lists'
/// bounds can add to some list's postings, that list is required: a document can enter only with a
/// posting of it whose contribution exceeds the difference (found by a key such as tf x the length
/// norm, no division), and only the documents passing every required list are scored (the threshold
/// path; on two-word queries of common words at k = 10 nearly every window after the first).
///
/// Results are exact and bit-identical to `search_exhaustive`: every regime (MaxScore, kSeek, kBitmap,
/// the window scan) sums a document's contributions in query order, as the reference does, so a
/// document gets the same float whatever the regime, k or min_score (the walks' bound comparisons
/// allow for the other summation orders they use internally). Sorted by score descending, then doc
/// ascending. Ties at the k-th place keep the smaller doc id.
/// Query weights must be >= 0. Thread-safe: the store is read-only; each call uses its own cursors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "quiver/core/bitmap.h"
#include "quiver/sparse/postings.h"

namespace quiver::sparse {

struct QueryTerm {
    TermId term;
    float weight;  ///< >= 0; terms with weight 0 or no postings are ignored
};

struct ScoredDoc {
    DocIndex doc;
    float score;
};

/// score += query_weight * weight.
struct DotProductScorer {};

/// Lucene BM25: the store holds tf (kFrequency); `norms[doc]` is the doc's SmallFloat length byte and
/// `norm_inverse[b]` = 1 / (k1 * (1 - b + b * length(b) / avgdl)). Both views must outlive the call.
///
/// The store's block bounds are unit scores 1 - 1 / (1 + tf * n) for the table `n` they were computed
/// with (the index's own statistics). A query may score with another table (collection-wide avgdl):
/// `bound_scale` >= max over b of norm_inverse[b] / n[b] keeps the bounds valid, because the unit score
/// is increasing in tf * n, so a bound u becomes s*x / (1 + s*x) with x = u / (1 - u).
struct Bm25Scorer {
    std::span<const std::uint8_t> norms;        ///< one byte per document
    std::span<const float> norm_inverse;        ///< exactly 256 entries
    float bound_scale = 1.0f;                   ///< >= 1 when norm_inverse exceeds the bounds' table
};

using Scorer = std::variant<DotProductScorer, Bm25Scorer>;

/// How a filtered walk is driven (see the file comment). kNone: no mask at all.
enum class FilterWalk : std::uint8_t { kAuto, kNone, kMask, kSeek, kBitmap };
/// "auto", "none", "mask", "seek", "bitmap".
const char* to_string(FilterWalk w) noexcept;

/// Regime thresholds of a filtered walk. `force` other than kAuto picks the regime (tests, benchmarks);
/// a forced kSeek or kBitmap without a filter bitmap runs kMask.
struct FilterWalkParams {
    FilterWalk force = FilterWalk::kAuto;
    /// kMask when the filter keeps at least this share of the store's documents. Measured
    /// (`bench/micro/filter_walk_micro.cpp`, 100k load-test documents, random filters): five-word
    /// queries (MaxScore) cross over between 10% and 20%; below, kSeek skips the postings between
    /// members (docs/filtering.md).
    double mask_min_selectivity = 0.15;
    /// The same for a query the mask walk scores with the window scan (see window_*): two-word queries
    /// cross over between 5% and 10% (the window scan's cost barely moves with the filter; kSeek's
    /// grows with the members it seeks through: 2.5x the mask's at 20%, 4x at 50%).
    double window_mask_min_selectivity = 0.07;
    /// kBitmap when (filter members) x (query terms) <= this x (query lists' summed document frequency).
    double bitmap_max_ratio = 0.25;
    /// Unfiltered and kMask walks of short dense queries use the bulk window scan instead of MaxScore:
    /// at most `window_max_terms` lists (0 disables it) whose summed document frequency is at least
    /// `window_min_density` x the store's documents (see the file comment).
    std::size_t window_max_terms = 4;
    double window_min_density = 0.1;
};

/// The regime `search_top_k` runs for a query with `terms` query terms whose lists hold `postings`
/// postings in all, over `num_docs` documents of which `matches` pass the filter (`has_filter`).
FilterWalk choose_filter_walk(const FilterWalkParams& params, bool has_filter, std::uint64_t matches,
                              std::uint64_t num_docs, std::size_t terms, std::uint64_t postings) noexcept;

/// Counters for one query (for benchmarks and tests).
struct TopKStats {
    std::uint64_t docs_scored = 0;     ///< documents fully or partially evaluated
    std::uint64_t blocks_skipped = 0;  ///< candidates or intervals rejected by a block bound
    std::uint64_t filter_seeks = 0;    ///< filter-bitmap cursor moves (kSeek, kBitmap)
    std::uint64_t threshold_windows = 0;  ///< window-scan windows that scored only their candidates
    FilterWalk walk = FilterWalk::kNone;  ///< the regime of the last call
};

/// Exact top-`k` documents by score (score > 0 only), best first. O(total postings) worst case,
/// typically far less. `stats` may be null. With `allowed`, documents it does not allow are skipped
/// inside the walk (never scored, never returned), so the k results are the best k allowed ones; a
/// filter bitmap drives the walk as `walk` says (see the file comment). With `min_score` > 0 only
/// documents scoring at least `min_score` are returned (the best k of them), and the walk prunes with
/// it from the first posting: a caller merging several stores' lists passes the k-th score it already
/// holds, so later stores skip what cannot enter (ties at min_score are kept).
std::vector<ScoredDoc> search_top_k(const PostingStore& store, std::span<const QueryTerm> query,
                                    std::size_t k, const Scorer& scorer, TopKStats* stats = nullptr,
                                    const AllowedDocs* allowed = nullptr, const FilterWalkParams& walk = {},
                                    float min_score = 0.0f);

/// Reference implementation: scores every posting of every query term into a dense accumulator and
/// selects the top k. Same ordering contract as search_top_k. O(num_docs + total postings).
std::vector<ScoredDoc> search_exhaustive(const PostingStore& store, std::span<const QueryTerm> query,
                                         std::size_t k, const Scorer& scorer,
                                         const AllowedDocs* allowed = nullptr);

}  // namespace quiver::sparse
