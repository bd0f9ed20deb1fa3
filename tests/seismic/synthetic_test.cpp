#include "quiver/sparse/synthetic.h"

#include <gtest/gtest.h>

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
    // Queries share terms with the document they were drawn from.
    for (std::size_t i = 0; i < data->queries.size(); ++i)
        EXPECT_GT(dot(data->queries.vectors[i].view(), data->docs.row(data->query_target[i])), 0.0f);
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
