// quiver-bench: the benchmark driver behind `quiver bench <name>`. Peers are linked here only.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "quiver/simd/kernels.h"
#include "registry.h"

namespace quiver::bench {
namespace {
std::map<std::string, std::pair<std::string, BenchFn>>& registry() {
    static std::map<std::string, std::pair<std::string, BenchFn>> r;
    return r;
}
}  // namespace

BenchRegistrar::BenchRegistrar(const char* name, const char* help, BenchFn run) {
    registry()[name] = {help, run};
}

const char* best_openblas_coretype() noexcept {
    switch (simd::detected_simd_level()) {
        case simd::SimdLevel::kAvx512: return "SkylakeX";
        case simd::SimdLevel::kAvx2: return "Haswell";
        default: return nullptr;
    }
}

namespace {
constexpr const char* kReexecMarker = "QUIVER_BENCH_CORETYPE_SET";

// Debian's OpenBLAS is a DYNAMIC_ARCH build that reads OPENBLAS_CORETYPE once, when the library is
// loaded, and on CPUs newer than its tables (this machine's Xeon) falls back to generic Prescott
// kernels. The FAISS peers run on that OpenBLAS, so to give them their best the driver sets the core
// type of the detected SIMD level and re-executes itself before any benchmark code runs. quiver's
// searches do not call BLAS (only k-means training does). Returns only when no re-exec happened.
void give_peers_their_best_blas(int argc, char** argv, bool disabled) {
    if (std::getenv(kReexecMarker) != nullptr) {
        std::fprintf(stderr, "quiver bench: OPENBLAS_CORETYPE=%s set for the FAISS peers (Debian's OpenBLAS would "
                             "pick generic kernels on this CPU; --generic-blas keeps them)\n",
                     std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "?");
        ::unsetenv(kReexecMarker);
        return;
    }
    if (const char* set = std::getenv("OPENBLAS_CORETYPE")) {
        std::fprintf(stderr, "quiver bench: OPENBLAS_CORETYPE=%s (from the environment)\n", set);
        return;
    }
    const char* best = best_openblas_coretype();
    if (disabled || best == nullptr) {
        std::fprintf(stderr, "quiver bench: OPENBLAS_CORETYPE unset: OpenBLAS picks its own kernels%s\n",
                     disabled ? " (--generic-blas)" : "");
        return;
    }
    std::vector<char*> args(argv, argv + argc);
    args.push_back(nullptr);
    if (::setenv("OPENBLAS_CORETYPE", best, 1) != 0 || ::setenv(kReexecMarker, "1", 1) != 0) return;
    ::execv("/proc/self/exe", args.data());
    // exec failed (no /proc): carry on with OpenBLAS's own choice, and say so.
    ::unsetenv("OPENBLAS_CORETYPE");
    ::unsetenv(kReexecMarker);
    std::fprintf(stderr, "quiver bench: could not re-execute with OPENBLAS_CORETYPE=%s; OpenBLAS picks its own "
                         "kernels\n", best);
}
}  // namespace

}  // namespace quiver::bench

int main(int argc, char** argv) {
    // --generic-blas (anywhere): keep OpenBLAS's own kernel choice. Removed before the benchmark parses.
    bool generic_blas = false;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--generic-blas") == 0) {
            generic_blas = true;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = nullptr;
    auto& r = quiver::bench::registry();
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        std::printf("Usage: quiver bench <name> [options]   (each benchmark has --help)\n\nBenchmarks:\n");
        for (const auto& [name, entry] : r) std::printf("  %-10s %s\n", name.c_str(), entry.first.c_str());
        return argc < 2 ? 2 : 0;
    }
    auto it = r.find(argv[1]);
    if (it == r.end()) {
        std::fprintf(stderr, "quiver bench: unknown benchmark '%s' (see quiver bench --help)\n", argv[1]);
        return 2;
    }
    quiver::bench::give_peers_their_best_blas(argc, argv, generic_blas);
    std::string prog = std::string("quiver bench ") + argv[1];
    argv[1] = prog.data();
    // Exit codes as for every quiver command: 0 ok, 1 runtime failure, 2 bad usage or input. The
    // benchmarks end CLI11 parse errors with app.exit(e), whose codes are CLI11's 100..127.
    const int rc = it->second.second(argc - 1, argv + 1);
    return rc >= 100 && rc <= 127 ? 2 : rc;
}
