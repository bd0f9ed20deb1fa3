// Private to simd/: the micro-kernels of gemm_stream() (quiver/simd/gemm.h). Only AVX-512 has them;
// other levels run gemm().
#pragma once

#include "quiver/simd/gemm.h"

namespace quiver::simd::detail {

struct GemmStreamKernels {
    const char* name;
    /// As GemmKernels::tile and, when `prefetch` is not null, the 2k cache lines from `prefetch` on
    /// fetched into L2 while the tile runs (the next K block of B: k rows of kGemmPanel floats).
    void (*tile)(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
                 std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha,
                 const float* prefetch);
    std::size_t mr;  ///< rows per tile at most (the gemm() kernel's of the same level)
};

namespace avx512 {
extern const GemmStreamKernels kGemmStreamKernels;
}

}  // namespace quiver::simd::detail
