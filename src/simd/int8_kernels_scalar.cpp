// Portable int8 kernels (the reference the SIMD levels are tested against) and their dispatch.
#include <limits>

#include "quiver/simd/code_kernels.h"
#include "simd/int8_kernels_impl.h"

namespace quiver::simd {
namespace scalar {
namespace {

std::int32_t s8_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) noexcept {
    std::int32_t s = 0;
    for (std::size_t k = 0; k < d; ++k) s += static_cast<std::int32_t>(a[k]) * b[k];
    return s;
}

void s8_maxsim(const std::int8_t* q, std::size_t m, const std::int8_t* c, const float* ds, std::size_t t,
               std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < m; ++i) out[i] = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        for (std::size_t i = 0; i < m; ++i) {
            const float v = static_cast<float>(s8_dot(q + i * d, row, d)) * ds[j];
            if (v > out[i]) out[i] = v;
        }
    }
}

void s8_dot4_rows(const std::int8_t* q, const std::int8_t* const* x, std::size_t rows, std::size_t count,
                  std::int32_t* y) noexcept {
    for (std::size_t r = 0; r < rows; ++r) {
        const std::int8_t* row = x[r];
        const std::int32_t q0 = q[4 * r], q1 = q[4 * r + 1], q2 = q[4 * r + 2], q3 = q[4 * r + 3];
        for (std::size_t n = 0; n < count; ++n) {
            const std::int8_t* c = row + 4 * n;
            y[n] += q0 * c[0] + q1 * c[1] + q2 * c[2] + q3 * c[3];
        }
    }
}

void s8_maxsim_t(const std::int8_t* qt, std::size_t stride, const std::int8_t* c, const float* ds, std::size_t t,
                 std::size_t d, float* out) noexcept {
    for (std::size_t i = 0; i < stride; ++i) out[i] = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
        const std::int8_t* row = c + j * d;
        for (std::size_t i = 0; i < stride; ++i) {
            std::int32_t s = 0;
            for (std::size_t k = 0; k < d; ++k) s += static_cast<std::int32_t>(qt[((k / 4) * stride + i) * 4 + k % 4]) * row[k];
            const float v = static_cast<float>(s) * ds[j];
            if (v > out[i]) out[i] = v;
        }
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{SimdLevel::kScalar, false, &s8_dot, &s8_maxsim, &s8_maxsim_t, &s8_dot4_rows};

}  // namespace scalar

const Int8Kernels* int8_kernels_for(SimdLevel level, bool vnni) noexcept {
    if (level > detected_simd_level()) return nullptr;
    switch (level) {
        case SimdLevel::kScalar: return &scalar::kInt8Kernels;
        case SimdLevel::kAvx2: return &avx2::kInt8Kernels;
        case SimdLevel::kAvx512: return vnni && has_avx512_vnni() ? &avx512_vnni::kInt8Kernels : &avx512::kInt8Kernels;
    }
    return nullptr;
}

const Int8Kernels& active_int8_kernels() noexcept {
    static const Int8Kernels* k = int8_kernels_for(active_simd_level());
    return *k;
}

}  // namespace quiver::simd
