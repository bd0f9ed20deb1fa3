// Private to index/: validation and preparation of input rows shared by the indexes.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <span>
#include <vector>

#include "quiver/core/ids.h"
#include "quiver/core/matrix_view.h"
#include "quiver/core/result.h"
#include "quiver/index/vector_index.h"
#include "quiver/simd/kernels.h"

namespace quiver::index::detail {

/// Checks dimension and finiteness; for cosine also a non-zero norm. `what` is "vectors"/"queries".
inline Status validate_rows(MatrixView<float> m, std::size_t dim, simd::Metric metric, const char* what) {
    if (m.rows == 0) return {};
    if (m.dim != dim) {
        return invalid_argument(fmt::format("{} have dimension {}, the index has {}", what, m.dim, dim));
    }
    const bool cosine = metric == simd::Metric::kCosine;
    for (std::size_t r = 0; r < m.rows; ++r) {
        const float* row = m.row_ptr(r);
        // One pass without a branch per value (this runs once per query of every search); the norm
        // (cosine: not zero; else at most kMaxSquaredNorm) in four partial sums, not one chain of
        // dependent additions.
        bool finite = true;
        double part[4] = {0, 0, 0, 0};
        for (std::size_t j = 0; j < dim; ++j) {
            finite &= std::isfinite(row[j]);
            part[j & 3] += static_cast<double>(row[j]) * row[j];
        }
        if (!finite) {
            std::size_t j = 0;
            while (std::isfinite(row[j])) ++j;
            return invalid_argument(fmt::format("{} row {} column {} is {}", what, r, j,
                                                std::isnan(row[j]) ? "NaN" : "infinite"));
        }
        const double norm = (part[0] + part[1]) + (part[2] + part[3]);
        if (cosine && !(norm > 0)) {
            return invalid_argument(
                fmt::format("{} row {} is the zero vector, which has no cosine direction", what, r));
        }
        if (!cosine && !(norm <= kMaxSquaredNorm)) {
            return invalid_argument(fmt::format("{} row {} has a norm of {:.3g}: above {:.3g}, distances overflow float32",
                                                what, r, std::sqrt(norm), std::sqrt(kMaxSquaredNorm)));
        }
    }
    return {};
}

/// Rejects the reserved kNoLabel value (it pads short result rows, so it can never name a vector).
inline Status validate_labels(std::span<const Label> labels) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] == kNoLabel) {
            return invalid_argument(fmt::format(
                "label {} (row {}) is the reserved no-label value", to_int(labels[i]), i));
        }
    }
    return {};
}

/// The rows as the kernels want them: a normalised copy for cosine, else a view of the input.
struct PreparedRows {
    std::vector<float> storage;
    MatrixView<float> view;
};

inline PreparedRows prepare_rows(MatrixView<float> m, simd::Metric metric) {
    PreparedRows p;
    if (metric != simd::Metric::kCosine) {
        p.view = m;
        return p;
    }
    p.storage.assign(m.data, m.data + m.rows * m.dim);
    for (std::size_t r = 0; r < m.rows; ++r) simd::normalize(p.storage.data() + r * m.dim, m.dim);
    p.view = {p.storage.data(), m.rows, m.dim};
    return p;
}

}  // namespace quiver::index::detail
