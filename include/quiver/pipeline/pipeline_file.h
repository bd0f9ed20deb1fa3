/// @file pipeline_file.h
/// @brief A pipeline file: the fusion setting (and how it was tuned), the pseudo-relevance feedback
/// and the calibrated cut-off saved by `quiver eval ... --save-pipeline FILE`, read back by `quiver
/// eval --pipeline FILE`, `quiver query --pipeline FILE` and, member by member, accepted by collection
/// search (the HTTP `fusion`, `prf` and `cutoff` objects take the same members).
///
/// Format (JSON, docs/cli-eval.md):
///   {"format": "quiver-pipeline", "version": 1,
///    "fusion": {"method": "convex", "normalization": "min_max", "missing": "zero", "k": 60,
///               "weights": [0.3, 0.7]},
///    "prf": {"method": "rm3", "fb_docs": 10, "fb_terms": 10, "original_query_weight": 0.5},
///    "cutoff": {"method": "calibrated", "depth": 100, "threshold": 0.41, "feature_mean": [6 numbers],
///               "feature_scale": [6], "wa": [6], "wb": [6], "train_f1": 0.52, "split": "train"},
///    "tuned": {"split": "train", "metric": "ndcg@10", "value": 0.71, "sweep": "weights=0:1:0.05",
///              "runs": ["bm25.trec", "dense.trec"]}}
/// `prf`: "rm3" takes fb_docs, fb_terms, original_query_weight; "rocchio" takes fb_docs, fb_terms
/// (lexical only), alpha, beta; defaults as pipeline::PrfSpec. `cutoff`: a CalibrationModel
/// (calibration.h); `split` records the split it was trained on. `prf` and `cutoff` are optional.
/// Unknown members are refused (kInvalidArgument), so a typo never silently changes a setting;
/// `tuned` is a record and changes nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/core/result.h"
#include "quiver/pipeline/calibration.h"
#include "quiver/pipeline/fusion.h"
#include "quiver/pipeline/prf.h"

namespace quiver::pipeline {

struct TuningRecord {
    std::string split;
    std::string metric;
    double value = 0.0;
    std::string sweep;
    std::vector<std::string> runs;
};

/// A trained calibrated cut-off and the split it was trained on (a record).
struct CutoffConfig {
    CalibrationModel model;
    std::string split;
};

struct PipelineConfig {
    FusionSpec fusion;
    std::optional<PrfSpec> prf;
    std::optional<CutoffConfig> cutoff;
    std::optional<TuningRecord> tuned;
};

/// The `fusion` object: {"method", "normalization", "missing", "k", "weights"}, every member optional.
[[nodiscard]] Result<FusionSpec> fusion_from_json(const json::Value& v);
json::Value fusion_to_json(const FusionSpec& spec);

/// The `prf` object: {"method", "fb_docs", "fb_terms", "original_query_weight", "alpha", "beta"},
/// every member optional; `default_method` applies when "method" is absent. Parameters of the other
/// method are refused; the result passes validate_prf.
[[nodiscard]] Result<PrfSpec> prf_from_json(const json::Value& v, PrfMethod default_method = PrfMethod::kRm3);
json::Value prf_to_json(const PrfSpec& spec);

/// The `cutoff` object (see the format above): "method" must be "calibrated"; the four weight vectors
/// hold 6 finite numbers each (feature_scale > 0), depth is 1..10000, threshold in [0, 1].
[[nodiscard]] Result<CutoffConfig> cutoff_from_json(const json::Value& v);
json::Value cutoff_to_json(const CutoffConfig& cutoff);

[[nodiscard]] Result<PipelineConfig> pipeline_from_json(const json::Value& v);
json::Value pipeline_to_json(const PipelineConfig& config);
/// Reads and parses a pipeline file; errors name the file.
[[nodiscard]] Result<PipelineConfig> load_pipeline(const std::string& path);

}  // namespace quiver::pipeline
