/// @file fusion.h
/// @brief The fusion operators collections use, re-exported from the pipeline module (tier 2), where
/// they live once so that `quiver eval` and tuning use the same code (see quiver/pipeline/fusion.h).
#pragma once

#include "quiver/pipeline/fusion.h"

namespace quiver::engine {

using pipeline::FusionMethod;
using pipeline::FusionSpec;
using pipeline::MissingScore;
using pipeline::RankedItem;
using pipeline::ScoreNormalization;
using pipeline::fuse;
using pipeline::normalize_scores;
using pipeline::parse_fusion_method;
using pipeline::parse_missing_score;
using pipeline::parse_normalization;
using pipeline::to_string;
using pipeline::validate_fusion;

}  // namespace quiver::engine
