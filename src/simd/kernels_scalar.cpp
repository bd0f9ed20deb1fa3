// Portable kernels; also the reference the SIMD levels are tested against.
#include <algorithm>
#include <cmath>
#include <limits>

#include "simd/kernels_impl.h"

namespace quiver::simd::scalar {
namespace {

float l2_squared(const float* a, const float* b, std::size_t d) noexcept {
    // Four independent sums so the compiler can keep several adds in flight.
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        const float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < d; ++i) {
        const float t = a[i] - b[i];
        s0 += t * t;
    }
    return (s0 + s1) + (s2 + s3);
}

float dot(const float* a, const float* b, std::size_t d) noexcept {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t i = 0;
    for (; i + 4 <= d; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < d; ++i) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float ip_distance(const float* a, const float* b, std::size_t d) noexcept { return 1.0f - dot(a, b, d); }
float norm_squared(const float* a, std::size_t d) noexcept { return dot(a, a, d); }

}  // namespace

void maxsim_maxima(const float* qt, std::size_t stride, const float* doc, std::size_t t, std::size_t dim,
                   float* out) noexcept {
    for (std::size_t i = 0; i < stride; ++i) out[i] = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
        const float* d = doc + j * dim;
        for (std::size_t i = 0; i < stride; ++i) {
            float acc = 0.0f;
            for (std::size_t k = 0; k < dim; ++k) acc = std::fma(qt[k * stride + i], d[k], acc);
            out[i] = std::max(out[i], acc);
        }
    }
}

const Kernels kKernels{SimdLevel::kScalar, &l2_squared, &dot, &ip_distance, &norm_squared, &maxsim_maxima};

}  // namespace quiver::simd::scalar
