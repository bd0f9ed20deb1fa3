// Row distances (quiver/simd/rows.h): the scalar reference and the run-time choice of level.
#include "quiver/simd/rows.h"

#include "simd/rows_kernels.h"

namespace quiver::simd {
namespace detail::scalar {
namespace {

void l2_rows(const float* q, const float* base, std::size_t stride, std::size_t n, std::size_t dim,
             float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const float* x = base + i * stride;
        float s = 0.0f;
        for (std::size_t j = 0; j < dim; ++j) {
            const float d = q[j] - x[j];
            s += d * d;
        }
        out[i] = s;
    }
}

void ip_rows(const float* q, const float* base, std::size_t stride, std::size_t n, std::size_t dim,
             float* out) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const float* x = base + i * stride;
        float s = 0.0f;
        for (std::size_t j = 0; j < dim; ++j) s += q[j] * x[j];
        out[i] = 1.0f - s;
    }
}

}  // namespace

const RowKernels kRowKernels{&l2_rows, &ip_rows};
}  // namespace detail::scalar

RowDistancesFn row_distances_fn(Metric metric, SimdLevel level) noexcept {
    if (kernels_for(level) == nullptr) return nullptr;  // the CPU or the build lacks this level
    const detail::RowKernels* k = nullptr;
    switch (level) {
        case SimdLevel::kScalar: k = &detail::scalar::kRowKernels; break;
        case SimdLevel::kAvx2: k = &detail::avx2::kRowKernels; break;
        case SimdLevel::kAvx512: k = &detail::avx512::kRowKernels; break;
    }
    if (k == nullptr) return nullptr;
    return metric == Metric::kL2 ? k->l2 : k->ip;
}

RowDistancesFn row_distances_fn(Metric metric) noexcept {
    static const RowDistancesFn l2 = row_distances_fn(Metric::kL2, active_simd_level());
    static const RowDistancesFn ip = row_distances_fn(Metric::kInnerProduct, active_simd_level());
    return metric == Metric::kL2 ? l2 : ip;
}

}  // namespace quiver::simd
