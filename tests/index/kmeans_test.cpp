// k-means (index/codec/kmeans.h): the assignment against brute force, spherical centroids.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "index/codec/kmeans.h"

namespace quiver::index::detail {
namespace {

Matrix<float> random_rows(std::size_t n, std::size_t d, std::uint64_t seed, bool unit) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    Matrix<float> m(n, d);
    for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) {
            // Clustered: a shared offset per group of rows, so clusters differ in spread and norm.
            m.row_ptr(i)[j] = g(rng) + static_cast<float>((i % 7) * ((j % 5) == 0 ? 1 : 0));
            s += double(m.row_ptr(i)[j]) * m.row_ptr(i)[j];
        }
        if (unit) {
            for (std::size_t j = 0; j < d; ++j) m.row_ptr(i)[j] = static_cast<float>(m.row_ptr(i)[j] / std::sqrt(s));
        }
    }
    return m;
}

TEST(KMeans, AssignmentIsTheBruteForceNearestCentroid) {
    for (std::size_t d : {3u, 16u, 37u, 100u}) {
        const auto x = random_rows(1000, d, 7 + d, false);
        const auto c = random_rows(50, d, 11 + d, false);
        std::vector<std::uint32_t> got(x.rows);
        std::vector<float> dist(x.rows);
        assign_nearest(x.view(), c.view(), got.data(), dist.data(), 2);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < x.rows; ++i) {
            double best = 1e300, second = 1e300;
            std::uint32_t arg = 0;
            for (std::size_t k = 0; k < c.rows; ++k) {
                double s = 0;
                for (std::size_t j = 0; j < d; ++j) {
                    const double v = double(x.row_ptr(i)[j]) - c.row_ptr(k)[j];
                    s += v * v;
                }
                if (s < best) {
                    second = best;
                    best = s;
                    arg = static_cast<std::uint32_t>(k);
                } else if (s < second) {
                    second = s;
                }
            }
            // float32 products may swap two centroids within rounding of each other, never others.
            if (got[i] != arg) {
                ++differ;
                EXPECT_LT(second - best, 1e-4 * best) << "row " << i << " d " << d;
            }
            EXPECT_NEAR(dist[i], best, 1e-3 * std::max(1.0, best)) << "row " << i << " d " << d;
        }
        EXPECT_LE(differ, 2u) << "d " << d;
    }
}

TEST(KMeans, SphericalCentroidsHaveUnitLengthAndBeatPlainOnCosine) {
    const auto x = random_rows(4000, 24, 3, true);
    auto plain = kmeans(x.view(), {.k = 32, .iterations = 10, .seed = 5});
    auto sph = kmeans(x.view(), {.k = 32, .iterations = 10, .seed = 5, .spherical = true});
    ASSERT_TRUE(plain.ok() && sph.ok());
    double plain_norm_spread = 0;
    for (std::size_t c = 0; c < 32; ++c) {
        double s = 0, p = 0;
        for (std::size_t j = 0; j < 24; ++j) {
            s += double(sph->row_ptr(c)[j]) * sph->row_ptr(c)[j];
            p += double(plain->row_ptr(c)[j]) * plain->row_ptr(c)[j];
        }
        EXPECT_NEAR(s, 1.0, 1e-5) << "centroid " << c;
        plain_norm_spread = std::max(plain_norm_spread, std::abs(1.0 - std::sqrt(p)));
    }
    EXPECT_GT(plain_norm_spread, 0.05);  // plain centroids of unit data are shorter than 1: the two differ
    // The spherical objective (sum of each row's best cosine to a centroid) is at least plain's, with
    // plain's centroids normalised for the comparison.
    auto objective = [&](const Matrix<float>& cent) {
        double total = 0;
        for (std::size_t i = 0; i < x.rows; ++i) {
            double best = -2;
            for (std::size_t c = 0; c < cent.rows; ++c) {
                double dot = 0, n = 0;
                for (std::size_t j = 0; j < 24; ++j) {
                    dot += double(x.row_ptr(i)[j]) * cent.row_ptr(c)[j];
                    n += double(cent.row_ptr(c)[j]) * cent.row_ptr(c)[j];
                }
                best = std::max(best, dot / std::sqrt(n));
            }
            total += best;
        }
        return total;
    };
    EXPECT_GE(objective(*sph), objective(*plain) - 1e-6);
}

}  // namespace
}  // namespace quiver::index::detail

// TopK (index/topk.h): the k smallest (distance, id) pairs, ties by the smaller id, against a full sort.
#include "index/topk.h"

namespace quiver::index::detail {
namespace {

TEST(TopK, KeepsTheKSmallestPairsInOrderAgainstASort) {
    std::mt19937_64 rng(9);
    for (std::size_t k : {1u, 2u, 3u, 10u, 100u, 1000u}) {
        for (std::size_t n : {0u, 1u, 5u, 99u, 1000u, 5000u}) {
            std::vector<std::pair<float, std::uint64_t>> all;
            TopK top(k);
            for (std::size_t i = 0; i < n; ++i) {
                // Few distinct distances, so ties are frequent and broken by id.
                const float d = static_cast<float>(rng() % 50) * 0.25f;
                all.emplace_back(d, i);
                top.push(d, i);
            }
            std::sort(all.begin(), all.end(), TopK::less);
            all.resize(std::min(k, n));
            EXPECT_EQ(top.take_sorted(), all) << "k " << k << " n " << n;
        }
    }
}

}  // namespace
}  // namespace quiver::index::detail
