// The filtered-search planner and the dispatch to its strategies. See quiver/index/filtered_search.h.
#include "quiver/index/filtered_search.h"

#include <fmt/format.h>

#include <algorithm>

#include "index/hnsw/hnsw_graph.h"
#include "index/prepare.h"
#include "index/topk.h"

namespace quiver::index {
namespace {

// The exact scan of an HNSW graph on codes whose float32 vectors stay on disk (vectors_on_disk): each
// allowed node's vector is read with pread. A vector that cannot be read is skipped. Nearest first,
// ties by label.
std::vector<Neighbor> exact_scan_on_disk(const HnswIndex& hnsw, std::span<const float> query, const Bitmap& allowed,
                                         std::size_t k) {
    const HnswGraph& g = hnsw.graph();
    if (k == 0 || g.count == 0) return {};
    const auto prepared = detail::prepare_rows(MatrixView<float>{query.data(), 1, query.size()}, g.metric);
    const float* q = prepared.view.row_ptr(0);
    std::vector<float> buf(g.dim);
    detail::TopK top(k);
    auto consider = [&](std::uint32_t slot) {
        if (g.read_vector(slot, buf.data())) top.push(g.dist(q, buf.data(), g.dim), to_int(g.labels[slot]));
    };
    for_each_allowed_slot(g, allowed, consider);
    std::vector<Neighbor> out;
    for (const auto& [d, label] : top.take_sorted()) out.push_back({Label{label}, d});
    return out;
}

}  // namespace

std::string_view to_string(FilterStrategy s) noexcept {
    switch (s) {
        case FilterStrategy::kAuto: return "auto";
        case FilterStrategy::kUnfiltered: return "unfiltered";
        case FilterStrategy::kExactScan: return "exact";
        case FilterStrategy::kAcorn: return "acorn";
        case FilterStrategy::kPostFilter: return "post_filter";
    }
    return "auto";
}

Result<FilterStrategy> parse_filter_strategy(std::string_view name) {
    for (auto s : {FilterStrategy::kAuto, FilterStrategy::kUnfiltered, FilterStrategy::kExactScan, FilterStrategy::kAcorn,
                   FilterStrategy::kPostFilter}) {
        if (name == to_string(s)) return s;
    }
    return invalid_argument("unknown filter strategy '" + std::string(name) +
                            "' (auto, unfiltered, exact, acorn, post_filter)");
}

FilterPlan plan_filtered_search(std::uint64_t matches, std::uint64_t size, bool graph, const PlannerParams& params,
                                FilterStrategy forced) {
    FilterPlan p;
    p.matches = matches;
    p.size = size;
    p.selectivity = size == 0 ? 1.0 : std::min(1.0, static_cast<double>(matches) / static_cast<double>(size));
    const std::string sel = fmt::format("{} of {} vectors match ({:.3g}%)", matches, size, 100.0 * p.selectivity);
    if (!graph) {
        p.strategy = FilterStrategy::kExactScan;
        p.reason = sel + "; a flat index scans exactly";
        return p;
    }
    if (forced != FilterStrategy::kAuto) {
        p.strategy = forced;
        p.reason = sel + "; strategy forced by the caller";
        return p;
    }
    if (matches >= size) {
        p.strategy = FilterStrategy::kUnfiltered;
        p.reason = sel + ": the filter excludes nothing, plain HNSW search (matches still checked per result)";
    } else if (matches <= params.exact_max_matches) {
        p.strategy = FilterStrategy::kExactScan;
        p.reason = fmt::format("{}: at most {} matches, an exact scan of the matching set is cheaper than a walk",
                               sel, params.exact_max_matches);
    } else if (p.selectivity >= params.post_filter_min_selectivity) {
        p.strategy = FilterStrategy::kPostFilter;
        p.reason = fmt::format("{}: selectivity >= {:.3g}, the HNSW walk keeping matches finds ef of them quickly",
                               sel, params.post_filter_min_selectivity);
    } else {
        p.strategy = FilterStrategy::kAcorn;
        p.reason = sel + ": too many to scan, too few for post-filtering; ACORN traversal of the matching subgraph";
    }
    return p;
}

Result<std::vector<Neighbor>> filtered_search(const VectorIndex& index, std::span<const float> query,
                                              const Bitmap* allowed, const FilteredSearchParams& params,
                                              FilterPlan* plan_out) {
    const IndexInfo info = index.info();
    QUIVER_TRY(detail::validate_rows(MatrixView<float>{query.data(), 1, query.size()}, info.dim, info.metric, "queries"));
    QUIVER_TRY(index.verify());  // the strategies below read the index's sections directly
    const auto* hnsw = dynamic_cast<const HnswIndex*>(&index);
    const std::uint64_t matches = allowed != nullptr ? allowed->cardinality() : info.size;
    FilterPlan plan = plan_filtered_search(matches, info.size, hnsw != nullptr, params.planner, params.strategy);
    if (allowed == nullptr && plan.strategy != FilterStrategy::kUnfiltered && hnsw != nullptr) {
        plan.strategy = FilterStrategy::kUnfiltered;  // nothing to filter whatever was forced
    }
    std::vector<Neighbor> out;
    auto run_index = [&](bool filtered) -> Status {
        const AllowedLabels labels(AllowedDocs{nullptr, allowed}, matches * 2 >= info.size);
        SearchParams sp;
        sp.k = params.k;
        sp.ef = params.ef;
        sp.rescore = params.rescore;
        sp.filter = filtered && allowed != nullptr ? &labels : nullptr;
        QUIVER_ASSIGN_OR_RETURN(auto res, index.search(MatrixView<float>{query.data(), 1, query.size()}, sp));
        out.clear();
        for (std::size_t j = 0; j < res.count(0); ++j) out.push_back({res.label(0, j), res.distance(0, j)});
        return ok_status();
    };
    switch (plan.strategy) {
        case FilterStrategy::kAuto:
        case FilterStrategy::kUnfiltered:
            // A bitmap as large as the index may still name labels the index lacks (and miss some it
            // has): the walk keeps checking it. Callers that know every label passes give no bitmap.
            QUIVER_TRY(run_index(allowed != nullptr));
            break;
        case FilterStrategy::kPostFilter: QUIVER_TRY(run_index(true)); break;
        case FilterStrategy::kExactScan:
            if (hnsw == nullptr) {
                QUIVER_TRY(run_index(true));
            } else if (hnsw->vectors_on_disk()) {
                out = exact_scan_on_disk(*hnsw, query, *allowed, params.k);
            } else {
                out = hnsw_exact_scan(*hnsw, query, *allowed, params.k);
            }
            break;
        case FilterStrategy::kAcorn: {
            if (hnsw->vectors_on_disk()) {
                // ACORN computes float32 distances from memory; a graph whose vectors are on disk walks
                // its codes with the filter instead (and re-scores its beam from disk).
                plan.reason += "; the float32 vectors are on disk: answered by the post-filter walk on codes";
                QUIVER_TRY(run_index(true));
                break;
            }
            out = hnsw_acorn_search(*hnsw, params.acorn, query, *allowed, params.k, params.ef);
            if (out.size() < std::min<std::uint64_t>(params.k, matches) && params.strategy == FilterStrategy::kAuto) {
                plan.fallback = true;
                plan.reason += "; ACORN found " + std::to_string(out.size()) + " of " +
                               std::to_string(std::min<std::uint64_t>(params.k, matches)) +
                               ", answered by the post-filter walk";
                QUIVER_TRY(run_index(true));
            }
            break;
        }
    }
    if (plan_out != nullptr) *plan_out = std::move(plan);
    return out;
}

}  // namespace quiver::index
