/// @file fusion.h
/// @brief Fusion of several ranked result lists into one: weighted reciprocal rank fusion (RRF) and
/// convex combinations of normalised scores (min-max, z-score, DBSF).
///
/// The one implementation: `Collection::search` fuses multi-clause (hybrid) queries with it (engine/
/// re-exports these names), `quiver eval --fuse` fuses TREC runs with it (`fuse_runs`, run_fusion.h).
/// Independent of collections: any ranked lists keyed by a 64-bit item key can be fused.
///
/// Definitions (list i has weight w_i):
///   - RRF:     score(d) = sum_i w_i / (k + rank_i(d)), ranks starting at 1 (list order, best first).
///   - convex:  score(d) = sum_i w_i * norm_i(s_i(d)) with norm_i one of
///       min-max: (s - min) / (max - min); 1 for every item when max == min;
///       z-score: (s - mean) / sd (population sd); 0 for every item when sd == 0;
///       DBSF:    (s - (mean - 3 sd)) / (6 sd), clamped to [0, 1]; 0.5 for every item when sd == 0
///                (distribution-based score fusion, as Qdrant's `dbsf`).
///     Statistics are over the list as given (its top results). Weights need not sum to 1; they are
///     finite and >= 0.
/// Missing documents (an item absent from list i): RRF adds nothing for list i. Convex adds, per
/// `MissingScore`, kZero: 0 (the item scores as if normalised to 0 in list i); kMin: list i's lowest
/// normalised score (pyserini's hybrid interpolation, which imputes the list minimum); an empty list
/// contributes nothing either way.
/// The fused list is sorted by score descending, ties by key ascending (deterministic).
///
/// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::pipeline {

enum class FusionMethod : std::uint8_t { kRrf, kConvex };
enum class ScoreNormalization : std::uint8_t { kMinMax, kZScore, kDbsf };
enum class MissingScore : std::uint8_t { kZero, kMin };

struct FusionSpec {
    FusionMethod method = FusionMethod::kRrf;
    double rrf_k = 60.0;  ///< RRF constant, finite and >= 0
    ScoreNormalization normalization = ScoreNormalization::kMinMax;  ///< kConvex only
    MissingScore missing = MissingScore::kZero;  ///< kConvex only
    /// Per list; empty = every weight 1.
    std::vector<double> weights;
};

/// One item of a ranked list: a caller-chosen key and its score (higher is better).
struct RankedItem {
    std::uint64_t key = 0;
    double score = 0.0;
};

std::string_view to_string(FusionMethod m) noexcept;
std::string_view to_string(ScoreNormalization n) noexcept;
/// "rrf", "convex" (also "linear").
Result<FusionMethod> parse_fusion_method(std::string_view name);
/// "min_max", "z_score", "dbsf" (also "minmax", "zscore").
Result<ScoreNormalization> parse_normalization(std::string_view name);
std::string_view to_string(MissingScore m) noexcept;
/// "zero", "min".
Result<MissingScore> parse_missing_score(std::string_view name);

/// kInvalidArgument when the spec cannot fuse `lists` lists (weights count, negative or non-finite
/// weights, a bad RRF k).
[[nodiscard]] Status validate_fusion(const FusionSpec& spec, std::size_t lists);

/// Normalises `scores` in place with `n` (the definitions above).
void normalize_scores(std::span<double> scores, ScoreNormalization n);

/// Fuses `lists` (each best first; keys unique within a list). Call validate_fusion first.
std::vector<RankedItem> fuse(std::span<const std::vector<RankedItem>> lists, const FusionSpec& spec);

}  // namespace quiver::pipeline
