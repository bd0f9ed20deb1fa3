// AVX-512 micro-kernel of gemm_stream() (this file alone is compiled with -mavx512f/bw/dq/vl and
// chosen at run time): the 12 x 32 tile, FMA order and epilogue of gemm_kernels_avx512.cpp, so results
// are bit for bit those of gemm(), that can also fetch the next K block of B into L2 while it runs
// (two cache lines per step).
// GCC 12's AVX-512 headers self-initialise _mm512_undefined_*() and trip -Wuninitialized in callers
// (a false positive of the intrinsics, not of this code).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "simd/gemm_stream.h"
#include "simd/gemm_tile_avx512_inl.h"

namespace quiver::simd::detail {
namespace avx512 {
namespace {

using TileFn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t, std::size_t,
                        const float*, bool, float, const float*);

template <bool PREFETCH>
constexpr TileFn kTiles[13] = {nullptr,
                               &packed_tile<1, PREFETCH>,
                               &packed_tile<2, PREFETCH>,
                               &packed_tile<3, PREFETCH>,
                               &packed_tile<4, PREFETCH>,
                               &packed_tile<5, PREFETCH>,
                               &packed_tile<6, PREFETCH>,
                               &packed_tile<7, PREFETCH>,
                               &packed_tile<8, PREFETCH>,
                               &packed_tile<9, PREFETCH>,
                               &packed_tile<10, PREFETCH>,
                               &packed_tile<11, PREFETCH>,
                               &packed_tile<12, PREFETCH>};

void stream_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
                 std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha,
                 const float* prefetch) {
    (prefetch != nullptr ? kTiles<true> : kTiles<false>)[mr](a, lda, panel, k, c, ldc, nr, bias, accumulate, alpha,
                                                            prefetch);
}

}  // namespace

const GemmStreamKernels kGemmStreamKernels{"avx512", &stream_tile, 12};

}  // namespace avx512
}  // namespace quiver::simd::detail
