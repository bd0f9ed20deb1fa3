// quiver gen: synthetic dense vectors (clustered gaussians) for demos, tests and benchmarks.
#include <fmt/format.h>

#include <filesystem>
#include <random>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {
namespace {

struct GenOptions {
    std::string output_dir;
    std::size_t rows = 10000, queries = 100, dim = 64, clusters = 100;
    double spread = 0.35;
    std::uint64_t seed = 42;
};

// Vectors are drawn around `clusters` random unit centres with gaussian noise of scale `spread`,
// which gives the neighbourhood structure of real embeddings (plain iid noise has none).
// Queries come from the same mixture, so they have true near neighbours.
Matrix<float> draw(std::size_t n, const Matrix<float>& centres, double spread, std::mt19937_64& rng) {
    std::normal_distribution<float> noise(0.0f, static_cast<float>(spread / std::sqrt(static_cast<double>(centres.dim))));
    std::uniform_int_distribution<std::size_t> pick(0, centres.rows - 1);
    Matrix<float> m(n, centres.dim);
    for (std::size_t r = 0; r < n; ++r) {
        const float* c = centres.row_ptr(pick(rng));
        for (std::size_t j = 0; j < centres.dim; ++j) m.row_ptr(r)[j] = c[j] + noise(rng);
    }
    return m;
}

Status run_gen(const GenOptions& o) {
    if (o.rows == 0 || o.dim == 0 || o.clusters == 0) {
        return invalid_argument("--rows, --dim and --clusters must be positive");
    }
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec) return io_error(fmt::format("creating '{}': {}", o.output_dir, ec.message()));
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> nd;
    Matrix<float> centres(o.clusters, o.dim);
    for (std::size_t c = 0; c < o.clusters; ++c) {
        double norm = 0;
        for (std::size_t j = 0; j < o.dim; ++j) {
            const float v = nd(rng);
            centres.row_ptr(c)[j] = v;
            norm += static_cast<double>(v) * v;
        }
        for (std::size_t j = 0; j < o.dim; ++j) centres.row_ptr(c)[j] /= static_cast<float>(std::sqrt(norm));
    }
    const auto base = draw(o.rows, centres, o.spread, rng);
    const auto queries = draw(o.queries, centres, o.spread, rng);
    const std::string base_path = o.output_dir + "/base.fvecs";
    const std::string query_path = o.output_dir + "/query.fvecs";
    QUIVER_TRY(storage::write_fvecs(base_path, base));
    QUIVER_TRY(storage::write_fvecs(query_path, queries));
    std::printf("wrote %zu x %zu base vectors to %s and %zu queries to %s\n", o.rows, o.dim, base_path.c_str(),
                o.queries, query_path.c_str());
    return {};
}

void add_gen_command(CLI::App& app) {
    auto o = std::make_shared<GenOptions>();
    auto* sub = app.add_subcommand("gen", "Generate synthetic clustered vectors (base.fvecs, query.fvecs)");
    sub->add_option("-o,--output", o->output_dir, "Directory to write base.fvecs and query.fvecs into")->required();
    sub->add_option("--rows", o->rows, "Base vectors")->capture_default_str();
    sub->add_option("--queries", o->queries, "Query vectors")->capture_default_str();
    sub->add_option("--dim", o->dim, "Dimension")->capture_default_str();
    sub->add_option("--clusters", o->clusters, "Mixture components")->capture_default_str();
    sub->add_option("--spread", o->spread, "Noise scale around each unit-norm centre")->capture_default_str();
    sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
    set_status_action(sub, "gen", [o] { return run_gen(*o); });
}

const CommandRegistrar kRegister{5, &add_gen_command};

}  // namespace
}  // namespace quiver::cli
