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

std::size_t select(const float* s, const float* add, float scale, float offset, std::size_t n, float bound,
                   std::uint32_t* out) {
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j) {
        const float d = offset + (add != nullptr ? add[j] : 0.0f) + scale * s[j];
        if (d <= bound) out[m++] = static_cast<std::uint32_t>(j);
    }
    return m;
}

}  // namespace

const GemmKernels kGemmKernels{"scalar", &gemm_tile, 4, &select};

}  // namespace scalar
}  // namespace quiver::simd::detail
