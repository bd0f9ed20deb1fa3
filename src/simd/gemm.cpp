// The GEMM driver (packing, blocking, dispatch); the micro-kernels are in gemm_kernels_<level>.cpp.
#include "quiver/simd/gemm.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "quiver/core/thread_pool.h"
#include "simd/gemm_kernels.h"

namespace quiver::simd {

void AlignedFloats::ensure(std::size_t n) {
    if (n <= n_) return;
    buf_.assign(n + 16, 0.0f);
    const auto addr = reinterpret_cast<std::uintptr_t>(buf_.data());
    p_ = buf_.data() + ((64 - addr % 64) % 64) / sizeof(float);
    n_ = n;
}

void pack_rows(const float* w, std::size_t n, std::size_t k, std::size_t ld, PackedB& out) {
    out.n = n;
    out.k = k;
    out.data.ensure(out.panels() * k * kGemmPanel);
    float* dst = out.data.data();
    const GemmKernels& kern = gemm_kernels();
    for (std::size_t p = 0; p < out.panels(); ++p) {
        const std::size_t cols = std::min(kGemmPanel, n - p * kGemmPanel);
        kern.pack_panel(w + p * kGemmPanel * ld, cols, k, ld, dst + p * k * kGemmPanel);
    }
}

void pack_cols(const float* v, std::size_t k, std::size_t n, std::size_t ld, PackedB& out) {
    out.n = n;
    out.k = k;
    out.data.ensure(out.panels() * k * kGemmPanel);
    float* dst = out.data.data();
    for (std::size_t p = 0; p < out.panels(); ++p) {
        const std::size_t cols = std::min(kGemmPanel, n - p * kGemmPanel);
        float* panel = dst + p * k * kGemmPanel;
        for (std::size_t i = 0; i < k; ++i) {
            float* row = panel + i * kGemmPanel;
            std::memcpy(row, v + i * ld + p * kGemmPanel, cols * sizeof(float));
            for (std::size_t j = cols; j < kGemmPanel; ++j) row[j] = 0.0f;
        }
    }
}

const GemmKernels* gemm_kernels_for(SimdLevel level) noexcept {
    if (kernels_for(level) == nullptr) return nullptr;  // the CPU or the build lacks this level
    switch (level) {
        case SimdLevel::kScalar: return &detail::scalar::kGemmKernels;
        case SimdLevel::kAvx2: return &detail::avx2::kGemmKernels;
        case SimdLevel::kAvx512: return &detail::avx512::kGemmKernels;
    }
    return nullptr;
}

const GemmKernels& gemm_kernels() noexcept {
    static const GemmKernels* k = gemm_kernels_for(active_simd_level());
    return k != nullptr ? *k : detail::scalar::kGemmKernels;
}

void gemm(const GemmArgs& g, const PackedB& b, std::size_t panel_begin, std::size_t panel_end,
          const GemmKernels* kernels) {
    // K blocks (detail::gemm_k_block: the whole K up to 2,048): later blocks add onto C.
    const std::size_t kKc = detail::gemm_k_block(b.k);
    const GemmKernels& kern = kernels != nullptr ? *kernels : gemm_kernels();
    if (panel_end == 0) panel_end = b.panels();
    const std::size_t mr = kern.mr;
    // Row blocks of about 96 rows: their A rows stay in L2 while every panel of the range passes.
    const std::size_t block = std::max<std::size_t>(mr, 96 / mr * mr);
    for (std::size_t m0 = 0; m0 < g.m; m0 += block) {
        const std::size_t m1 = std::min(g.m, m0 + block);
        // Rows split into tiles of equal height (16 rows: 8 + 8, not 12 + 4, whose 8 accumulators
        // cannot hide the FMA latency).
        const std::size_t rows = m1 - m0;
        const std::size_t tiles = (rows + mr - 1) / mr;
        for (std::size_t p = panel_begin; p < panel_end; ++p) {
            const std::size_t col = p * kGemmPanel;
            const std::size_t nr = std::min(kGemmPanel, b.n - col);
            const float* bias = g.bias != nullptr ? g.bias + col : nullptr;
            for (std::size_t k0 = 0; k0 < b.k || k0 == 0; k0 += kKc) {
                const std::size_t kb = std::min(kKc, b.k - k0);
                const float* panel = b.panel(p) + k0 * kGemmPanel;
                for (std::size_t t = 0, r = m0; t < tiles; ++t) {
                    const std::size_t h = rows / tiles + (t < rows % tiles ? 1 : 0);
                    kern.tile(g.a + r * g.lda + k0, g.lda, panel, kb, g.c + r * g.ldc + col, g.ldc, h, nr,
                              k0 == 0 ? bias : nullptr, k0 == 0 ? g.accumulate : true, g.alpha);
                    if (g.epilogue != nullptr && k0 + kb >= b.k) g.epilogue(g.c + r * g.ldc + col, g.ldc, h, nr);
                    r += h;
                }
                if (b.k == 0) break;
            }
        }
    }
}

void gemm_parallel(ThreadPool* pool, const GemmArgs& g, const PackedB& b) {
    const std::size_t panels = b.panels();
    if (pool == nullptr || pool->size() <= 1 || panels < 2) {
        gemm(g, b);
        return;
    }
    const std::size_t parts = std::min(panels, pool->size());
    pool->parallel_for(parts, [&](std::size_t i, std::size_t) {
        gemm(g, b, panels * i / parts, panels * (i + 1) / parts);
    });
}

}  // namespace quiver::simd
