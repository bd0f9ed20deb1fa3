// Private to bench/: each benchmark registers itself with the quiver-bench driver.
//
//   static const quiver::bench::BenchRegistrar kReg{"ann", "dense ANN vs hnswlib and FAISS", &run_ann};
//
// `run` receives argv with argv[0] = "quiver bench <name>" and returns the exit code.
#pragma once

#include <string>

namespace quiver::bench {

using BenchFn = int (*)(int argc, char** argv);

struct BenchRegistrar {
    BenchRegistrar(const char* name, const char* help, BenchFn run);
};

}  // namespace quiver::bench
