/// @file calibration.h
/// @brief A query-dependent relevance cut-off in the manner of the Cosine Adapter (Rossi et al., CIKM
/// 2024; algorithms.md s7): a monotone per-query score mapping whose parameters come from the query
/// (here: its score distribution), trained on a training split's judgments, then one global threshold.
///
/// Per query, the top `depth` scores s_1 >= s_2 >= ... give features
///   f(q) = [1, s_1, mean(s_1..s_10), sd(s_1..s_10), s_1 - s_10, mean(s_1..s_depth)]
/// standardised with the training queries' means and deviations (the constant stays 1). The mapping is
///   s'(q, s) = exp(w_a · f(q)) * (s - s_1) + w_b · f(q)   (slope > 0: the query's ranking is kept),
/// and P(relevant | q, s) = sigmoid(s'). w_a and w_b minimise the mean binary cross-entropy over the
/// training queries' retrieved (query, document) pairs (label: qrels grade >= 1) by full-batch Adam.
/// The global threshold t on P is the one (among the training pairs' probabilities) with the best mean
/// F1 over training queries; the returned set of a query is its documents with P >= t.
///
/// Set metrics (macro over the judged queries present in the run): precision = relevant returned /
/// returned (0 for an empty set), recall = relevant returned / relevant judged, F1 their harmonic mean
/// (0 when both are 0).
///
/// Thread-safety: pure functions; a trained model is immutable.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/eval/metrics.h"

namespace quiver::pipeline {

struct CalibrationOptions {
    std::size_t depth = 100;    ///< scores per query used (features and training pairs)
    std::size_t steps = 3000;   ///< Adam steps
    double learning_rate = 0.05;
};

struct CalibrationModel {
    std::size_t depth = 100;
    std::vector<double> feature_mean, feature_scale;  ///< standardisation (index 0, the constant, unused)
    std::vector<double> wa, wb;
    double threshold = 0.5;  ///< on the probability scale
    double train_f1 = 0.0;   ///< mean F1 on the training split at `threshold`
};

/// Trains on the queries of `train_qrels` that `run` answers. kInvalidArgument when fewer than two such
/// queries have a retrieved relevant document.
[[nodiscard]] Result<CalibrationModel> train_calibration(const eval::Run& run, const eval::Qrels& train_qrels,
                                                         const CalibrationOptions& options = {});

/// The probability of relevance of each of the query's top `model.depth` entries, best first
/// (entries ordered as trec_eval ranks them).
std::vector<eval::RunEntry> calibrated_scores(const std::vector<eval::RunEntry>& entries, const CalibrationModel& model);

/// kInvalidArgument unless `model` is usable: depth 1..10000, four vectors of 6 finite numbers
/// (feature_scale > 0), threshold in [0, 1] (for models read from JSON or built in code).
[[nodiscard]] Status validate_calibration(const CalibrationModel& model);

/// The probability of relevance of each of one query's scores, given best first (already cut to the
/// model's depth): what `calibrated_scores` computes, for callers that rank themselves (collections).
std::vector<double> calibrated_probabilities(std::span<const double> scores_best_first, const CalibrationModel& model);

/// The run cut per query by the model (entries with P >= threshold; scores replaced by P).
eval::Run apply_calibrated_cutoff(const eval::Run& run, const CalibrationModel& model);
/// The run cut by one global threshold on the raw scores (entries with score >= threshold, top `depth`).
eval::Run apply_global_cutoff(const eval::Run& run, double threshold, std::size_t depth);

struct SetMetrics {
    double precision = 0.0;
    double recall = 0.0;
    double f1 = 0.0;
    std::size_t queries = 0;
};
SetMetrics set_metrics(const eval::Run& returned, const eval::Qrels& qrels);

/// The raw-score threshold with the best mean F1 on `qrels` (candidates: every score in the queries'
/// top `depth`); ties keep the highest threshold.
double best_global_threshold(const eval::Run& run, const eval::Qrels& qrels, std::size_t depth);

}  // namespace quiver::pipeline
