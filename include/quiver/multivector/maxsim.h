/// @file maxsim.h
/// @brief Exact late-interaction scoring: Chamfer / MaxSim similarity, CH(Q, P) = sum over query
/// tokens q of max over document tokens p of <q, p>, and exact top-k search by it.
///
/// Determinism contract: every score a search returns (exact or re-ranked) comes from one kernel per
/// store codec, so the same (query, document) pair scores identically whichever path found it:
///   - float32 stores: `maxsim`, each token max in float (the active SIMD dot kernel), the maxima
///     summed in double;
///   - int8 stores: `maxsim_int8`: the query is quantised like the documents (per token row a scale
///     max |q| / 127 and codes round(q / scale), `quantize_query`), each pair's product is exact in
///     int32 (simd/int8_kernels.h), scaled by the document row's scale, maximised in float, then
///     multiplied by the query row's scale and summed in double. Every SIMD level gives the same bits.
/// Orders are score descending, then document number ascending. Documents with no tokens are never
/// returned.
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
/// doc_tokens > 0 (a document with no tokens has no score). The products are the run-time kernel
/// `simd::Kernels::maxsim_maxima` (the same bits at every SIMD level), the maxima summed in double.
float maxsim(MatrixView<float> query, const float* doc, std::size_t doc_tokens) noexcept;

/// A float query prepared for `maxsim_maxima`: transposed and zero-padded to a multiple of 16 rows.
struct FloatQuery {
    std::size_t rows = 0;
    std::size_t stride = 0;
    std::vector<float> transposed;  ///< dim rows of `stride` floats
    std::vector<float> maxima;      ///< `stride` floats of scratch
};
void prepare_float_query(MatrixView<float> query, FloatQuery& out);
/// maxsim() with a prepared query: the same value, bit for bit.
float maxsim_prepared(FloatQuery& query, const float* doc, std::size_t doc_tokens, std::size_t dim) noexcept;

/// A query quantised for an int8 store (see the file comment): `rows` x `dim` codes and one scale per row.
/// Also transposed in groups of four dimensions for `simd::Int8Kernels::s8_maxsim_t` (rows padded to
/// `stride`, a multiple of 16), which the int8 kernels use where they have it (AVX-512 VNNI).
struct Int8Query {
    std::size_t rows = 0;
    std::size_t dim = 0;
    std::size_t stride = 0;
    std::vector<std::int8_t> codes;
    std::vector<float> scales;
    std::vector<std::int8_t> transposed;  ///< ceil(dim / 4) x stride x 4 codes
};
/// Quantises every token row of `query` (the TokenStore int8 rule, quantize_int8_row).
void quantize_query(MatrixView<float> query, Int8Query& out);

/// sum_i qs_i * max_j (ds_j * <qc_i, dc_j>) over `doc_tokens` rows of int8 codes `codes` (row-major,
/// query.dim each) with scales `scales`. Requires doc_tokens > 0; `maxima` holds query.rows floats.
float maxsim_int8(const Int8Query& query, const std::int8_t* codes, const float* scales, std::size_t doc_tokens,
                  float* maxima) noexcept;

/// Per-thread buffers for decoding and tiled scoring (grows as needed; reuse across queries).
struct MaxSimScratch {
    std::vector<float> rows;
    std::vector<float> scores;
    Int8Query int8_query;
    FloatQuery float_query;
};

/// Exact top-k by MaxSim over every document of `store` (brute force). float32 stores: token tiles are
/// scored with one BLAS product per tile, and the best max(2k, k + 16) documents are re-scored with
/// `maxsim`; int8 stores: every document is scored with `maxsim_int8` (so the top-k is exact for the
/// int8 scores). Runs on the calling thread. query.dim must equal store.dim() (the caller checks).
std::vector<Hit> exact_search(const TokenStore& store, MatrixView<float> query, std::size_t k,
                              MaxSimScratch& scratch);

/// Scores `candidates` (document numbers, any order, duplicates ignored) with the store's kernel
/// (`maxsim` or `maxsim_int8`) and returns the best k.
std::vector<Hit> rerank(const TokenStore& store, MatrixView<float> query, std::span<const std::uint32_t> candidates,
                        std::size_t k, MaxSimScratch& scratch);

/// Sorts hits by score descending, then document ascending, and keeps the first k.
void sort_hits(std::vector<Hit>& hits, std::size_t k);

}  // namespace quiver::multivector
