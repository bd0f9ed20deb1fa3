// Private to index/: Lloyd's k-means (squared L2) with the assignment step as BLAS matrix products.
#pragma once

#include <cstdint>
#include <vector>

#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"

namespace quiver::index::detail {

struct KMeansParams {
    std::size_t k = 0;
    std::size_t iterations = 20;
    std::uint64_t seed = 42;
    std::size_t threads = 0;                 ///< 0 = all cores (top-k selection; BLAS has its own)
    std::size_t max_points_per_centroid = 256;  ///< larger inputs are subsampled (as FAISS does)
    /// Spherical k-means: every centroid is scaled to unit length after each update, so for unit-length
    /// data the squared-L2 assignment is the inner-product one (FAISS's IVF on inner product does this).
    bool spherical = false;
};

/// k centroids (k x dim) of `data` (rows >= k). Initialised from distinct random rows; an empty cluster
/// takes half of the largest one (its centroid split by a small perturbation). Deterministic for a seed.
Result<Matrix<float>> kmeans(MatrixView<float> data, const KMeansParams& params);

/// Nearest centroid (squared L2) of every row: out_assign[i], and its squared distance when out_dist
/// is not null. Rows are processed in blocks through sgemm; `threads` split the argmin.
void assign_nearest(MatrixView<float> data, MatrixView<float> centroids, std::uint32_t* out_assign,
                    float* out_dist, std::size_t threads);

}  // namespace quiver::index::detail
