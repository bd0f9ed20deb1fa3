#include "encode/linear.h"

#include <algorithm>
#include <cmath>

#include "quiver/core/thread_pool.h"
#include "quiver/simd/kernels.h"

namespace quiver::encode::detail {

void quantize_row_scalar(const float* x, std::size_t k, std::size_t kp, std::int32_t act_max, std::uint8_t* q,
                         float* scale, std::int32_t* zero) {
    float lo = 0.0f, hi = 0.0f;
    for (std::size_t i = 0; i < k; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    float inv;
    quant_params(lo, hi, act_max, scale, &inv, zero);
    const auto levels = static_cast<float>(act_max);
    for (std::size_t i = 0; i < k; ++i) {
        const float v = std::nearbyint(x[i] * inv) + static_cast<float>(*zero);
        q[i] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, levels));
    }
    for (std::size_t i = k; i < kp; ++i) q[i] = 0;
}

namespace int8_scalar {
namespace {

void tile(const std::uint8_t* a, std::size_t lda, const std::int8_t* panel, std::size_t k4, float* c, std::size_t ldc,
          std::size_t mr, std::size_t nr, const float* row_scale, const std::int32_t* row_zero, const float* col_scale,
          const std::int32_t* col_sum, const float* bias, bool accumulate) {
    for (std::size_t r = 0; r < mr; ++r) {
        std::int32_t acc[kPanel] = {};
        const std::uint8_t* ar = a + r * lda;
        for (std::size_t g = 0; g < k4; ++g) {
            const std::int8_t* b = panel + g * kPanel * 4;
            for (std::size_t j = 0; j < kPanel; ++j) {
                for (std::size_t t = 0; t < 4; ++t) acc[j] += static_cast<std::int32_t>(ar[4 * g + t]) * b[4 * j + t];
            }
        }
        float* cr = c + r * ldc;
        for (std::size_t j = 0; j < nr; ++j) {
            float v = row_scale[r] * col_scale[j] * static_cast<float>(acc[j] - row_zero[r] * col_sum[j]);
            if (bias != nullptr) v += bias[j];
            if (accumulate) v += cr[j];
            cr[j] = v;
        }
    }
}

}  // namespace

const Int8Kernels kInt8Kernels{"scalar", 255, 4, &tile, &quantize_row_scalar};

}  // namespace int8_scalar

const Int8Kernels* int8_kernels_for(int level) noexcept {
    const auto l = static_cast<simd::SimdLevel>(level);
    if (simd::kernels_for(l) == nullptr) return nullptr;
    switch (l) {
        case simd::SimdLevel::kScalar: return &int8_scalar::kInt8Kernels;
        case simd::SimdLevel::kAvx2: return &int8_avx2::kInt8Kernels;
        case simd::SimdLevel::kAvx512:
            return __builtin_cpu_supports("avx512vnni") ? &int8_vnni::kInt8Kernels : nullptr;
    }
    return nullptr;
}

const Int8Kernels& int8_kernels() noexcept {
    static const Int8Kernels* k = [] {
        for (int level = static_cast<int>(simd::active_simd_level()); level >= 0; --level) {
            if (const Int8Kernels* p = int8_kernels_for(level)) return p;
        }
        return &int8_scalar::kInt8Kernels;
    }();
    return *k;
}

Linear::Linear(const float* w, std::size_t n, std::size_t k, bool int8) : n_(n), k_(k), k4_((k + 3) / 4), int8_(int8) {
    if (!int8) {
        pack_rows(w, n, k, k, f32_);
        return;
    }
    const std::size_t panels = (n + kPanel - 1) / kPanel;
    q_.assign(panels * k4_ * kPanel * 4, 0);
    col_scale_.assign(panels * kPanel, 0.0f);
    col_sum_.assign(panels * kPanel, 0);
    std::vector<std::int8_t> row(k4_ * 4);
    for (std::size_t j = 0; j < n; ++j) {
        const float* wr = w + j * k;
        float amax = 0.0f;
        for (std::size_t i = 0; i < k; ++i) amax = std::max(amax, std::abs(wr[i]));
        const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
        std::fill(row.begin(), row.end(), std::int8_t{0});
        std::int32_t sum = 0;
        for (std::size_t i = 0; i < k; ++i) {
            const auto q = static_cast<std::int32_t>(std::lround(wr[i] / scale));
            row[i] = static_cast<std::int8_t>(std::clamp(q, -127, 127));
            sum += row[i];
        }
        col_scale_[j] = scale;
        col_sum_[j] = sum;
        std::int8_t* panel = q_.data() + (j / kPanel) * k4_ * kPanel * 4;
        const std::size_t jj = j % kPanel;
        for (std::size_t g = 0; g < k4_; ++g) {
            for (std::size_t t = 0; t < 4; ++t) panel[g * kPanel * 4 + jj * 4 + t] = row[4 * g + t];
        }
    }
}

void Linear::apply(ThreadPool* team, const float* a, std::size_t lda, std::size_t m, float* c, std::size_t ldc,
                   const float* bias, bool accumulate, LinearScratch& s,
                   void (*epilogue)(float*, std::size_t, std::size_t, std::size_t)) const {
    if (m == 0) return;
    if (!int8_) {
        GemmArgs g;
        g.a = a;
        g.lda = lda;
        g.m = m;
        g.c = c;
        g.ldc = ldc;
        g.bias = bias;
        g.accumulate = accumulate;
        g.epilogue = epilogue;
        const std::size_t panels = f32_.panels();
        if (team == nullptr || team->size() <= 1 || panels < 2) {
            gemm_stream(g, f32_);
            return;
        }
        // A query's few rows (one row block): one panel per item. Many rows: a few items per thread,
        // each passing every row block over its panels.
        const std::size_t items = m <= 96 ? panels : std::min(panels, 4 * team->size());
        team->parallel_for(items, [&](std::size_t i, std::size_t) {
            gemm_stream(g, f32_, panels * i / items, panels * (i + 1) / items);
        });
        return;
    }
    const Int8Kernels& kern = int8_kernels();
    // Quantise each activation row to [0, act_max] with its own scale and zero point.
    const std::size_t kp = k4_ * 4;
    s.xq.resize(m * kp);
    s.row_scale.resize(m);
    s.row_zero.resize(m);
    for (std::size_t r = 0; r < m; ++r) {
        kern.quantize(a + r * lda, k_, kp, kern.act_max, s.xq.data() + r * kp, &s.row_scale[r], &s.row_zero[r]);
    }
    const std::size_t panels = (n_ + kPanel - 1) / kPanel;
    auto run = [&](std::size_t p0, std::size_t p1) {
        const std::size_t mr = kern.mr;
        const std::size_t block = std::max<std::size_t>(mr, 96 / mr * mr);
        for (std::size_t m0 = 0; m0 < m; m0 += block) {
            const std::size_t m1 = std::min(m, m0 + block);
            for (std::size_t p = p0; p < p1; ++p) {
                const std::size_t col = p * kPanel;
                const std::size_t nr = std::min(kPanel, n_ - col);
                const std::int8_t* panel = q_.data() + p * k4_ * kPanel * 4;
                for (std::size_t r = m0; r < m1; r += mr) {
                    const std::size_t h = std::min(mr, m1 - r);
                    kern.tile(s.xq.data() + r * kp, kp, panel, k4_, c + r * ldc + col, ldc, h, nr,
                              s.row_scale.data() + r, s.row_zero.data() + r, col_scale_.data() + col,
                              col_sum_.data() + col, bias != nullptr ? bias + col : nullptr, accumulate);
                    if (epilogue != nullptr) epilogue(c + r * ldc + col, ldc, h, nr);
                }
            }
        }
    };
    if (team == nullptr || team->size() <= 1 || panels < 2) {
        run(0, panels);
        return;
    }
    const std::size_t parts = std::min(panels, team->size());
    team->parallel_for(parts, [&](std::size_t i, std::size_t) { run(panels * i / parts, panels * (i + 1) / parts); });
}

}  // namespace quiver::encode::detail
