#include "index/codec/kmeans.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quiver/core/thread_pool.h"
#include "quiver/simd/gemm.h"

namespace quiver::index::detail {
void assign_nearest(MatrixView<float> data, MatrixView<float> centroids, std::uint32_t* out_assign,
                    float* out_dist, std::size_t threads) {
    const std::size_t n = data.rows, k = centroids.rows, d = data.dim;
    if (n == 0 || k == 0) return;
    std::vector<float> cnorm(k);
    for (std::size_t c = 0; c < k; ++c) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double(centroids.row_ptr(c)[j]) * centroids.row_ptr(c)[j];
        cnorm[c] = static_cast<float>(s);
    }
    ThreadPool pool(resolve_threads(threads));
    if (d <= 16) {
        // Short rows (PQ sub-vectors): BLAS would mostly write score tiles. Scan the centroids transposed
        // (d x k), so the inner loop runs over centroids and vectorises.
        std::vector<float> ct(d * k);
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t j = 0; j < d; ++j) ct[j * k + c] = centroids.row_ptr(c)[j];
        }
        pool.parallel_for((n + 255) / 256, [&](std::size_t b, std::size_t) {
            std::vector<float> acc(k);
            for (std::size_t i = b * 256; i < std::min(n, b * 256 + 256); ++i) {
                const float* x = data.row_ptr(i);
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (std::size_t j = 0; j < d; ++j) {
                    const float xj = x[j];
                    const float* cj = ct.data() + j * k;
                    for (std::size_t c = 0; c < k; ++c) acc[c] += (xj - cj[c]) * (xj - cj[c]);
                }
                std::size_t arg = 0;
                for (std::size_t c = 1; c < k; ++c) {
                    if (acc[c] < acc[arg]) arg = c;
                }
                out_assign[i] = static_cast<std::uint32_t>(arg);
                if (out_dist != nullptr) out_dist[i] = acc[arg];
            }
        });
        return;
    }
    // The exact flat search's fused scan (simd/gemm.h GemmKernels::scan, as FlatIndex's batches run it):
    // each worker packs 128 data rows as the panels (4 x 32 "queries") and streams the centroids
    // through the micro-kernel as its rows, 12 at a time; d = |c|^2 - 2 x . c is compared with each data
    // row's best so far while still in registers, so only improvements leave the kernel. (Debian's
    // OpenBLAS, the previous scorer, runs generic SSE3 kernels on CPUs newer than its tables unless
    // OPENBLAS_CORETYPE is set before it loads.) Centroids are taken in order and only a strictly
    // smaller distance replaces the best, so ties keep the lower centroid.
    const simd::GemmKernels& kern = simd::gemm_kernels();
    constexpr std::size_t kPanels = 4;
    constexpr std::size_t kRows = kPanels * simd::kGemmPanel;
    const std::size_t mr = kern.mr;
    pool.parallel_for((n + kRows - 1) / kRows, [&](std::size_t blk, std::size_t) {
        const std::size_t r0 = blk * kRows;
        const std::size_t rn = std::min(kRows, n - r0);
        simd::PackedB rows;
        simd::pack_rows(data.row_ptr(r0), rn, d, d, rows);
        float best[kRows];
        std::uint32_t arg[kRows] = {};
        for (std::size_t j = 0; j < kRows; ++j) best[j] = j < rn ? INFINITY : -INFINITY;  // padding never kept
        const float zero[simd::kGemmPanel] = {};
        float d_out[16 * simd::kGemmPanel];
        std::uint32_t hits[16];
        for (std::size_t c = 0; c < k; c += mr) {
            const std::size_t h = std::min(mr, k - c);
            for (std::size_t p = 0; p < rows.panels(); ++p) {
                const std::size_t nr = std::min(simd::kGemmPanel, rn - p * simd::kGemmPanel);
                float* bound = best + p * simd::kGemmPanel;
                std::uint32_t kept = kern.scan(centroids.row_ptr(c), d, rows.panel(p), d, h, nr, cnorm.data() + c, zero,
                                               -2.0f, bound, d_out, hits);
                while (kept != 0) {
                    const auto r = static_cast<std::size_t>(__builtin_ctz(kept));
                    kept &= kept - 1;
                    for (std::uint32_t m = hits[r]; m != 0; m &= m - 1) {
                        const auto j = static_cast<std::size_t>(__builtin_ctz(m));
                        const float v = d_out[r * simd::kGemmPanel + j];
                        if (v < bound[j]) {
                            bound[j] = v;
                            arg[p * simd::kGemmPanel + j] = static_cast<std::uint32_t>(c + r);
                        }
                    }
                }
            }
        }
        std::copy_n(arg, rn, out_assign + r0);
        if (out_dist != nullptr) {
            for (std::size_t i = 0; i < rn; ++i) {
                double s = 0;
                const float* x = data.row_ptr(r0 + i);
                const float* c = centroids.row_ptr(arg[i]);
                for (std::size_t j = 0; j < d; ++j) s += (double(x[j]) - c[j]) * (double(x[j]) - c[j]);
                out_dist[r0 + i] = static_cast<float>(s);
            }
        }
    });
}

Result<Matrix<float>> kmeans(MatrixView<float> data, const KMeansParams& p) {
    const std::size_t d = data.dim;
    if (p.k == 0) return invalid_argument("k-means needs k >= 1");
    if (data.rows < p.k) {
        return invalid_argument(fmt::format("k-means with {} centroids needs at least {} training vectors, got {}",
                                            p.k, p.k, data.rows));
    }
    std::mt19937_64 rng(p.seed);
    // Subsample large inputs.
    Matrix<float> sample;
    MatrixView<float> x = data;
    const std::size_t cap = p.k * std::max<std::size_t>(p.max_points_per_centroid, 1);
    if (data.rows > cap) {
        std::vector<std::size_t> idx(data.rows);
        std::iota(idx.begin(), idx.end(), 0);
        for (std::size_t i = 0; i < cap; ++i) std::swap(idx[i], idx[i + rng() % (data.rows - i)]);
        std::sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(cap));
        sample = Matrix<float>(cap, d);
        for (std::size_t i = 0; i < cap; ++i) std::copy_n(data.row_ptr(idx[i]), d, sample.row_ptr(i));
        x = sample.view();
    }
    const std::size_t n = x.rows;
    Matrix<float> cent(p.k, d);
    {
        std::vector<std::size_t> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        for (std::size_t i = 0; i < p.k; ++i) std::swap(idx[i], idx[i + rng() % (n - i)]);
        for (std::size_t c = 0; c < p.k; ++c) std::copy_n(x.row_ptr(idx[c]), d, cent.row_ptr(c));
    }
    std::vector<std::uint32_t> assign(n);
    std::vector<double> sums(p.k * d);
    std::vector<std::size_t> counts(p.k);
    for (std::size_t it = 0; it < p.iterations; ++it) {
        assign_nearest(x, cent, assign.data(), nullptr, p.threads);
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t c = assign[i];
            ++counts[c];
            const float* row = x.row_ptr(i);
            double* s = sums.data() + c * d;
            for (std::size_t j = 0; j < d; ++j) s[j] += row[j];
        }
        for (std::size_t c = 0; c < p.k; ++c) {
            if (counts[c] == 0) continue;
            for (std::size_t j = 0; j < d; ++j) {
                cent.row_ptr(c)[j] = static_cast<float>(sums[c * d + j] / static_cast<double>(counts[c]));
            }
        }
        // Empty clusters: split the largest cluster (FAISS's rule): copy its centroid, nudge both apart.
        for (std::size_t c = 0; c < p.k; ++c) {
            if (counts[c] != 0) continue;
            const std::size_t big = static_cast<std::size_t>(
                std::max_element(counts.begin(), counts.end()) - counts.begin());
            constexpr float kEps = 1.0f / 1024.0f;
            for (std::size_t j = 0; j < d; ++j) {
                const float v = cent.row_ptr(big)[j];
                const float sign = (j % 2 == 0) ? 1.0f : -1.0f;
                cent.row_ptr(c)[j] = v * (1 + sign * kEps);
                cent.row_ptr(big)[j] = v * (1 - sign * kEps);
            }
            counts[c] = counts[big] / 2;
            counts[big] -= counts[c];
        }
        if (p.spherical) {
            for (std::size_t c = 0; c < p.k; ++c) {
                float* v = cent.row_ptr(c);
                double s = 0;
                for (std::size_t j = 0; j < d; ++j) s += double(v[j]) * v[j];
                if (s <= 0) continue;
                const double inv = 1.0 / std::sqrt(s);
                for (std::size_t j = 0; j < d; ++j) v[j] = static_cast<float>(v[j] * inv);
            }
        }
    }
    return cent;
}

}  // namespace quiver::index::detail
