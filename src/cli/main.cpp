// quiver: the command-line tool. Argument parsing lives only here (tier 4).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/registry.h"
#include "quiver/simd/kernels.h"

// jemalloc's control interface, declared weak: null unless jemalloc is linked in.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen)
    __attribute__((weak));

// jemalloc's options for this executable, read when it starts (MALLOC_CONF in the environment still
// overrides them; the system malloc ignores the symbol): freed pages are returned to the kernel by
// jemalloc's background thread, not inside the request that freed them. Under issue 10's mixed load
// that gave p99 50.2 and 52.8 ms against 55.2 and 56.9 ms without it, interleaved (docs/collections.md).
extern "C" {
extern const char* malloc_conf;
__attribute__((used)) const char* malloc_conf = "background_thread:true";
}

namespace {

// The allocator the executable runs on: jemalloc when it is linked in (src/cli/CMakeLists.txt;
// its mallctl is then defined), else the system's malloc.
std::string allocator_name() {
    if (mallctl == nullptr) return "system";
    const char* version = nullptr;
    std::size_t len = sizeof(version);
    if (mallctl("version", static_cast<void*>(&version), &len, nullptr, 0) != 0 || version == nullptr) return "jemalloc";
    bool background = false;
    std::size_t blen = sizeof(background);
    if (mallctl("opt.background_thread", &background, &blen, nullptr, 0) != 0) background = false;
    return fmt::format("jemalloc {}{}", version, background ? ", background_thread" : "");
}

std::string version_string() {
    return fmt::format("quiver {} (simd: {}, detected: {}, allocator: {})", QUIVER_VERSION,
                       quiver::simd::to_string(quiver::simd::active_simd_level()),
                       quiver::simd::to_string(quiver::simd::detected_simd_level()), allocator_name());
}

// The file kind (fourcc at bytes 4..7 of a quiver file), or "" when unreadable.
std::string file_kind(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char header[8] = {};
    if (!f.read(header, sizeof(header))) return {};
    return std::string(header + 4, 4);
}

// Flags renamed to follow the naming rule (docs/cli.md): the old spelling keeps working, with a
// warning, until the next release. {subcommand, old, new}.
struct RenamedFlag {
    const char* command;
    const char* old_name;
    const char* new_name;
};
constexpr RenamedFlag kRenamedFlags[] = {
    {"build", "--index", "--index-type"},
    {"build", "--M", "--m"},
    {"search", "--index", "--index-file"},
    {"sparse-build", "--index", "--index-type"},
    {"sparse-search", "--index", "--index-file"},
    {"eval", "--index", "--index-type"},
    {"eval", "--run", "--trec"},
    {"gt", "--distances", "--output-distances"},
    {"sparse-gen", "--out-docs", "--output-docs"},
    {"sparse-gen", "--out-queries", "--output-queries"},
};

std::vector<std::string> rename_flags(std::vector<std::string> args) {
    if (args.size() < 2) return args;
    for (std::size_t i = 2; i < args.size(); ++i) {
        for (const RenamedFlag& r : kRenamedFlags) {
            if (args[1] != r.command) continue;
            const std::string old_name = r.old_name;
            const bool joined = args[i].rfind(old_name + "=", 0) == 0;
            if (args[i] != old_name && !joined) continue;
            std::fprintf(stderr, "quiver %s: warning: %s is deprecated; use %s\n", r.command, r.old_name, r.new_name);
            args[i] = joined ? r.new_name + args[i].substr(old_name.size()) : std::string(r.new_name);
            break;
        }
    }
    return args;
}

// Multi-vector indexes: `build --kind multivector` is `multivector-build` (whose `--index muvera|exact`
// is not the renamed dense flag), and `search` on an MVIX file is `multivector-search`. Runs before
// the flag renames.
std::vector<std::string> rewrite_multivector(std::vector<std::string> args) {
    if (args.size() < 2) return args;
    if (args[1] == "build") {
        for (std::size_t i = 2; i < args.size(); ++i) {
            const bool joined = args[i] == "--kind=multivector";
            if (joined || (args[i] == "--kind" && i + 1 < args.size() && args[i + 1] == "multivector")) {
                args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i + (joined ? 1 : 2)));
                args[1] = "multivector-build";
                break;
            }
        }
    } else if (args[1] == "search") {
        for (std::size_t i = 2; i + 1 < args.size(); ++i) {
            if ((args[i] == "--index-file" || args[i] == "--index") && file_kind(args[i + 1]) == "MVIX") {
                args[1] = "multivector-search";
                args[i] = "--index-file";
                break;
            }
        }
    }
    return args;
}

// One `build`/`search` surface for every index kind: `build --kind sparse` is `sparse-build`, and
// `search` on a learned-sparse index file (Seismic or exact) is `sparse-search`.
std::vector<std::string> rewrite_aliases(std::vector<std::string> args) {
    if (args.size() < 2) return args;
    if (args[1] == "build") {
        for (std::size_t i = 2; i < args.size(); ++i) {
            const bool joined = args[i] == "--kind=sparse";
            if (joined || (args[i] == "--kind" && i + 1 < args.size() && args[i + 1] == "sparse")) {
                args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i + (joined ? 1 : 2)));
                args[1] = "sparse-build";
                break;
            }
        }
    } else if (args[1] == "search") {
        for (std::size_t i = 2; i < args.size(); ++i) {
            std::string path;
            const std::string f = "--index-file";
            if (args[i] == f && i + 1 < args.size()) path = args[i + 1];
            if (args[i].rfind(f + "=", 0) == 0) path = args[i].substr(f.size() + 1);
            if (path.empty()) continue;
            const std::string kind = file_kind(path);
            if (kind == "SEIS" || kind == "SPEX") args[1] = "sparse-search";
            break;
        }
    }
    return args;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        CLI::App app{"quiver: embedding-based retrieval engine (dense ANN, BM25, learned sparse, eval)",
                     "quiver"};
        app.set_version_flag("--version", version_string());
        app.footer("Exit codes: 0 ok, 1 runtime failure (I/O, corrupt data), 2 bad usage or bad input.\n"
                   "Flag names, ids files, --json/--output/--trec and progress follow docs/cli.md.");
        app.require_subcommand(1);
        app.fallthrough(false);
        quiver::cli::add_registered_commands(app);
        quiver::cli::add_bench_command(app, argv[0]);
        std::vector<std::string> args = rewrite_aliases(rename_flags(rewrite_multivector(std::vector<std::string>(argv, argv + argc))));
        std::vector<char*> cargs;
        for (auto& a : args) cargs.push_back(a.data());
        try {
            app.parse(static_cast<int>(cargs.size()), cargs.data());
        } catch (const CLI::ParseError& e) {
            // CLI11's own codes (104, 106, 109, ...) never leak: usage errors are 2, --help is 0.
            return quiver::cli::parse_error_exit(app, e);
        }
        return quiver::cli::action_exit_code();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quiver: internal error: %s\n", e.what());
        return quiver::cli::kExitRuntime;
    }
}
