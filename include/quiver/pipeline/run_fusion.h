/// @file run_fusion.h
/// @brief Fusion of evaluation runs (TREC run files) and tuning of fusion weights on one split's
/// judgments.
///
/// `fuse_runs` ranks each run's entries per query as trec_eval does (score descending, then document
/// id descending), keeps the top `depth`, and fuses the lists with `fuse` (fusion.h); a query absent
/// from a run has an empty list there (the missing-document rule applies to all its documents).
///
/// Tuning never sees the split it is reported on: `tune_fusion_weights` takes only the tuning split's
/// qrels, and evaluates every grid point on them; the caller reports the winner on another split.
///
/// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/eval/metrics.h"
#include "quiver/pipeline/fusion.h"

namespace quiver::pipeline {

/// Fuses `runs` query by query (the union of their queries); each fused list holds at most `depth`
/// documents. Call validate_fusion(spec, runs.size()) first.
eval::Run fuse_runs(std::span<const eval::Run> runs, const FusionSpec& spec, std::size_t depth);

/// A grid `lo:hi:step` (inclusive of hi up to rounding), e.g. "0:1:0.05" -> 0, 0.05, ..., 1.
struct SweepRange {
    double lo = 0.0;
    double hi = 1.0;
    double step = 0.05;
    std::vector<double> values() const;
};
/// Parses "weights=LO:HI:STEP" (the only swept parameter today). kInvalidArgument on a bad range
/// (step <= 0, lo > hi, negative bounds, more than 10,000 points).
[[nodiscard]] Result<SweepRange> parse_sweep(std::string_view text);

struct TunedPoint {
    std::vector<double> weights;
    double value = 0.0;  ///< the metric on the tuning split
};

struct TuneResult {
    FusionSpec best;            ///< `base` with the best weights
    double best_value = 0.0;    ///< its metric on the tuning split
    std::vector<TunedPoint> grid;  ///< every point evaluated, in sweep order
};

/// Sweeps the weights over `range` and keeps the point with the highest mean `metric` on
/// `tune_qrels` (the first such point in sweep order on ties). Two runs: weights (w, 1 - w) for w in
/// the range; more runs: every combination of range values (not all zero), at most 200,000.
[[nodiscard]] Result<TuneResult> tune_fusion_weights(std::span<const eval::Run> runs, const eval::Qrels& tune_qrels,
                                                     const eval::MetricSpec& metric, const FusionSpec& base,
                                                     const SweepRange& range, std::size_t depth,
                                                     const eval::EvalOptions& options = {});

}  // namespace quiver::pipeline
