// Private header: the per-ISA code-kernel tables, each defined in its own translation unit compiled with
// that ISA's flags (cmake/QuiverSimd.cmake).
#pragma once

#include "quiver/simd/code_kernels.h"

namespace quiver::simd {
namespace scalar { extern const CodeKernels kCodeKernels; }
namespace avx2 { extern const CodeKernels kCodeKernels; }
namespace avx512 {
extern const CodeKernels kCodeKernels;          // hamming from AVX2 (no VPOPCNTDQ)
extern const CodeKernels kCodeKernelsPopcnt;    // hamming with VPOPCNTDQ
}  // namespace avx512
namespace avx512_vpopcnt {
std::uint64_t hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept;
}
namespace avx512_vnni {
std::int32_t u8s8_dot(const std::uint8_t* c, const std::int8_t* q, std::size_t d) noexcept;
void u8s8_dot_batch(const std::uint8_t* const* codes, std::size_t n, const std::int8_t* q, std::size_t d,
                    std::int32_t* out) noexcept;
}
namespace avx2 {
std::uint64_t hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept;
}
}  // namespace quiver::simd
