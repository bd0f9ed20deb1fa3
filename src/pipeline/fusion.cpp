// Fusion of ranked lists (see fusion.h for the definitions).
#include "quiver/pipeline/fusion.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace quiver::pipeline {

std::string_view to_string(FusionMethod m) noexcept { return m == FusionMethod::kRrf ? "rrf" : "convex"; }

std::string_view to_string(ScoreNormalization n) noexcept {
    switch (n) {
        case ScoreNormalization::kMinMax: return "min_max";
        case ScoreNormalization::kZScore: return "z_score";
        case ScoreNormalization::kDbsf: return "dbsf";
    }
    return "min_max";
}

Result<FusionMethod> parse_fusion_method(std::string_view name) {
    if (name == "rrf") return FusionMethod::kRrf;
    if (name == "convex" || name == "linear") return FusionMethod::kConvex;
    return invalid_argument("unknown fusion method '" + std::string(name) + "' (rrf, convex)");
}

Result<ScoreNormalization> parse_normalization(std::string_view name) {
    if (name == "min_max" || name == "minmax") return ScoreNormalization::kMinMax;
    if (name == "z_score" || name == "zscore") return ScoreNormalization::kZScore;
    if (name == "dbsf") return ScoreNormalization::kDbsf;
    return invalid_argument("unknown normalization '" + std::string(name) + "' (min_max, z_score, dbsf)");
}

std::string_view to_string(MissingScore m) noexcept { return m == MissingScore::kZero ? "zero" : "min"; }

Result<MissingScore> parse_missing_score(std::string_view name) {
    if (name == "zero") return MissingScore::kZero;
    if (name == "min") return MissingScore::kMin;
    return invalid_argument("unknown missing-document rule '" + std::string(name) + "' (zero, min)");
}

Status validate_fusion(const FusionSpec& spec, std::size_t lists) {
    if (!std::isfinite(spec.rrf_k) || spec.rrf_k < 0.0) return invalid_argument("the RRF k must be finite and >= 0");
    if (!spec.weights.empty() && spec.weights.size() != lists) {
        return invalid_argument(std::to_string(spec.weights.size()) + " weights for " + std::to_string(lists) +
                                " ranked lists");
    }
    for (double w : spec.weights) {
        if (!std::isfinite(w) || w < 0.0) return invalid_argument("fusion weights must be finite and >= 0");
    }
    return ok_status();
}

void normalize_scores(std::span<double> scores, ScoreNormalization n) {
    if (scores.empty()) return;
    if (n == ScoreNormalization::kMinMax) {
        const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
        const double min = *lo, range = *hi - *lo;
        for (double& s : scores) s = range > 0.0 ? (s - min) / range : 1.0;
        return;
    }
    double mean = 0.0;
    for (double s : scores) mean += s;
    mean /= static_cast<double>(scores.size());
    double var = 0.0;
    for (double s : scores) var += (s - mean) * (s - mean);
    const double sd = std::sqrt(var / static_cast<double>(scores.size()));
    for (double& s : scores) {
        if (n == ScoreNormalization::kZScore) {
            s = sd > 0.0 ? (s - mean) / sd : 0.0;
        } else if (sd > 0.0) {
            s = std::clamp((s - (mean - 3.0 * sd)) / (6.0 * sd), 0.0, 1.0);
        } else {
            s = 0.5;
        }
    }
}

std::vector<RankedItem> fuse(std::span<const std::vector<RankedItem>> lists, const FusionSpec& spec) {
    std::unordered_map<std::uint64_t, double> fused;
    std::vector<double> norm;
    std::vector<std::pair<std::size_t, double>> floors;  // (list, weight * its minimum normalised score)
    for (std::size_t i = 0; i < lists.size(); ++i) {
        const auto& list = lists[i];
        const double w = spec.weights.empty() ? 1.0 : spec.weights[i];
        if (spec.method == FusionMethod::kRrf) {
            for (std::size_t r = 0; r < list.size(); ++r) {
                fused[list[r].key] += w / (spec.rrf_k + static_cast<double>(r + 1));
            }
            continue;
        }
        if (list.empty()) continue;
        norm.resize(list.size());
        for (std::size_t r = 0; r < list.size(); ++r) norm[r] = list[r].score;
        normalize_scores(norm, spec.normalization);
        for (std::size_t r = 0; r < list.size(); ++r) fused[list[r].key] += w * norm[r];
        if (spec.missing == MissingScore::kMin) floors.push_back({i, w * *std::min_element(norm.begin(), norm.end())});
    }
    // Imputed minimums for the items each list lacks.
    if (!floors.empty()) {
        std::vector<std::unordered_set<std::uint64_t>> present(lists.size());
        for (const auto& [i, floor] : floors) {
            for (const RankedItem& r : lists[i]) present[i].insert(r.key);
        }
        for (auto& [key, score] : fused) {
            for (const auto& [i, floor] : floors) {
                if (present[i].count(key) == 0) score += floor;
            }
        }
    }
    std::vector<RankedItem> out;
    out.reserve(fused.size());
    for (const auto& [key, score] : fused) out.push_back({key, score});
    std::sort(out.begin(), out.end(), [](const RankedItem& a, const RankedItem& b) {
        if (a.score != b.score) return a.score > b.score;
        return a.key < b.key;
    });
    return out;
}

}  // namespace quiver::pipeline
