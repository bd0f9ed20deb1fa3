/// @file pipeline_file.h
/// @brief A pipeline file: the fusion setting (and how it was tuned) saved by `quiver eval --sweep
/// ... --save-pipeline FILE`, read back by `quiver eval --pipeline FILE` and, as its `fusion` member,
/// accepted by collection search (the HTTP `fusion` object takes the same members).
///
/// Format (JSON, docs/cli-eval.md):
///   {"format": "quiver-pipeline", "version": 1,
///    "fusion": {"method": "convex", "normalization": "min_max", "missing": "zero", "k": 60,
///               "weights": [0.3, 0.7]},
///    "tuned": {"split": "train", "metric": "ndcg@10", "value": 0.71, "sweep": "weights=0:1:0.05",
///              "runs": ["bm25.trec", "dense.trec"]}}
/// Unknown members are refused (kInvalidArgument), so a typo never silently changes a setting;
/// `tuned` is a record and changes nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/core/result.h"
#include "quiver/pipeline/fusion.h"

namespace quiver::pipeline {

struct TuningRecord {
    std::string split;
    std::string metric;
    double value = 0.0;
    std::string sweep;
    std::vector<std::string> runs;
};

struct PipelineConfig {
    FusionSpec fusion;
    std::optional<TuningRecord> tuned;
};

/// The `fusion` object: {"method", "normalization", "missing", "k", "weights"}, every member optional.
[[nodiscard]] Result<FusionSpec> fusion_from_json(const json::Value& v);
json::Value fusion_to_json(const FusionSpec& spec);

[[nodiscard]] Result<PipelineConfig> pipeline_from_json(const json::Value& v);
json::Value pipeline_to_json(const PipelineConfig& config);
/// Reads and parses a pipeline file; errors name the file.
[[nodiscard]] Result<PipelineConfig> load_pipeline(const std::string& path);

}  // namespace quiver::pipeline
