/// @file maxsim.h
/// @brief Exact late-interaction scoring: Chamfer / MaxSim similarity, CH(Q, P) = sum over query
/// tokens q of max over document tokens p of <q, p>, and exact top-k search by it.
///
/// Determinism contract: every score a search returns (exact or re-ranked) comes from `maxsim`, which
/// takes each token max in float (the active SIMD dot kernel) and sums the maxima in double, so the
/// same (query, document) pair scores identically whichever path found it. Orders are score
/// descending, then document number ascending. Documents with no tokens are never returned.
///
/// Thread-safety: free functions over immutable inputs; a `MaxSimScratch` belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/multivector/token_store.h"

namespace quiver::multivector {

struct Hit {
    std::uint32_t doc = 0;  ///< document number in the store
    float score = 0.0f;     ///< MaxSim (Chamfer) similarity
};

/// sum_i max_j <query_i, doc_j> over `doc_tokens` row-major rows of query.dim floats. Requires
/// doc_tokens > 0 (a document with no tokens has no score).
float maxsim(MatrixView<float> query, const float* doc, std::size_t doc_tokens) noexcept;

/// Per-thread buffers for decoding and tiled scoring (grows as needed; reuse across queries).
struct MaxSimScratch {
    std::vector<float> rows;
    std::vector<float> scores;
};

/// Exact top-k by MaxSim over every document of `store` (brute force): token tiles are scored with one
/// BLAS product per tile, and the best max(2k, k + 16) documents are re-scored with `maxsim`. Runs on
/// the calling thread. query.dim must equal store.dim() (the caller checks).
std::vector<Hit> exact_search(const TokenStore& store, MatrixView<float> query, std::size_t k,
                              MaxSimScratch& scratch);

/// Scores `candidates` (document numbers, any order, duplicates ignored) exactly with `maxsim` and
/// returns the best k.
std::vector<Hit> rerank(const TokenStore& store, MatrixView<float> query, std::span<const std::uint32_t> candidates,
                        std::size_t k, MaxSimScratch& scratch);

/// Sorts hits by score descending, then document ascending, and keeps the first k.
void sort_hits(std::vector<Hit>& hits, std::size_t k);

}  // namespace quiver::multivector
