// Private to simd/: each level's row-distance functions (quiver/simd/rows.h documents the contract).
#pragma once

#include "quiver/simd/rows.h"

namespace quiver::simd::detail {
struct RowKernels {
    RowDistancesFn l2;
    RowDistancesFn ip;
};
namespace scalar {
extern const RowKernels kRowKernels;
}
namespace avx2 {
extern const RowKernels kRowKernels;
}
namespace avx512 {
extern const RowKernels kRowKernels;
}
}  // namespace quiver::simd::detail
