// Private header: the per-ISA int8 kernel tables (include/quiver/simd/int8_kernels.h), each defined in its
// own translation unit compiled with that ISA's flags (cmake/QuiverSimd.cmake, src/simd/CMakeLists.txt).
#pragma once

#include "quiver/simd/int8_kernels.h"

namespace quiver::simd {
namespace scalar { extern const Int8Kernels kInt8Kernels; }
namespace avx2 { extern const Int8Kernels kInt8Kernels; }
namespace avx512 {
extern const Int8Kernels kInt8Kernels;
void s8_axpy_rows(const float* a, std::size_t w, const std::int8_t* x, std::size_t stride, std::size_t count,
                  float* y) noexcept;
}  // namespace avx512
namespace avx512_vnni { extern const Int8Kernels kInt8Kernels; }
}  // namespace quiver::simd
