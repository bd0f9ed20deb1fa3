// Private header: the per-ISA int8 kernel tables (include/quiver/simd/int8_kernels.h), each defined in its
// own translation unit compiled with that ISA's flags (cmake/QuiverSimd.cmake, src/simd/CMakeLists.txt).
#pragma once

#include "quiver/simd/int8_kernels.h"

namespace quiver::simd {
namespace scalar { extern const Int8Kernels kInt8Kernels; }
namespace avx2 {
extern const Int8Kernels kInt8Kernels;
// Also in the AVX-512 (BW) table (without VNNI there is no byte dot product to widen it with).
void s8_dot4_rows(const std::int8_t* q, const std::int8_t* const* x, std::size_t rows, std::size_t count,
                  std::int32_t* y) noexcept;
}  // namespace avx2
namespace avx512 { extern const Int8Kernels kInt8Kernels; }
namespace avx512_vnni { extern const Int8Kernels kInt8Kernels; }
}  // namespace quiver::simd
