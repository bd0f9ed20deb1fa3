#include "index/codec/kmeans.h"

#include <cblas.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quiver/core/thread_pool.h"

namespace quiver::index::detail {
namespace {
constexpr std::size_t kRowBlock = 1024;
}

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
    // Centroid blocks keep the score tile bounded for large k.
    const std::size_t cblock = std::min<std::size_t>(k, 4096);
    std::vector<float> scores(kRowBlock * cblock);
    std::vector<float> best(kRowBlock);
    for (std::size_t r0 = 0; r0 < n; r0 += kRowBlock) {
        const std::size_t rn = std::min(kRowBlock, n - r0);
        std::fill(best.begin(), best.end(), INFINITY);
        for (std::size_t c0 = 0; c0 < k; c0 += cblock) {
            const std::size_t cn = std::min(cblock, k - c0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rn), static_cast<int>(cn),
                        static_cast<int>(d), 1.0f, data.row_ptr(r0), static_cast<int>(d), centroids.row_ptr(c0),
                        static_cast<int>(d), 0.0f, scores.data(), static_cast<int>(cn));
            pool.parallel_for(rn, [&](std::size_t i, std::size_t) {
                const float* row = scores.data() + i * cn;
                float b = best[i];
                std::uint32_t arg = c0 == 0 ? 0 : out_assign[r0 + i];
                for (std::size_t c = 0; c < cn; ++c) {
                    const float v = cnorm[c0 + c] - 2.0f * row[c];
                    if (v < b) {
                        b = v;
                        arg = static_cast<std::uint32_t>(c0 + c);
                    }
                }
                best[i] = b;
                out_assign[r0 + i] = arg;
            }, 64);
        }
        if (out_dist != nullptr) {
            for (std::size_t i = 0; i < rn; ++i) {
                double s = 0;
                const float* x = data.row_ptr(r0 + i);
                const float* c = centroids.row_ptr(out_assign[r0 + i]);
                for (std::size_t j = 0; j < d; ++j) s += (double(x[j]) - c[j]) * (double(x[j]) - c[j]);
                out_dist[r0 + i] = static_cast<float>(s);
            }
        }
    }
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
    }
    return cent;
}

}  // namespace quiver::index::detail
