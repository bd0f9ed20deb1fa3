// Portable GEMM micro-kernel (the reference semantics of the SIMD ones).
#include "simd/gemm_kernels.h"

namespace quiver::simd::detail {
namespace scalar {
namespace {

constexpr std::size_t kPanel = kGemmPanel;

void gemm_tile(const float* a, std::size_t lda, const float* panel, std::size_t k, float* c, std::size_t ldc,
               std::size_t mr, std::size_t nr, const float* bias, bool accumulate, float alpha) {
    for (std::size_t r = 0; r < mr; ++r) {
        float acc[kPanel] = {};
        const float* ar = a + r * lda;
        for (std::size_t i = 0; i < k; ++i) {
            const float av = ar[i];
            const float* b = panel + i * kPanel;
            for (std::size_t j = 0; j < kPanel; ++j) acc[j] += av * b[j];
        }
        float* cr = c + r * ldc;
        for (std::size_t j = 0; j < nr; ++j) {
            float v = alpha * acc[j];
            if (bias != nullptr) v += bias[j];
            if (accumulate) v += cr[j];
            cr[j] = v;
        }
    }
}

std::uint32_t scan(const float* a, std::size_t lda, const float* panel, std::size_t k, std::size_t mr, std::size_t nr,
                   const float* row_add, const float* offset, float scale, const float* bound, float* d_out,
                   std::uint32_t* hits) {
    std::uint32_t rows = 0;
    for (std::size_t r = 0; r < mr; ++r) {
        float acc[kPanel] = {};
        const float* ar = a + r * lda;
        for (std::size_t i = 0; i < k; ++i) {
            const float av = ar[i];
            const float* b = panel + i * kPanel;
            for (std::size_t j = 0; j < nr; ++j) acc[j] += av * b[j];
        }
        const float add = row_add != nullptr ? row_add[r] : 0.0f;
        float d[kPanel];
        std::uint32_t mask = 0;
        for (std::size_t j = 0; j < nr; ++j) {
            d[j] = offset[j] + add + scale * acc[j];
            if (d[j] <= bound[j]) mask |= 1u << j;
        }
        if (mask == 0) continue;
        for (std::size_t j = 0; j < nr; ++j) d_out[r * kPanel + j] = d[j];
        hits[r] = mask;
        rows |= 1u << r;
    }
    return rows;
}

}  // namespace

void pack_panel(const float* w, std::size_t cols, std::size_t k, std::size_t ld, float* panel) {
    for (std::size_t i = 0; i < k; ++i) {
        float* row = panel + i * kPanel;
        for (std::size_t j = 0; j < cols; ++j) row[j] = w[j * ld + i];
        for (std::size_t j = cols; j < kPanel; ++j) row[j] = 0.0f;
    }
}

const GemmKernels kGemmKernels{"scalar", &gemm_tile, 4, &scan, &pack_panel};

}  // namespace scalar
}  // namespace quiver::simd::detail
