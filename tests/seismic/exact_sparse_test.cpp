#include "quiver/sparse/exact_sparse.h"

#include <gtest/gtest.h>

#include <random>

#include "quiver/sparse/synthetic.h"
#include "testing/testing.h"

namespace quiver::sparse {
namespace {

// Random canonical vectors: `vocab` ids, nnz in [lo, hi], weights log-normal.
SparseVector random_vector(std::mt19937_64& rng, std::uint32_t vocab, std::uint32_t lo, std::uint32_t hi) {
    std::uniform_int_distribution<std::uint32_t> nnz(lo, hi), term(0, vocab - 1);
    std::lognormal_distribution<float> w(0.0f, 1.0f);
    SparseVector v;
    const std::uint32_t n = nnz(rng);
    std::vector<char> used(vocab, 0);
    while (v.size() < n) {
        const std::uint32_t t = term(rng);
        if (used[t]) continue;
        used[t] = 1;
        v.terms.push_back(t);
        v.weights.push_back(w(rng));
    }
    EXPECT_TRUE(canonicalize(v, "random"));
    return v;
}

SparseCollection random_collection(std::size_t n, std::uint32_t vocab, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    SparseCollection c;
    c.vocab = Vocabulary::integer(vocab);
    for (std::size_t d = 0; d < n; ++d) c.append_canonical(std::to_string(d), random_vector(rng, vocab, 0, 40).view());
    return c;
}

TEST(ExactSparse, EqualsBruteForceOnRandomCollections) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        const SparseCollection c = random_collection(3000, 300 + 200 * static_cast<std::uint32_t>(seed), seed);
        auto ix = ExactSparseIndex::build(c);
        ASSERT_TRUE(ix) << ix.error().to_string();
        std::mt19937_64 rng(seed + 100);
        for (int qi = 0; qi < 60; ++qi) {
            const SparseVector q = random_vector(rng, c.dim(), 1, 30);
            for (std::size_t k : {1u, 10u, 100u}) {
                const auto got = ix->search(q.view(), k);
                const auto want = brute_force_top_k(c, q.view(), k);
                ASSERT_EQ(got.size(), want.size()) << "seed " << seed << " query " << qi << " k " << k;
                for (std::size_t i = 0; i < got.size(); ++i) {
                    EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, want[i].score));
                    if (i + 1 < want.size() && want[i].score - want[i + 1].score > 1e-3f &&
                        (i == 0 || want[i - 1].score - want[i].score > 1e-3f)) {
                        EXPECT_EQ(got[i].doc, want[i].doc) << "rank " << i;  // unambiguous ranks match exactly
                    }
                }
            }
        }
    }
}

// On SPLADE-like data (the synthetic generator) the walk skips intervals by the essential lists'
// block bounds and scores a small share of the matching documents, and stays equal to brute force.
TEST(ExactSparse, BlockMaxOnEssentialListsIsExactAndPrunes) {
    SyntheticParams p;
    p.docs = 6000;
    p.queries = 40;
    p.threads = 2;
    auto data = generate_synthetic(p);
    ASSERT_TRUE(data);
    auto ix = ExactSparseIndex::build(data->docs);
    ASSERT_TRUE(ix);
    TopKStats st;
    std::size_t matching = 0;
    for (const SparseVector& q : data->queries.vectors) {
        const auto got = ix->search(q.view(), 10, &st);
        const auto want = brute_force_top_k(data->docs, q.view(), 10);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, want[i].score));
            if (i + 1 < want.size() && want[i].score - want[i + 1].score > 1e-3f &&
                (i == 0 || want[i - 1].score - want[i].score > 1e-3f)) {
                EXPECT_EQ(got[i].doc, want[i].doc) << "rank " << i;
            }
        }
        matching += brute_force_top_k(data->docs, q.view(), data->docs.size()).size();
    }
    EXPECT_GT(st.blocks_skipped, 0u);
    EXPECT_LT(static_cast<double>(st.docs_scored), 0.5 * static_cast<double>(matching));
    std::printf("scored %llu of %zu matching documents, %llu block skips\n",
                static_cast<unsigned long long>(st.docs_scored), matching,
                static_cast<unsigned long long>(st.blocks_skipped));
}

TEST(ExactSparse, QuantizedWeightsStayClose) {
    const SparseCollection c = random_collection(2000, 400, 9);
    auto f32 = ExactSparseIndex::build(c, WeightType::kFloat32);
    auto u8 = ExactSparseIndex::build(c, WeightType::kQuantized8);
    ASSERT_TRUE(f32 && u8);
    EXPECT_LT(u8->bytes(), f32->bytes());
    std::mt19937_64 rng(5);
    double overlap = 0;
    const int nq = 50;
    for (int qi = 0; qi < nq; ++qi) {
        const SparseVector q = random_vector(rng, c.dim(), 5, 30);
        const auto a = f32->search(q.view(), 10), b = u8->search(q.view(), 10);
        for (const auto& x : a)
            for (const auto& y : b) overlap += x.doc == y.doc ? 1 : 0;
    }
    EXPECT_GE(overlap / (10.0 * nq), 0.9);
}

TEST(ExactSparse, EmptyAndUnknownQueries) {
    const SparseCollection c = random_collection(100, 50, 4);
    auto ix = ExactSparseIndex::build(c);
    ASSERT_TRUE(ix);
    EXPECT_TRUE(ix->search(SparseVectorView{}, 10).empty());
    SparseVector unknown{{1000, 2000}, {1.0f, 1.0f}};  // ids beyond the vocabulary match nothing
    EXPECT_TRUE(ix->search(unknown.view(), 10).empty());
}

TEST(ExactSparse, SaveOpenRoundTripAndCorruption) {
    testing::TempDir dir;
    const SparseCollection c = random_collection(500, 100, 6);
    auto ix = ExactSparseIndex::build(c);
    ASSERT_TRUE(ix);
    const std::string path = dir.file("x.spex");
    ASSERT_TRUE(ix->save(path));
    auto back = ExactSparseIndex::open(path);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->size(), c.size());
    EXPECT_EQ(back->doc_id(17), "17");
    std::mt19937_64 rng(8);
    for (int qi = 0; qi < 20; ++qi) {
        const SparseVector q = random_vector(rng, c.dim(), 1, 10);
        const auto a = ix->search(q.view(), 10), b = back->search(q.view(), 10);
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].doc, b[i].doc);
    }
    std::string bytes = testing::read_bytes(path);
    bytes[bytes.size() / 2] ^= 0x40;
    testing::write_bytes(path, bytes);
    auto bad = ExactSparseIndex::open(path);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
}

}  // namespace
}  // namespace quiver::sparse
