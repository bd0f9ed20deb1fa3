// Private to simd/: the GEMM micro-kernels of each level (quiver/simd/gemm.h documents the contract).
#pragma once

#include "quiver/simd/gemm.h"

namespace quiver::simd::detail {
namespace scalar {
extern const GemmKernels kGemmKernels;
}
namespace avx2 {
extern const GemmKernels kGemmKernels;
}
namespace avx512 {
extern const GemmKernels kGemmKernels;
}
}  // namespace quiver::simd::detail
