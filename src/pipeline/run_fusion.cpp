// Fusion of evaluation runs and weight tuning (see run_fusion.h).
#include "quiver/pipeline/run_fusion.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_map>

namespace quiver::pipeline {

eval::Run fuse_runs(std::span<const eval::Run> runs, const FusionSpec& spec, std::size_t depth) {
    std::vector<std::string_view> queries;
    for (const eval::Run& r : runs) {
        for (const auto& [qid, entries] : r) queries.push_back(qid);
    }
    std::sort(queries.begin(), queries.end());
    queries.erase(std::unique(queries.begin(), queries.end()), queries.end());
    eval::Run out;
    std::vector<std::vector<RankedItem>> lists(runs.size());
    std::unordered_map<std::string_view, std::uint64_t> keys;
    std::vector<std::string_view> names;
    for (std::string_view qid : queries) {
        keys.clear();
        names.clear();
        for (std::size_t i = 0; i < runs.size(); ++i) {
            lists[i].clear();
            const auto it = runs[i].find(std::string(qid));
            if (it == runs[i].end()) continue;
            std::vector<const eval::RunEntry*> order;
            order.reserve(it->second.size());
            for (const eval::RunEntry& e : it->second) order.push_back(&e);
            std::sort(order.begin(), order.end(), [](const eval::RunEntry* a, const eval::RunEntry* b) {
                if (a->score != b->score) return a->score > b->score;
                return a->doc_id > b->doc_id;
            });
            if (order.size() > depth) order.resize(depth);
            for (const eval::RunEntry* e : order) {
                const auto [k, added] = keys.emplace(e->doc_id, names.size());
                if (added) names.push_back(e->doc_id);
                lists[i].push_back({k->second, e->score});
            }
        }
        std::vector<RankedItem> fused = fuse(lists, spec);
        if (fused.size() > depth) fused.resize(depth);
        auto& entries = out[std::string(qid)];
        entries.reserve(fused.size());
        for (const RankedItem& r : fused) entries.push_back({std::string(names[r.key]), r.score});
    }
    return out;
}

std::vector<double> SweepRange::values() const {
    std::vector<double> v;
    const auto n = static_cast<std::size_t>(std::floor((hi - lo) / step + 1e-9));
    for (std::size_t i = 0; i <= n; ++i) {
        v.push_back(std::min(hi, std::round((lo + static_cast<double>(i) * step) * 1e12) / 1e12));
    }
    return v;
}

namespace {

bool parse_double(std::string_view s, double& out) {
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size() && !s.empty() && std::isfinite(out);
}

}  // namespace

Result<SweepRange> parse_sweep(std::string_view text) {
    const std::string_view prefix = "weights=";
    if (text.rfind(prefix, 0) != 0) {
        return invalid_argument(fmt::format("--sweep '{}': expected weights=LO:HI:STEP", text));
    }
    std::string_view rest = text.substr(prefix.size());
    SweepRange r;
    const std::size_t a = rest.find(':');
    const std::size_t b = a == std::string_view::npos ? a : rest.find(':', a + 1);
    if (b == std::string_view::npos || !parse_double(rest.substr(0, a), r.lo) ||
        !parse_double(rest.substr(a + 1, b - a - 1), r.hi) || !parse_double(rest.substr(b + 1), r.step)) {
        return invalid_argument(fmt::format("--sweep '{}': expected weights=LO:HI:STEP with three numbers", text));
    }
    if (r.step <= 0.0 || r.lo < 0.0 || r.lo > r.hi) {
        return invalid_argument(fmt::format("--sweep '{}': needs 0 <= LO <= HI and STEP > 0", text));
    }
    if ((r.hi - r.lo) / r.step > 10000.0) return invalid_argument(fmt::format("--sweep '{}': more than 10,000 points", text));
    return r;
}

Result<TuneResult> tune_fusion_weights(std::span<const eval::Run> runs, const eval::Qrels& tune_qrels,
                                       const eval::MetricSpec& metric, const FusionSpec& base,
                                       const SweepRange& range, std::size_t depth, const eval::EvalOptions& options) {
    if (runs.size() < 2) return invalid_argument("tuning fusion weights needs at least two runs");
    const std::vector<double> values = range.values();
    std::vector<std::vector<double>> points;
    if (runs.size() == 2) {
        // 1 - w rounded to the grid's precision, so 0.9 pairs with 0.1, not 0.09999999999999998.
        for (double w : values) points.push_back({w, std::round((1.0 - w) * 1e12) / 1e12});
    } else {
        double combos = std::pow(static_cast<double>(values.size()), static_cast<double>(runs.size()));
        if (combos > 200000.0) {
            return invalid_argument(fmt::format("{} runs over {} sweep values make more than 200,000 weight combinations",
                                                runs.size(), values.size()));
        }
        std::vector<std::size_t> idx(runs.size(), 0);
        for (;;) {
            std::vector<double> w;
            double sum = 0.0;
            for (std::size_t i : idx) {
                w.push_back(values[i]);
                sum += values[i];
            }
            if (sum > 0.0) points.push_back(std::move(w));
            std::size_t d = 0;
            while (d < idx.size() && ++idx[d] == values.size()) idx[d++] = 0;
            if (d == idx.size()) break;
        }
    }
    // Only the tuning split's queries are fused and scored.
    std::vector<eval::Run> restricted(runs.size());
    for (std::size_t i = 0; i < runs.size(); ++i) {
        for (const auto& [qid, entries] : runs[i]) {
            if (tune_qrels.count(qid) > 0) restricted[i].emplace(qid, entries);
        }
    }
    TuneResult result;
    bool have = false;
    for (auto& w : points) {
        FusionSpec spec = base;
        spec.weights = w;
        QUIVER_TRY(validate_fusion(spec, runs.size()));
        const eval::Run fused = fuse_runs(restricted, spec, depth);
        QUIVER_ASSIGN_OR_RETURN(eval::EvalReport rep, eval::evaluate(tune_qrels, fused, {metric}, options));
        const double v = rep.metrics[0].mean;
        result.grid.push_back({w, v});
        if (!have || v > result.best_value) {
            have = true;
            result.best_value = v;
            result.best = std::move(spec);
        }
    }
    return result;
}

}  // namespace quiver::pipeline
