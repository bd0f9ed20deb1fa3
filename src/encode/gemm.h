// Private to encode/: the shared GEMM (quiver/simd/gemm.h) under the names the forward pass uses.
// Weights are packed once at load; attention packs keys and values per (sequence, head).
#pragma once

#include "quiver/simd/gemm.h"

namespace quiver::encode::detail {

inline constexpr std::size_t kPanel = simd::kGemmPanel;
using simd::AlignedFloats;
using simd::gemm;
using simd::gemm_stream;
using simd::gemm_parallel;
using simd::GemmArgs;
using simd::pack_cols;
using simd::pack_rows;
using simd::PackedB;

}  // namespace quiver::encode::detail
