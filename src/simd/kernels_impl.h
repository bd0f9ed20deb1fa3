// Private header: the per-ISA kernel tables, each defined in its own translation unit compiled with
// that ISA's flags (cmake/QuiverSimd.cmake). Only these symbols cross the ISA boundary.
#pragma once

#include "quiver/simd/kernels.h"

namespace quiver::simd {
namespace scalar { extern const Kernels kKernels; }
namespace avx2 { extern const Kernels kKernels; }
namespace avx512 { extern const Kernels kKernels; }
}  // namespace quiver::simd
