// quiver gt: exact ground truth (top-k ids per query) written as .ivecs, using the flat index.
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/core/progress.h"
#include "quiver/index/flat_index.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct GtOptions {
    std::string base, queries, output, distances, metric = "cosine";
    std::size_t k = 100, threads = 0;
};

Status run_gt(const GtOptions& o) {
    QUIVER_ASSIGN_OR_RETURN(simd::Metric metric, simd::parse_metric(o.metric));
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet base, storage::read_vectors(o.base));
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet queries, storage::read_vectors(o.queries));
    if (base.vectors.dim != queries.vectors.dim) {
        return invalid_argument(fmt::format("base has dimension {}, queries have {}", base.vectors.dim,
                                            queries.vectors.dim));
    }
    if (o.k > base.vectors.rows) {
        return invalid_argument(fmt::format("k = {} exceeds the {} base vectors", o.k, base.vectors.rows));
    }
    QUIVER_ASSIGN_OR_RETURN(auto flat, index::FlatIndex::create(base.vectors.dim, metric));
    QUIVER_TRY(flat->add(base.vectors, index::sequential_labels(base.vectors.rows)));
    ProgressBar bar("ground truth", queries.vectors.rows, "queries");
    Matrix<std::int32_t> ids(queries.vectors.rows, o.k);
    Matrix<float> dist(queries.vectors.rows, o.k);
    constexpr std::size_t kChunk = 1024;
    for (std::size_t q0 = 0; q0 < queries.vectors.rows; q0 += kChunk) {
        const std::size_t n = std::min(kChunk, queries.vectors.rows - q0);
        QUIVER_ASSIGN_OR_RETURN(auto r, flat->search(queries.vectors.view().slice(q0, n),
                                                     {.k = o.k, .threads = o.threads}));
        for (std::size_t i = 0; i < n * o.k; ++i) {
            ids.values[q0 * o.k + i] = static_cast<std::int32_t>(to_int(r.labels[i]));
            dist.values[q0 * o.k + i] = r.distances[i];
        }
        bar.add(n);
    }
    bar.finish();
    QUIVER_TRY(storage::write_ivecs(o.output, ids));
    if (!o.distances.empty()) QUIVER_TRY(storage::write_fvecs(o.distances, dist));
    std::printf("wrote exact top-%zu of %zu queries to %s\n", o.k, queries.vectors.rows, o.output.c_str());
    return {};
}

void add_gt_command(CLI::App& app) {
    auto o = std::make_shared<GtOptions>();
    auto* sub = app.add_subcommand("gt", "Compute exact nearest neighbours (ground truth) as .ivecs");
    sub->footer("Ties are broken by lower id. Distances are re-scored in double precision.\n"
                "Example: quiver gt --base base.fvecs --queries query.fvecs --k 100 --metric l2 -o gt.ivecs");
    sub->add_option("--base", o->base, "Base vectors")->required();
    sub->add_option("-q,--queries", o->queries, "Query vectors")->required();
    sub->add_option("-o,--output", o->output, "Output .ivecs (k ids per query)")->required();
    sub->add_option("--output-distances", o->distances, "Also write the distances here (.fvecs)");
    sub->add_option("--metric", o->metric, "cosine | l2 | ip")->capture_default_str();
    sub->add_option("-k,--k", o->k, "Neighbours per query")->capture_default_str();
    sub->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
    set_status_action(sub, "gt", [o] { return run_gt(*o); });
}

const CommandRegistrar kRegister{30, &add_gt_command};

}  // namespace
}  // namespace quiver::cli
