/// @file rows.h
/// @brief Distances from one query to many stored rows in one call: the exact scan of a flat index
/// (index/ FlatIndex with fewer queries than the batched GEMM path needs, the in-memory segments of a
/// collection). One call per block of rows instead of one per row: no call through a pointer per row,
/// several rows' sums in flight at once.
///
/// out[i] = d(q, base + i * stride) for i < n, where d is the metric's distance as kernels.h defines it
/// (kL2: squared L2; kInnerProduct and kCosine: 1 - dot). Sums run in a different order from the per-pair
/// kernels', so values agree with them to float rounding (about 1e-6 relative), not bit for bit; callers
/// that need exact ties re-score their candidates (FlatIndex does, in double). Pure and thread-safe; no
/// alignment required. The level is chosen once per process (QUIVER_SIMD lowers it).
#pragma once

#include <cstddef>

#include "quiver/simd/kernels.h"

namespace quiver::simd {

using RowDistancesFn = void (*)(const float* q, const float* base, std::size_t stride, std::size_t n,
                                std::size_t dim, float* out) noexcept;

/// The active level's row-distance function for `metric`.
RowDistancesFn row_distances_fn(Metric metric) noexcept;
/// The same at `level`, or nullptr when this CPU cannot run it (tests compare the levels).
RowDistancesFn row_distances_fn(Metric metric, SimdLevel level) noexcept;

}  // namespace quiver::simd
