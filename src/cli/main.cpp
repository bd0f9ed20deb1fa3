// quiver: the command-line tool. Argument parsing lives only here (tier 4).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/simd/kernels.h"

namespace {

std::string version_string() {
    return fmt::format("quiver {} (simd: {}, detected: {})", QUIVER_VERSION,
                       quiver::simd::to_string(quiver::simd::active_simd_level()),
                       quiver::simd::to_string(quiver::simd::detected_simd_level()));
}

}  // namespace

int main(int argc, char** argv) {
    try {
        CLI::App app{"quiver: embedding-based retrieval engine (dense ANN, BM25, learned sparse, eval)",
                     "quiver"};
        app.set_version_flag("--version", version_string());
        app.require_subcommand(1);
        app.fallthrough(false);
        quiver::cli::add_registered_commands(app);
        quiver::cli::add_bench_command(app, argv[0]);
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e);
        }
        return quiver::cli::action_exit_code();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quiver: internal error: %s\n", e.what());
        return 70;
    }
}
