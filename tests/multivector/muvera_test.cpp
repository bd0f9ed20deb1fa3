// MUVERA FDE properties: exact identities, the one-sided bound, the paper's epsilon-approximation on
// random sets, projections, determinism and the stored draws.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "mv_data.h"
#include "quiver/multivector/muvera.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

std::vector<float> fde(const Muvera& m, const Matrix<float>& x, bool document) {
    std::vector<float> out(m.fde_dim());
    if (document) {
        m.encode_document(x.view(), out.data());
    } else {
        m.encode_query(x.view(), out.data());
    }
    return out;
}

TEST(Muvera, RejectsBadParameters) {
    EXPECT_FALSE(Muvera::create(0, {}).ok());
    EXPECT_FALSE(Muvera::create(8, {.k_sim = 17}).ok());
    EXPECT_FALSE(Muvera::create(8, {.r_reps = 0}).ok());
    EXPECT_FALSE(Muvera::create(1 << 16, {.k_sim = 16, .d_proj = 0, .r_reps = 4}).ok());
    auto m = Muvera::create(100, {.k_sim = 4, .d_proj = 16, .r_reps = 10});
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->fde_dim(), 10u * 16 * 16);
    auto f = Muvera::create(100, {.k_sim = 4, .d_proj = 16, .r_reps = 10, .d_final = 1000});
    EXPECT_EQ(f->fde_dim(), 1000u);
    EXPECT_EQ(f->raw_dim(), 2560u);
}

// One partition and the identity: the document block is the mean token and the query block the sum,
// so <F_q, F_doc> = r_reps * sum_q <q, mean(P)> exactly.
TEST(Muvera, OnePartitionIsTheMeanToken) {
    auto m = Muvera::create(16, {.k_sim = 0, .d_proj = 0, .r_reps = 3});
    ASSERT_TRUE(m.ok());
    Matrix<float> q = testdata::random_unit(5, 16, 1);
    Matrix<float> p = testdata::random_unit(7, 16, 2);
    std::vector<double> mean(16, 0.0);
    for (std::size_t r = 0; r < 7; ++r)
        for (std::size_t j = 0; j < 16; ++j) mean[j] += p.row_ptr(r)[j] / 7.0;
    double expect = 0;
    for (std::size_t i = 0; i < 5; ++i)
        for (std::size_t j = 0; j < 16; ++j) expect += q.row_ptr(i)[j] * mean[j];
    EXPECT_NEAR(dot(fde(*m, q, false), fde(*m, p, true)), 3 * expect, 1e-4);
}

// A document block holds the mean of its partition's tokens; a query block their sum; with
// fill_empty_partitions every block of a non-empty document is filled from the Hamming-nearest token.
TEST(Muvera, BlocksFollowTheSimHashPartitions) {
    const std::size_t dim = 12;
    for (bool fill : {false, true}) {
        auto m = Muvera::create(dim, {.k_sim = 3, .d_proj = 0, .r_reps = 2, .fill_empty_partitions = fill, .seed = 9});
        ASSERT_TRUE(m.ok());
        Matrix<float> p = testdata::random_unit(4, dim, 11);
        auto d = fde(*m, p, true);
        auto q = fde(*m, p, false);
        for (std::size_t rep = 0; rep < 2; ++rep) {
            for (std::uint32_t k = 0; k < 8; ++k) {
                std::vector<double> sum(dim, 0.0);
                std::size_t count = 0;
                for (std::size_t t = 0; t < 4; ++t) {
                    if (m->partition(rep, p.row_ptr(t)) != k) continue;
                    ++count;
                    for (std::size_t j = 0; j < dim; ++j) sum[j] += p.row_ptr(t)[j];
                }
                const float* db = d.data() + (rep * 8 + k) * dim;
                const float* qb = q.data() + (rep * 8 + k) * dim;
                std::size_t nearest = 0;
                int best = 99;
                for (std::size_t t = 0; t < 4; ++t) {
                    const int bits = std::popcount(m->partition(rep, p.row_ptr(t)) ^ k);
                    if (bits < best) best = bits, nearest = t;
                }
                for (std::size_t j = 0; j < dim; ++j) {
                    EXPECT_NEAR(qb[j], sum[j], 1e-5);
                    const double want = count > 0 ? sum[j] / count : (fill ? p.row_ptr(nearest)[j] : 0.0);
                    EXPECT_NEAR(db[j], want, 1e-5) << "rep " << rep << " block " << k;
                }
            }
        }
    }
}

// Hyperplanes through a centre: the partition compares <g, x> with <g, c>, so tokens that share a
// common direction (as word embeddings do) still spread over the partitions; queries and documents
// use the same function, and the stored offsets read back.
TEST(Muvera, CenteredHyperplanesSpreadSkewedTokens) {
    const std::size_t dim = 16;
    Matrix<float> x = testdata::random_unit(400, dim, 3);
    for (std::size_t r = 0; r < x.rows; ++r) x.row_ptr(r)[0] += 4.0f;  // a shared direction
    std::vector<float> mean(dim, 0.0f);
    for (std::size_t r = 0; r < x.rows; ++r)
        for (std::size_t j = 0; j < dim; ++j) mean[j] += x.row_ptr(r)[j] / static_cast<float>(x.rows);
    auto plain = Muvera::create(dim, {.k_sim = 3, .d_proj = 0, .r_reps = 1, .seed = 4});
    auto centred = Muvera::create(dim, {.k_sim = 3, .d_proj = 0, .r_reps = 1, .seed = 4});
    centred->set_center(mean.data());
    auto largest_share = [&](const Muvera& m) {
        std::vector<int> count(8, 0);
        for (std::size_t r = 0; r < x.rows; ++r) ++count[m.partition(0, x.row_ptr(r))];
        return *std::max_element(count.begin(), count.end()) / static_cast<double>(x.rows);
    };
    EXPECT_GT(largest_share(*plain), 0.3);
    EXPECT_LT(largest_share(*centred), 0.25);
}

// Identity projection: each document block is a mean of (or one of) the document's tokens, so the
// FDE inner product never exceeds Chamfer: <F_q, F_doc> / r_reps <= CH(Q, P), on every pair.
TEST(Muvera, IdentityEncodingNeverOverestimatesChamfer) {
    auto m = Muvera::create(24, {.k_sim = 3, .d_proj = 0, .r_reps = 5, .fill_empty_partitions = true, .seed = 3});
    ASSERT_TRUE(m.ok());
    for (std::uint64_t s = 0; s < 200; ++s) {
        Matrix<float> q = testdata::random_unit(1 + s % 9, 24, 100 + s);
        Matrix<float> p = testdata::random_unit(1 + (s * 7) % 30, 24, 1000 + s);
        const double ch = testdata::chamfer_reference(q, p.values.data(), p.rows);
        EXPECT_LE(dot(fde(*m, q, false), fde(*m, p, true)) / 5.0, ch + 1e-4) << s;
    }
}

// Theorem 2.1 of the paper: for unit vectors and k_sim = O(log(m / delta) / eps), d_proj =
// O(log(m / (eps delta)) / eps^2), R_reps = 1, with probability at least 1 - delta over the draws,
//   NChamfer(Q, P) - eps <= <F_q(Q), F_doc(P)> / |Q| <= NChamfer(Q, P) + eps     (NChamfer = CH / |Q|).
// The O() hides constants, so the test checks the bound's shape on random point sets with fresh draws
// per pair: (1) the mean error falls as k_sim grows (the 1/eps dependence), with and without a planted
// near-duplicate for each query token; (2) at k_sim = 16 (the largest this implementation allows),
// the share of pairs outside +-eps stays below delta for eps = 0.3, delta = 0.05. (eps = 0.1 needs
// k_sim beyond 16 on these sets: 20% of planted pairs are outside it at k_sim = 16.) The figures are
// deterministic for these seeds; the printed table shows the margins.
struct BoundStats {
    double mean = 0, worst = 0, outside = 0;
};

BoundStats bound_stats(const MuveraParams& params, bool planted, double eps, std::size_t trials) {
    const std::size_t dim = 32;
    BoundStats st;
    for (std::size_t t = 0; t < trials; ++t) {
        MuveraParams p = params;
        p.seed = 1000 + t;
        auto m = Muvera::create(dim, p);
        Matrix<float> pts = testdata::random_unit(32, dim, 5000 + t);
        Matrix<float> q = testdata::random_unit(8, dim, 9000 + t);
        if (planted) {
            // Query token i = document token 4 i plus noise (cosine about 0.96), renormalised.
            Matrix<float> noise = testdata::random_unit(8, dim, 7000 + t);
            for (std::size_t i = 0; i < 8; ++i) {
                double n = 0;
                for (std::size_t j = 0; j < dim; ++j) {
                    q.row_ptr(i)[j] = pts.row_ptr(4 * i)[j] + 0.3f * noise.row_ptr(i)[j];
                    n += q.row_ptr(i)[j] * q.row_ptr(i)[j];
                }
                for (std::size_t j = 0; j < dim; ++j) q.row_ptr(i)[j] = static_cast<float>(q.row_ptr(i)[j] / std::sqrt(n));
            }
        }
        const double nch = testdata::chamfer_reference(q, pts.values.data(), pts.rows) / 8.0;
        const double est = dot(fde(*m, q, false), fde(*m, pts, true)) / (8.0 * static_cast<double>(p.r_reps));
        const double err = std::abs(est - nch);
        st.mean += err / static_cast<double>(trials);
        st.worst = std::max(st.worst, err);
        st.outside += (err > eps ? 1.0 : 0.0) / static_cast<double>(trials);
    }
    return st;
}

TEST(Muvera, FdeInnerProductApproximatesChamferWithinTheBound) {
    constexpr double kEps = 0.3, kDelta = 0.05;
    for (bool planted : {true, false}) {
        double previous = 1e9;
        for (std::size_t ks : {4, 8, 12}) {
            const BoundStats st = bound_stats({.k_sim = ks, .d_proj = 0, .r_reps = 4}, planted, kEps, 60);
            std::printf("%s k_sim %2zu r_reps 4: mean |error| %.4f, worst %.4f, %.3f of pairs outside +-%.1f\n",
                        planted ? "planted" : "random ", ks, st.mean, st.worst, st.outside, kEps);
            EXPECT_LT(st.mean, previous) << "k_sim " << ks;
            previous = st.mean;
            if (ks == 12) {
                EXPECT_LE(st.outside, kDelta) << (planted ? "planted" : "random");
            }
        }
    }
    // The inner projection adds its own (JL) error on top: still inside the bound at d_proj = 64.
    const BoundStats proj = bound_stats({.k_sim = 12, .d_proj = 64, .r_reps = 4}, true, kEps, 60);
    std::printf("planted k_sim 12 d_proj 64: mean |error| %.4f, worst %.4f, %.3f outside\n", proj.mean, proj.worst,
                proj.outside);
    EXPECT_LE(proj.outside, kDelta);
}

// The inner projection preserves inner products in expectation (Johnson-Lindenstrauss with +-1/sqrt(d)).
TEST(Muvera, ProjectionPreservesInnerProductsOnAverage) {
    const std::size_t dim = 40;
    Matrix<float> x = testdata::random_unit(1, dim, 1);
    Matrix<float> y = testdata::random_unit(1, dim, 2);
    double truth = 0;
    for (std::size_t j = 0; j < dim; ++j) truth += x.values[j] * y.values[j];
    double mean = 0;
    const int trials = 400;
    for (int t = 0; t < trials; ++t) {
        auto m = Muvera::create(dim, {.k_sim = 0, .d_proj = 8, .r_reps = 1, .seed = static_cast<std::uint64_t>(t)});
        mean += dot(fde(*m, x, false), fde(*m, y, true)) / trials;
    }
    // The estimator's standard deviation is about sqrt(2/8)/sqrt(400) = 0.025.
    EXPECT_NEAR(mean, truth, 0.08);
}

TEST(Muvera, SameSeedSameEncodingAndStoredDrawsReadBack) {
    testing::TempDir dir;
    MuveraParams p{.k_sim = 3, .d_proj = 8, .r_reps = 4, .d_final = 100, .seed = 77};
    auto a = Muvera::create(20, p);
    auto b = Muvera::create(20, p);
    Matrix<float> x = testdata::random_unit(6, 20, 5);
    EXPECT_EQ(fde(*a, x, true), fde(*b, x, true));
    p.seed = 78;
    auto c = Muvera::create(20, p);
    EXPECT_NE(fde(*a, x, true), fde(*c, x, true));
    const std::string path = dir.file("m.bin");
    {
        auto w = storage::FileWriter::create(path, storage::fourcc("TEST"), 1);
        ASSERT_TRUE(w.ok());
        ASSERT_TRUE(a->write(*w).ok());
        ASSERT_TRUE(w->finish().ok());
    }
    auto f = storage::MappedFile::open(path);
    ASSERT_TRUE(f.ok());
    auto r = storage::open_payload(*f, storage::fourcc("TEST"), 1);
    ASSERT_TRUE(r.ok());
    auto back = Muvera::read(*r);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(fde(*back, x, true), fde(*a, x, true));
    EXPECT_EQ(fde(*back, x, false), fde(*a, x, false));
}

TEST(Muvera, EmptySetsEncodeToZero) {
    auto m = Muvera::create(8, {.k_sim = 2, .d_proj = 4, .r_reps = 2});
    Matrix<float> none(0, 8);
    for (bool doc : {false, true}) {
        auto v = fde(*m, none, doc);
        EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
    }
}

}  // namespace
}  // namespace quiver::multivector
