// Int8 token stores: the SIMD int8 kernels against the scalar reference at every level, int8 MaxSim
// against an independent double-precision reference, its drift from float32 MaxSim within the
// quantisation bound, exact search and re-ranking over int8 stores, and crafted int8 files whose
// checksum is valid but whose sections are not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "mv_data.h"
#include "quiver/multivector/maxsim.h"
#include "quiver/simd/int8_kernels.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/buffer.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

// Every int8 kernel table this CPU runs (AVX-512 with and without VNNI).
std::vector<const simd::Int8Kernels*> levels() {
    std::vector<const simd::Int8Kernels*> out;
    for (simd::SimdLevel level : {simd::SimdLevel::kScalar, simd::SimdLevel::kAvx2, simd::SimdLevel::kAvx512}) {
        for (bool vnni : {false, true}) {
            const simd::Int8Kernels* k = simd::int8_kernels_for(level, vnni);
            if (k == nullptr) {
                std::printf("[ note ] SIMD level %s not supported by this CPU; skipped\n",
                            std::string(simd::to_string(level)).c_str());
                return out;
            }
            if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
        }
    }
    return out;
}

std::int64_t ref_dot(const std::int8_t* a, const std::int8_t* b, std::size_t d) {
    std::int64_t s = 0;
    for (std::size_t k = 0; k < d; ++k) s += std::int64_t{a[k]} * b[k];
    return s;
}

std::vector<std::int8_t> random_codes(std::size_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(-128, 127);
    std::vector<std::int8_t> v(n);
    for (auto& x : v) x = static_cast<std::int8_t>(byte(rng));
    return v;
}

TEST(Int8Kernels, EveryLevelIsExactAndBitIdenticalToScalar) {
    const auto ks = levels();
    ASSERT_GE(ks.size(), 1u);
    EXPECT_EQ(ks[0]->level, simd::SimdLevel::kScalar);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> scale(0.0f, 0.02f);
    const std::size_t dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 384, 769};
    for (std::size_t d : dims) {
        for (std::size_t m : {1, 3, 4, 5, 9, 17, 40}) {
            for (std::size_t t : {1, 2, 7, 9}) {
                const auto q = random_codes(m * d, rng);
                const auto c = random_codes(t * d, rng);
                std::vector<float> ds(t);
                for (auto& s : ds) s = scale(rng);
                // The reference: exact integer products, the same float epilogue.
                std::vector<float> want(m, -std::numeric_limits<float>::infinity());
                for (std::size_t j = 0; j < t; ++j) {
                    for (std::size_t i = 0; i < m; ++i) {
                        const float v = static_cast<float>(ref_dot(&q[i * d], &c[j * d], d)) * ds[j];
                        want[i] = std::max(want[i], v);
                    }
                }
                for (const simd::Int8Kernels* k : ks) {
                    SCOPED_TRACE(::testing::Message() << simd::to_string(k->level) << (k->vnni ? "+vnni" : "") << " d "
                                                      << d << " m " << m << " t " << t);
                    for (std::size_t i = 0; i < m; ++i) {
                        ASSERT_EQ(k->s8_dot(&q[i * d], &c[0], d), ref_dot(&q[i * d], &c[0], d));
                    }
                    std::vector<float> got(m, 0.0f);
                    k->s8_maxsim(q.data(), m, c.data(), ds.data(), t, d, got.data());
                    for (std::size_t i = 0; i < m; ++i) ASSERT_EQ(got[i], want[i]) << "row " << i;  // bit-identical
                    if (k->s8_maxsim_t == nullptr) continue;
                    // The transposed form: the same maxima for the real rows, 0 in the padding lanes.
                    const std::size_t stride = (m + 15) / 16 * 16;
                    std::vector<std::int8_t> qt((d + 3) / 4 * stride * 4, 0);
                    for (std::size_t i = 0; i < m; ++i) {
                        for (std::size_t kk = 0; kk < d; ++kk) qt[((kk / 4) * stride + i) * 4 + kk % 4] = q[i * d + kk];
                    }
                    std::vector<float> got_t(stride, -1.0f);
                    k->s8_maxsim_t(qt.data(), stride, c.data(), ds.data(), t, d, got_t.data());
                    for (std::size_t i = 0; i < m; ++i) ASSERT_EQ(got_t[i], want[i]) << "transposed row " << i;
                    for (std::size_t i = m; i < stride; ++i) ASSERT_EQ(got_t[i], 0.0f) << "padding lane " << i;
                }
            }
        }
    }
}

// s8_dot4_rows against an int64 reference: row pointers into one buffer at odd offsets, counts around
// every step and tail (8, 16, 32 documents), row counts across the AVX2 chunk of 16, a non-zero start.
TEST(Int8Kernels, Dot4RowsEqualsTheIntegerReferenceAtEveryLevel) {
    const auto ks = levels();
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> qcode(-127, 127), start(-100000, 100000);
    for (std::size_t count : {1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 100, 1000}) {
        for (std::size_t rows : {1, 3, 8, 16, 17, 40}) {
            const std::size_t stride = 4 * count + 13;  // rows are `stride` bytes apart, not 4 * count
            const auto x = random_codes(rows * stride + 3, rng);
            std::vector<const std::int8_t*> ptrs(rows);
            for (std::size_t r = 0; r < rows; ++r) ptrs[r] = x.data() + 3 + r * stride;
            std::vector<std::int8_t> q(4 * rows);
            for (auto& v : q) v = static_cast<std::int8_t>(qcode(rng));
            std::vector<std::int32_t> y0(count);
            for (auto& v : y0) v = start(rng);
            std::vector<std::int64_t> want(y0.begin(), y0.end());
            for (std::size_t n = 0; n < count; ++n) {
                for (std::size_t r = 0; r < rows; ++r) {
                    for (std::size_t t = 0; t < 4; ++t) want[n] += std::int64_t{q[4 * r + t]} * ptrs[r][4 * n + t];
                }
            }
            for (const simd::Int8Kernels* k : ks) {
                std::vector<std::int32_t> y = y0;
                k->s8_dot4_rows(q.data(), ptrs.data(), rows, count, y.data());
                for (std::size_t n = 0; n < count; ++n) {
                    ASSERT_EQ(y[n], want[n]) << simd::to_string(k->level) << (k->vnni ? " vnni" : "") << " count "
                                             << count << " rows " << rows << " n " << n;
                }
            }
        }
    }
    // Extreme codes: -128 documents against +-127 queries over 1,000 rows stay exact.
    const std::size_t rows = 1000, count = 37;
    const std::vector<std::int8_t> lo(4 * count, -128);
    std::vector<const std::int8_t*> ptrs(rows, lo.data());
    for (std::int8_t v : {std::int8_t{127}, std::int8_t{-127}}) {
        const std::vector<std::int8_t> q(4 * rows, v);
        for (const simd::Int8Kernels* k : ks) {
            std::vector<std::int32_t> y(count, 0);
            k->s8_dot4_rows(q.data(), ptrs.data(), rows, count, y.data());
            for (std::size_t n = 0; n < count; ++n) ASSERT_EQ(y[n], -128 * 4 * 1000 * std::int32_t{v});
        }
    }
}

TEST(Int8Kernels, ExtremeCodesAtTheDimensionLimitDoNotOverflow) {
    constexpr std::size_t d = 65536;
    const std::vector<std::int8_t> lo(d, -128), hi(d, 127);
    for (const simd::Int8Kernels* k : levels()) {
        EXPECT_EQ(k->s8_dot(lo.data(), lo.data(), d), std::int32_t{1} << 30) << simd::to_string(k->level);
        EXPECT_EQ(k->s8_dot(lo.data(), hi.data(), d), -128 * 127 * 65536) << simd::to_string(k->level);
        EXPECT_EQ(k->s8_dot(hi.data(), hi.data(), d), 127 * 127 * 65536) << simd::to_string(k->level);
        float out = 0.0f;
        const float one = 1.0f;
        k->s8_maxsim(lo.data(), 1, hi.data(), &one, 1, d, &out);
        EXPECT_EQ(out, static_cast<float>(-128 * 127 * 65536));
        if (k->s8_maxsim_t != nullptr) {
            std::vector<std::int8_t> qt(d / 4 * 16 * 4, 0);
            for (std::size_t kk = 0; kk < d; ++kk) qt[(kk / 4) * 64 + kk % 4] = -128;  // lane 0
            std::vector<float> lanes(16);
            k->s8_maxsim_t(qt.data(), 16, hi.data(), &one, 1, d, lanes.data());
            EXPECT_EQ(lanes[0], static_cast<float>(-128 * 127 * 65536)) << simd::to_string(k->level);
            EXPECT_EQ(lanes[1], 0.0f);
        }
    }
}

struct Fixture {
    Matrix<float> vocab = testdata::vocabulary(600, 48, 12, 13);
    std::vector<Matrix<float>> docs = testdata::sets(vocab, 12, 600, 0, 40, 14);
    std::vector<Matrix<float>> queries = testdata::sets(vocab, 12, 25, 1, 12, 15);
};

// sum_i qs_i * max_j ds_j * <qc_i, dc_j> in double from the codes alone (independent of the kernels).
double int8_reference(const Int8Query& q, const TokenStore& s, std::size_t doc) {
    double total = 0;
    for (std::size_t i = 0; i < q.rows; ++i) {
        double best = -1e300;
        for (std::size_t j = 0; j < s.tokens(doc); ++j) {
            const double v = static_cast<double>(ref_dot(&q.codes[i * q.dim], s.int8_codes(doc) + j * q.dim, q.dim)) *
                             s.int8_scales(doc)[j];
            best = std::max(best, v);
        }
        total += best * q.scales[i];
    }
    return total;
}

TEST(Int8MaxSim, QueryQuantisationIsTheStoreRule) {
    Fixture f;
    Int8Query q;
    quantize_query(f.queries[0].view(), q);
    TokenStore s = testdata::store({f.queries[0]}, 48, TokenCodec::kInt8);
    ASSERT_EQ(q.rows, f.queries[0].rows);
    for (std::size_t i = 0; i < q.rows; ++i) {
        EXPECT_EQ(q.scales[i], s.int8_scales(0)[i]);
        for (std::size_t j = 0; j < 48; ++j) EXPECT_EQ(q.codes[i * 48 + j], s.int8_codes(0)[i * 48 + j]);
    }
}

// |MaxSim_int8 - MaxSim| <= sum_i max_j (qs_i / 2 * |p^_j|_1 + ds_j / 2 * |q_i|_1): each decoded value
// is within half a step of the original, so each pair's product moves by at most that, and so does the
// maximum over j.
TEST(Int8MaxSim, EqualsReferenceAndDriftsFromFloatWithinTheQuantisationBound) {
    Fixture f;
    TokenStore s8 = testdata::store(f.docs, 48, TokenCodec::kInt8);
    MaxSimScratch scratch;
    double drift = 0, bound_sum = 0, magnitude = 0;
    std::size_t pairs = 0;
    std::vector<float> rows;
    for (const auto& q : f.queries) {
        Int8Query iq;
        quantize_query(q.view(), iq);
        std::vector<float> maxima(q.rows);
        for (std::size_t d = 0; d < f.docs.size(); ++d) {
            if (s8.tokens(d) == 0) continue;
            const float got = maxsim_int8(iq, s8.int8_codes(d), s8.int8_scales(d), s8.tokens(d), maxima.data());
            const double ref = int8_reference(iq, s8, d);
            ASSERT_NEAR(got, ref, 1e-5 * (1 + std::abs(ref)));
            const double exact = testdata::chamfer_reference(q, f.docs[d].values.data(), f.docs[d].rows);
            rows.resize(s8.tokens(d) * 48);
            s8.decode(d, rows.data());
            double bound = 1e-5;
            for (std::size_t i = 0; i < q.rows; ++i) {
                double q1 = 0;
                for (std::size_t c = 0; c < 48; ++c) q1 += std::abs(q.row_ptr(i)[c]);
                double worst = 0;
                for (std::size_t j = 0; j < s8.tokens(d); ++j) {
                    double p1 = 0;
                    for (std::size_t c = 0; c < 48; ++c) p1 += std::abs(rows[j * 48 + c]);
                    worst = std::max(worst, iq.scales[i] / 2 * p1 + s8.int8_scales(d)[j] / 2 * q1);
                }
                bound += worst;
            }
            ASSERT_LE(std::abs(got - exact), bound) << "doc " << d;
            drift += std::abs(got - exact);
            bound_sum += bound;
            magnitude += std::abs(exact);
            ++pairs;
        }
    }
    ASSERT_GT(pairs, 10000u);
    // Rounding errors mostly cancel: the mean drift is a small fraction of the worst-case bound and
    // well under 1% of the score.
    std::printf("[ info ] int8 MaxSim drift: mean |int8 - float| %.5f, mean bound %.5f, mean |score| %.3f\n",
                drift / pairs, bound_sum / pairs, magnitude / pairs);
    EXPECT_LT(drift / pairs, 0.25 * bound_sum / pairs);
    EXPECT_LT(drift / magnitude, 0.005);
}

// The reference ranking of an int8 store, from the codes in double.
std::vector<std::pair<double, std::uint32_t>> int8_brute_force(const TokenStore& s, const Matrix<float>& q) {
    Int8Query iq;
    quantize_query(q.view(), iq);
    std::vector<std::pair<double, std::uint32_t>> all;
    for (std::uint32_t d = 0; d < s.size(); ++d) {
        if (s.tokens(d) > 0) all.emplace_back(int8_reference(iq, s, d), d);
    }
    std::sort(all.begin(), all.end(),
              [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    return all;
}

TEST(Int8MaxSim, ExactSearchAndRerankEqualBruteForceOverCodes) {
    Fixture f;
    TokenStore s8 = testdata::store(f.docs, 48, TokenCodec::kInt8);
    MaxSimScratch scratch;
    std::size_t same = 0;
    for (const auto& q : f.queries) {
        const auto ref = int8_brute_force(s8, q);
        const auto got = exact_search(s8, q.view(), 10, scratch);
        ASSERT_EQ(got.size(), 10u);
        for (std::size_t j = 0; j < 10; ++j) {
            EXPECT_NEAR(got[j].score, ref[j].first, 1e-5 * (1 + std::abs(ref[j].first)));
            if (got[j].doc == ref[j].second) {
                ++same;
            } else {
                ASSERT_NEAR(ref[j].first, got[j].score, 1e-5) << "rank " << j;  // a float tie
            }
        }
        // Re-ranking any candidate set gives the same scores as the exact search (one kernel).
        std::vector<std::uint32_t> cand;
        for (std::size_t j = 0; j < 40; ++j) cand.push_back(ref[j].second);
        std::reverse(cand.begin(), cand.end());
        const auto rr = rerank(s8, q.view(), cand, 10, scratch);
        ASSERT_EQ(rr.size(), 10u);
        for (std::size_t j = 0; j < 10; ++j) {
            EXPECT_EQ(rr[j].doc, got[j].doc);
            EXPECT_EQ(rr[j].score, got[j].score);
        }
    }
    EXPECT_GE(same, 245u);
}

TEST(Int8MaxSim, Int8TopTenMostlyAgreesWithFloat) {
    Fixture f;
    TokenStore s32 = testdata::store(f.docs, 48, TokenCodec::kFloat32);
    TokenStore s8 = testdata::store(f.docs, 48, TokenCodec::kInt8);
    MaxSimScratch scratch;
    std::size_t hit = 0, total = 0;
    for (const auto& q : f.queries) {
        const auto a = exact_search(s32, q.view(), 10, scratch);
        const auto b = exact_search(s8, q.view(), 10, scratch);
        for (const Hit& x : a) {
            for (const Hit& y : b) hit += x.doc == y.doc;
        }
        total += a.size();
    }
    const double recall = static_cast<double>(hit) / static_cast<double>(total);
    std::printf("[ info ] int8 exact top-10 recall against float32 exact: %.3f\n", recall);
    EXPECT_GE(recall, 0.95);
}

// Files whose CRC is valid but whose int8 sections are not: written section by section.
TEST(Int8MaxSim, Int8SectionsAreValidatedBeyondTheChecksum) {
    testing::TempDir dir;
    const std::string path = dir.file("bad.mvts");
    struct Case {
        const char* what;
        std::vector<std::uint64_t> offsets;
        std::vector<float> scales;
        std::size_t codes;
    };
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Case cases[] = {
        {"nan scale", {0, 2}, {0.1f, nan}, 8},
        {"negative scale", {0, 2}, {-0.1f, 0.1f}, 8},
        {"infinite scale", {0, 1, 2}, {0.1f, std::numeric_limits<float>::infinity()}, 8},
        {"scale count", {0, 2}, {0.1f}, 8},
        {"code count", {0, 2}, {0.1f, 0.1f}, 7},
        {"offsets past the rows", {0, 3}, {0.1f, 0.1f}, 8},
        {"offsets not monotone", {0, 2, 1, 2}, {0.1f, 0.1f}, 8},
    };
    for (const Case& c : cases) {
        auto w = storage::FileWriter::create(path, kTokenStoreFileKind, TokenStore::kFormatVersion);
        ASSERT_TRUE(w.ok());
        ASSERT_TRUE(w->write_pod<std::uint32_t>(1).ok());  // int8
        ASSERT_TRUE(w->write_pod<std::uint64_t>(4).ok());  // dim
        ASSERT_TRUE(storage::write_buffer(*w, std::span<const std::uint64_t>(c.offsets)).ok());
        ASSERT_TRUE(storage::write_buffer(*w, std::span<const float>(c.scales)).ok());
        const std::vector<std::int8_t> codes(c.codes, 3);
        ASSERT_TRUE(storage::write_buffer(*w, std::span<const std::int8_t>(codes)).ok());
        ASSERT_TRUE(w->finish().ok());
        auto o = TokenStore::open(path);
        ASSERT_FALSE(o.ok()) << c.what;
        EXPECT_EQ(o.error().code(), ErrorCode::kDataLoss) << c.what << ": " << o.error().message();
    }
}

}  // namespace
}  // namespace quiver::multivector
