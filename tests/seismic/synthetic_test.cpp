#include "quiver/sparse/synthetic.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace quiver::sparse {
namespace {

TEST(Synthetic, StatisticsMatchTheDocumentedRanges) {
    SyntheticParams p;
    p.docs = 3000;
    p.queries = 100;
    auto data = generate_synthetic(p);
    ASSERT_TRUE(data) << data.error().to_string();
    const SparseStats d = compute_stats(data->docs), q = compute_stats(data->queries.vectors);
    EXPECT_EQ(d.vectors, 3000u);
    EXPECT_GE(d.min_nnz, 120);
    EXPECT_LE(d.max_nnz, 200);
    EXPECT_NEAR(d.mean_nnz, 160, 5);
    EXPECT_GE(q.min_nnz, 20);
    EXPECT_LE(q.max_nnz, 50);
    EXPECT_EQ(data->docs.dim(), 30522u);
    for (float w : data->docs.weights) ASSERT_GT(w, 0.0f);
    // Concentration of importance: the top 10% of components hold well over 10% of the mass.
    EXPECT_GT(d.top10pct_mass, 0.25);
    // Queries come from the topic model: the largest-weight term of every query is a term of its
    // primary or secondary topic, and each query's best document shares terms with it. No query copies
    // a document's head: of a query's 8 largest terms, fewer than two thirds on average are among the
    // 10 largest terms of the document (of 3,000) that shares most of them.
    ASSERT_EQ(data->query_topic.size(), 100u);
    double shared = 0;
    for (std::size_t i = 0; i < data->queries.size(); ++i) {
        SparseVectorView qv = data->queries.vectors[i].view();
        std::size_t top = 0;
        for (std::size_t j = 1; j < qv.size(); ++j)
            if (qv.weights[j] > qv.weights[top]) top = j;
        std::size_t in_topics = 0;
        for (const auto& t : data->topics) in_topics += std::find(t.begin(), t.end(), qv.terms[top]) != t.end();
        EXPECT_GT(in_topics, 0u) << i;
        std::vector<std::pair<float, TermId>> qh;
        for (std::size_t j = 0; j < qv.size(); ++j) qh.emplace_back(qv.weights[j], qv.terms[j]);
        std::sort(qh.begin(), qh.end(), std::greater<>());
        qh.resize(std::min<std::size_t>(8, qh.size()));
        std::size_t best = 0;
        float best_dot = 0;
        for (std::size_t doc = 0; doc < data->docs.size(); ++doc) {
            SparseVectorView dv = data->docs.row(doc);
            best_dot = std::max(best_dot, dot(qv, dv));
            std::vector<std::pair<float, TermId>> dh;
            for (std::size_t j = 0; j < dv.size(); ++j) dh.emplace_back(dv.weights[j], dv.terms[j]);
            std::partial_sort(dh.begin(), dh.begin() + 10, dh.end(), std::greater<>());
            std::size_t common = 0;
            for (const auto& [w, t] : qh)
                for (std::size_t j = 0; j < 10; ++j) common += dh[j].second == t;
            best = std::max(best, common);
        }
        EXPECT_GT(best_dot, 0.0f) << i;
        shared += static_cast<double>(best) / static_cast<double>(qh.size()) / 100.0;
    }
    EXPECT_LT(shared, 0.65);  // 0.57 for this seed: the best of 150 same-topic documents
}

TEST(Synthetic, DeterministicAcrossThreadCounts) {
    SyntheticParams p;
    p.docs = 500;
    p.queries = 20;
    p.threads = 1;
    auto a = generate_synthetic(p);
    p.threads = 2;
    auto b = generate_synthetic(p);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->docs.terms, b->docs.terms);
    EXPECT_EQ(a->docs.weights, b->docs.weights);
    EXPECT_EQ(a->queries.vectors[3].terms, b->queries.vectors[3].terms);
}

TEST(Synthetic, RejectsBadParameters) {
    SyntheticParams p;
    p.min_doc_nnz = 300;
    p.max_doc_nnz = 200;
    EXPECT_FALSE(generate_synthetic(p));
    p = SyntheticParams{};
    p.docs = 0;
    EXPECT_FALSE(generate_synthetic(p));
}

}  // namespace
}  // namespace quiver::sparse
