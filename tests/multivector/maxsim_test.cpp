// MaxSim equals brute force: the kernel, the tiled exact search, re-ranking (float32 stores).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "mv_data.h"
#include "quiver/multivector/maxsim.h"

namespace quiver::multivector {
namespace {

struct Fixture {
    Matrix<float> vocab = testdata::vocabulary(600, 32, 12, 3);
    std::vector<Matrix<float>> docs = testdata::sets(vocab, 12, 700, 0, 40, 4);
    std::vector<Matrix<float>> queries = testdata::sets(vocab, 12, 25, 1, 12, 5);
};

// The reference ranking: every document scored in double, sorted by (score desc, doc asc).
std::vector<std::pair<double, std::uint32_t>> brute_force(const std::vector<Matrix<float>>& docs, const TokenStore& s,
                                                          const Matrix<float>& q) {
    std::vector<std::pair<double, std::uint32_t>> all;
    std::vector<float> rows;
    for (std::uint32_t d = 0; d < docs.size(); ++d) {
        if (s.tokens(d) == 0) continue;
        rows.resize(s.tokens(d) * s.dim());
        s.decode(d, rows.data());
        all.emplace_back(testdata::chamfer_reference(q, rows.data(), s.tokens(d)), d);
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    return all;
}

TEST(MaxSim, KernelEqualsReference) {
    Fixture f;
    for (std::size_t qi = 0; qi < f.queries.size(); ++qi) {
        for (std::size_t d = 0; d < 50; ++d) {
            if (f.docs[d].rows == 0) continue;
            const double ref = testdata::chamfer_reference(f.queries[qi], f.docs[d].values.data(), f.docs[d].rows);
            EXPECT_NEAR(maxsim(f.queries[qi].view(), f.docs[d].values.data(), f.docs[d].rows), ref, 1e-5 * (1 + std::abs(ref)));
        }
    }
}

TEST(MaxSim, ExactSearchEqualsBruteForce) {
    Fixture f;
    // int8 stores have their own kernel and reference (int8_maxsim_test.cpp).
    for (TokenCodec codec : {TokenCodec::kFloat32}) {
        TokenStore s = testdata::store(f.docs, 32, codec);
        MaxSimScratch scratch;
        std::size_t compared = 0;
        for (const auto& q : f.queries) {
            const auto ref = brute_force(f.docs, s, q);
            const auto got = exact_search(s, q.view(), 10, scratch);
            ASSERT_EQ(got.size(), 10u);
            for (std::size_t j = 0; j < 10; ++j) {
                // Identical documents unless two reference scores tie within float noise.
                if (got[j].doc != ref[j].second) {
                    ASSERT_NEAR(ref[j].first, got[j].score, 1e-4) << "rank " << j;
                } else {
                    ++compared;
                }
                EXPECT_NEAR(got[j].score, ref[j].first, 1e-4 * (1 + std::abs(ref[j].first)));
            }
            for (std::size_t j = 1; j < got.size(); ++j) EXPECT_GE(got[j - 1].score, got[j].score);
        }
        EXPECT_GE(compared, 245u) << to_string(codec);  // 250 ranks; float ties may swap a pair or two
    }
}

TEST(MaxSim, EmptyDocumentsAreNeverReturnedAndKIsCapped) {
    std::vector<Matrix<float>> docs(5);
    docs[1] = testdata::random_unit(3, 8, 1);
    docs[3] = testdata::random_unit(2, 8, 2);
    TokenStore s = testdata::store(docs, 8, TokenCodec::kFloat32);
    MaxSimScratch scratch;
    Matrix<float> q = testdata::random_unit(2, 8, 3);
    auto got = exact_search(s, q.view(), 10, scratch);
    ASSERT_EQ(got.size(), 2u);
    std::vector<std::uint32_t> ids{got[0].doc, got[1].doc};
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::uint32_t>{1, 3}));
    EXPECT_TRUE(exact_search(s, q.view(), 0, scratch).empty());
    EXPECT_TRUE(exact_search(s, MatrixView<float>{q.values.data(), 0, 8}, 3, scratch).empty());
}

TEST(MaxSim, RerankScoresCandidatesOnceEach) {
    Fixture f;
    TokenStore s = testdata::store(f.docs, 32, TokenCodec::kFloat32);
    MaxSimScratch scratch;
    const auto& q = f.queries[0];
    const auto ref = brute_force(f.docs, s, q);
    // The true top 5 among duplicates, out-of-range numbers and other documents.
    std::vector<std::uint32_t> cand{ref[4].second, 999999, ref[0].second, ref[0].second, ref[3].second, ref[2].second,
                                    ref[1].second, ref[50].second, ref[1].second};
    auto got = rerank(s, q.view(), cand, 5, scratch);
    ASSERT_EQ(got.size(), 5u);
    for (std::size_t j = 0; j < 5; ++j) EXPECT_EQ(got[j].doc, ref[j].second);
    auto all = rerank(s, q.view(), cand, 100, scratch);
    EXPECT_EQ(all.size(), 6u);
}

// Hundreds of candidates go through GEMM tiles, then the kernel re-scores the survivors: the result
// is exactly what the kernel alone gives (the same documents, the same float scores), with duplicate,
// out-of-range and empty documents among the candidates, and a tile boundary inside the list.
TEST(MaxSim, GemmRerankEqualsTheKernelOnEveryCandidate) {
    Fixture f;
    TokenStore s = testdata::store(f.docs, 32, TokenCodec::kFloat32);
    MaxSimScratch scratch;
    std::size_t empties = 0;
    for (std::uint32_t d = 0; d < s.size(); ++d) empties += s.tokens(d) == 0 ? 1 : 0;
    ASSERT_GT(empties, 0u);  // the fixture has empty documents (0..40 tokens)
    for (std::size_t qi = 0; qi < f.queries.size(); ++qi) {
        const auto& q = f.queries[qi];
        std::vector<std::uint32_t> cand;
        for (std::uint32_t d = static_cast<std::uint32_t>(qi); d < s.size(); d += 2) cand.push_back(d);
        cand.push_back(cand[3]);
        cand.push_back(7777777);
        for (std::size_t k : {1u, 10u, 40u}) {
            // The reference: every candidate scored by the kernel, sorted by (score desc, doc asc).
            std::vector<Hit> want;
            std::vector<std::uint32_t> seen;
            for (const std::uint32_t d : cand) {
                if (d >= s.size() || s.tokens(d) == 0 || std::find(seen.begin(), seen.end(), d) != seen.end()) continue;
                seen.push_back(d);
                want.push_back({d, maxsim(q.view(), s.float_rows(d), s.tokens(d))});
            }
            std::sort(want.begin(), want.end(),
                      [](const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.doc < b.doc); });
            want.resize(std::min(want.size(), k));
            const auto got = rerank(s, q.view(), cand, k, scratch);
            ASSERT_EQ(got.size(), want.size()) << qi << " k " << k;
            for (std::size_t j = 0; j < got.size(); ++j) {
                EXPECT_EQ(got[j].doc, want[j].doc) << qi << " k " << k << " rank " << j;
                EXPECT_EQ(got[j].score, want[j].score) << qi << " k " << k << " rank " << j;
            }
        }
    }
}

}  // namespace
}  // namespace quiver::multivector
