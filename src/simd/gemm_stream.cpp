// gemm_stream(): gemm() whose first row tile of each K block of B fetches the next block into L2.
#include <algorithm>

#include "quiver/simd/gemm.h"
#include "simd/gemm_kernels.h"
#include "simd/gemm_stream.h"

namespace quiver::simd {

void gemm_stream(const GemmArgs& g, const PackedB& b, std::size_t panel_begin, std::size_t panel_end) {
    const GemmKernels& uk = gemm_kernels();
    const detail::GemmStreamKernels* sk =
        &uk == &detail::avx512::kGemmKernels ? &detail::avx512::kGemmStreamKernels : nullptr;
    if (sk == nullptr || b.k == 0 || g.m == 0) {
        gemm(g, b, panel_begin, panel_end);
        return;
    }
    if (panel_end == 0) panel_end = b.panels();
    // gemm()'s K blocks, so the sums are gemm()'s bit for bit. Rows: all m split into tiles of equal
    // height (a 256-row group of sequences runs as 22 tiles of 11-12 rows, not as row blocks of
    // 96 + 96 + 64 whose last tiles are 10-11 rows), then 8 tiles (about 96 rows) per row block.
    const std::size_t kKc = detail::gemm_k_block(b.k);
    constexpr std::size_t kTilesPerBlock = 8;
    const std::size_t mr = sk->mr;
    const std::size_t K = b.k;
    const std::size_t tiles_all = (g.m + mr - 1) / mr;
    const std::size_t base = g.m / tiles_all, extra = g.m % tiles_all;
    auto tile_row = [&](std::size_t t) { return t * base + std::min(t, extra); };
    for (std::size_t t0 = 0; t0 < tiles_all; t0 += kTilesPerBlock) {
        const std::size_t t1 = std::min(tiles_all, t0 + kTilesPerBlock);
        const bool last_block = t1 == tiles_all;
        for (std::size_t p = panel_begin; p < panel_end; ++p) {
            const std::size_t col = p * kGemmPanel;
            const std::size_t nr = std::min(kGemmPanel, b.n - col);
            const float* bias = g.bias != nullptr ? g.bias + col : nullptr;
            for (std::size_t k0 = 0; k0 < K; k0 += kKc) {
                const std::size_t kb = std::min(kKc, K - k0);
                const float* panel = b.panel(p) + k0 * kGemmPanel;
                // The K block that follows (this panel's next, the next panel's first, or the next row
                // block's first) is fetched into L2 by this block's first tile.
                const float* next = nullptr;
                if (k0 + kb < K) {
                    next = panel + kb * kGemmPanel;
                } else if (p + 1 < panel_end) {
                    next = b.panel(p + 1);
                } else if (!last_block) {
                    next = b.panel(panel_begin);
                }
                for (std::size_t t = t0; t < t1; ++t) {
                    const std::size_t r = tile_row(t);
                    const std::size_t h = tile_row(t + 1) - r;
                    float* c = g.c + r * g.ldc + col;
                    sk->tile(g.a + r * g.lda + k0, g.lda, panel, kb, c, g.ldc, h, nr, k0 == 0 ? bias : nullptr,
                             k0 == 0 ? g.accumulate : true, g.alpha, t == t0 ? next : nullptr);
                    if (g.epilogue != nullptr && k0 + kb >= K) g.epilogue(c, g.ldc, h, nr);
                }
            }
        }
    }
}

}  // namespace quiver::simd
