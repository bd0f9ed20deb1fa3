// Private to simd/: the GEMM micro-kernels of each level (quiver/simd/gemm.h documents the contract).
#pragma once

#include <cstddef>

#include "quiver/simd/gemm.h"

namespace quiver::simd::detail {

/// K block of gemm() and gemm_stream() (both must use it, so their sums agree bit for bit): the whole K
/// up to 2,048, else equal blocks of at most 2,048. A micro-kernel streams its B panel (K x 128 bytes)
/// from L2 as fast as from L1 on the CPUs measured, so blocking K for L1 only added C round trips and
/// loop overhead: a single 12 x 32 tile loop over K = 1,536 (BERT's FFN down-projection) ran 8% faster
/// than 256-row blocks, over K = 384 3% faster (one thread, AVX-512, session 7 notes).
inline std::size_t gemm_k_block(std::size_t k) noexcept {
    constexpr std::size_t kMaxKc = 2048;
    if (k <= kMaxKc) return k == 0 ? 1 : k;
    const std::size_t blocks = (k + kMaxKc - 1) / kMaxKc;
    return (k + blocks - 1) / blocks;
}

namespace scalar {
extern const GemmKernels kGemmKernels;
/// GemmKernels::pack_panel in plain loops (the AVX2 table uses it too).
void pack_panel(const float* w, std::size_t cols, std::size_t k, std::size_t ld, float* panel);
}
namespace avx2 {
extern const GemmKernels kGemmKernels;
}
namespace avx512 {
extern const GemmKernels kGemmKernels;
}
}  // namespace quiver::simd::detail
