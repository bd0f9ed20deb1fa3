// Private to bench/: each benchmark registers itself with the quiver-bench driver.
//
//   static const quiver::bench::BenchRegistrar kReg{"ann", "dense ANN vs hnswlib and FAISS", &run_ann};
//
// `run` receives argv with argv[0] = "quiver bench <name>" and returns the exit code.
#pragma once

#include <cstdlib>
#include <string>

namespace quiver::bench {

using BenchFn = int (*)(int argc, char** argv);

struct BenchRegistrar {
    BenchRegistrar(const char* name, const char* help, BenchFn run);
};

/// The OpenBLAS core type the driver sets for the FAISS peers on this CPU (main.cpp: SkylakeX with
/// AVX-512, Haswell with AVX2, else none).
const char* best_openblas_coretype() noexcept;
/// OPENBLAS_CORETYPE as this process started with it, or "default (unset)", for reports.
inline const char* openblas_coretype() noexcept {
    const char* v = std::getenv("OPENBLAS_CORETYPE");
    return v != nullptr ? v : "default (unset)";
}

}  // namespace quiver::bench
