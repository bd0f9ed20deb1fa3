// Private to bench/: the compressed-vector engines of `quiver bench codecs`, reusable by other
// benchmarks (e.g. memory-budget rows of `quiver bench ann`).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/simd/kernels.h"

namespace quiver::bench {

/// One engine under test: built, then searched with every query in one call per grid point.
struct CodeEngine {
    std::string name;
    double build_seconds = 0;
    double resident_per_vector = 0;  ///< codes, ids, amortised parameters
    double float_per_vector = 0;     ///< float32 copies kept for the rescore
    std::string floats_where;
    bool adaptive_rescore = false;   ///< takes SearchParams::kRescoreDefault (RaBitQ: rescore by the bound)
    /// Evicts the engine's on-disk float vectors from the page cache (empty when they are in RAM), for a
    /// cold pass.
    std::function<void()> drop_cache;
    /// Searches every query (nq x k labels, row-major) at (nprobe, rescore depth; 0 = none).
    std::function<void(std::size_t nprobe, std::size_t rescore, std::vector<std::int64_t>& out)> search;
};

/// quiver's CodeIndex for `codec` (nlist 0 = flat scan), built on `base`, searching `queries` (kept by
/// reference: both must outlive the engine) with `threads` threads. With a non-empty `disk_dir` the index
/// is saved there and re-opened with its float32 vectors left on disk (the rescore reads them with pread).
Result<CodeEngine> make_quiver_codes(const Matrix<float>& base, const Matrix<float>& queries, simd::Metric metric,
                                     const std::string& codec, std::size_t nlist, std::size_t threads, std::size_t k,
                                     std::uint64_t seed, const std::string& disk_dir = {});

/// The FAISS index of the same family wrapped in IndexRefineFlat, or nullopt when FAISS is not linked or
/// has no such index.
std::optional<CodeEngine> make_faiss_codes(const Matrix<float>& base, const Matrix<float>& queries,
                                           simd::Metric metric, const std::string& codec, std::size_t nlist,
                                           std::size_t threads, std::size_t k);

}  // namespace quiver::bench
