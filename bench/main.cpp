// quiver-bench: the benchmark driver behind `quiver bench <name>`. Peers are linked here only.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>

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

}  // namespace quiver::bench

int main(int argc, char** argv) {
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
    std::string prog = std::string("quiver bench ") + argv[1];
    argv[1] = prog.data();
    // Exit codes as for every quiver command: 0 ok, 1 runtime failure, 2 bad usage or input. The
    // benchmarks end CLI11 parse errors with app.exit(e), whose codes are CLI11's 100..127.
    const int rc = it->second.second(argc - 1, argv + 1);
    return rc >= 100 && rc <= 127 ? 2 : rc;
}
