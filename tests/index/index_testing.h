// Helpers for index tests: brute-force ground truth in double precision and result extraction.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "quiver/index/vector_index.h"
#include "quiver/simd/kernels.h"

namespace quiver::testing {

inline double reference_distance(const float* a, const float* b, std::size_t dim, simd::Metric metric) {
    double s = 0, na = 0, nb = 0;
    for (std::size_t j = 0; j < dim; ++j) {
        if (metric == simd::Metric::kL2) {
            s += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
        } else {
            s += double(a[j]) * b[j];
            na += double(a[j]) * a[j];
            nb += double(b[j]) * b[j];
        }
    }
    if (metric == simd::Metric::kL2) return s;
    if (metric == simd::Metric::kInnerProduct) return 1.0 - s;
    return 1.0 - s / std::sqrt(na * nb);
}

/// Exact top-k labels (row numbers) per query, ties by lower id.
inline std::vector<std::vector<std::uint64_t>> brute_force(MatrixView<float> base, MatrixView<float> queries,
                                                           std::size_t k, simd::Metric metric,
                                                           const std::vector<bool>* skip = nullptr) {
    std::vector<std::vector<std::uint64_t>> out(queries.rows);
    for (std::size_t q = 0; q < queries.rows; ++q) {
        std::vector<std::pair<double, std::uint64_t>> all;
        for (std::size_t i = 0; i < base.rows; ++i) {
            if (skip && (*skip)[i]) continue;
            all.emplace_back(reference_distance(queries.row_ptr(q), base.row_ptr(i), base.dim, metric), i);
        }
        const std::size_t m = std::min(k, all.size());
        std::partial_sort(all.begin(), all.begin() + static_cast<long>(m), all.end());
        for (std::size_t j = 0; j < m; ++j) out[q].push_back(all[j].second);
    }
    return out;
}

inline std::vector<std::vector<std::uint64_t>> result_labels(const index::SearchResults& r) {
    std::vector<std::vector<std::uint64_t>> out(r.num_queries);
    for (std::size_t q = 0; q < r.num_queries; ++q) {
        for (std::size_t j = 0; j < r.count(q); ++j) out[q].push_back(to_int(r.label(q, j)));
    }
    return out;
}

}  // namespace quiver::testing
