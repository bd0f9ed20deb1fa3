/// @file memory_budget.h
/// @brief Picks an index configuration whose resident memory fits a byte budget (`quiver build
/// --memory-budget`).
///
/// Resident memory is what the index's `memory_bytes()` reports once opened as it will be served: the
/// graph or lists, the codes, the ids and label maps, codec parameters and IVF centroids, and the
/// float32 vectors only when they stay in RAM (a float32 graph or flat index). Indexes on codes keep
/// their float32 vectors in the file, read with pread by the rescore (`vectors_on_disk`).
///
/// The rule (deterministic; docs/codecs.md "Memory budget"): candidates are tried in a fixed order and the
/// first whose predicted resident size is at most the budget wins:
///   1. the float32 index of the requested type (hnsw or flat; not for ivf);
///   2. the same index type on codes, vectors on disk, codecs by code size, largest first (the codecs an
///      HNSW walk can use: sq8, sq4, rabitq2, rabitq1; flat and IVF lists also take fast-scan PQ);
///   3. for `auto` only, after the HNSW candidates: IVF over the same codecs, largest code first.
/// The prediction is an upper bound built from the same accounting as `memory_bytes()` (per-vector
/// bytes of each structure, the HNSW upper levels at 1.5 times their expected size, hash maps at twice
/// their buckets) plus a fixed 64 KiB, so the index built from the choice reports at most the prediction.
/// Nothing fitting is kInvalidArgument (the budget is the caller's input) naming the smallest prediction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/index/codec.h"
#include "quiver/simd/kernels.h"

namespace quiver::index {

struct BudgetRequest {
    std::uint64_t budget_bytes = 0;
    std::size_t rows = 0;
    std::size_t dim = 0;
    simd::Metric metric = simd::Metric::kCosine;
    std::string index_type = "auto";  ///< "auto" (hnsw, then ivf) | "hnsw" | "flat" | "ivf"
    std::size_t M = 16;               ///< HNSW links per node
    std::size_t nlist = 0;            ///< IVF lists; 0 = default_nlist(rows)
    std::size_t k = 10;               ///< the k the rescore depth is chosen for
};

struct BudgetChoice {
    std::string index_type;      ///< "hnsw" | "flat" | "ivf"
    CodecSpec codec;             ///< kNone: float32
    std::size_t nlist = 0;       ///< IVF lists (ivf only)
    bool vectors_on_disk = false;  ///< open (search) with vectors_on_disk
    /// Candidates to re-score in float32 for `k` (SearchParams::rescore): 0 for float32 indexes,
    /// SearchParams::kRescoreDefault for RaBitQ (its error bound decides), else k times 4 (8-bit codes),
    /// 10 (4-bit), 20 (2-bit) or 40 (1-bit and PQ).
    std::size_t rescore = 0;
    std::uint64_t predicted_bytes = 0;  ///< upper bound of the resident bytes
};

/// IVF lists for n vectors: about 4 * sqrt(n), at least 1, at most n / 39 (enough points per list for
/// the coarse k-means), as `quiver build --index ivf` uses by default.
std::size_t default_nlist(std::size_t rows) noexcept;

/// Every candidate of the rule, in the order tried, with its prediction (for reports and tests).
Result<std::vector<BudgetChoice>> budget_candidates(const BudgetRequest& request);

/// The first candidate that fits; kInvalidArgument for a bad request or when none fits.
Result<BudgetChoice> choose_for_budget(const BudgetRequest& request);

/// "1GiB", "512MiB", "1.5GiB", "64KiB", "2GB", "1000000": binary units (KiB, MiB, GiB, TiB, or a bare
/// K/M/G/T), decimal ones (KB, MB, GB, TB), case-insensitive; plain digits are bytes. At least 1 byte,
/// at most 1e18; kInvalidArgument ("'<text>' is not a size ...") otherwise.
Result<std::uint64_t> parse_byte_size(std::string_view text);

}  // namespace quiver::index
