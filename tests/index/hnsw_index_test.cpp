#include "quiver/index/hnsw_index.h"

#include <gtest/gtest.h>

#include <set>

#include "index/index_testing.h"
#include "quiver/index/flat_index.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

using testing::brute_force;
using testing::recall_at_k;
using testing::result_labels;

class HnswMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(HnswMetricTest, RecallFloorOnClusteredData) {
    const Metric metric = GetParam();
    auto base = testing::clustered_matrix(5000, 32, 50, 11);
    auto queries = testing::clustered_matrix(100, 32, 50, 12);
    auto idx = *HnswIndex::create(32, metric, {.M = 16, .ef_construction = 100, .threads = 2});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    EXPECT_EQ(idx->info().size, 5000u);
    const auto truth = brute_force(base, queries, 10, metric);
    // Maximum inner product is not a metric (a vector need not be its own nearest neighbour), so
    // graph search needs a wider beam for the same recall, as in hnswlib.
    const std::size_t ef = metric == Metric::kInnerProduct ? 300 : 100;
    auto r = idx->search(queries, {.k = 10, .ef = ef, .threads = 2});
    ASSERT_TRUE(r);
    const double recall = recall_at_k(result_labels(*r), truth, 10);
    EXPECT_GE(recall, 0.95) << simd::to_string(metric);
    // Results sorted nearest first.
    for (std::size_t q = 0; q < r->num_queries; ++q) {
        for (std::size_t j = 1; j < r->count(q); ++j) EXPECT_LE(r->distance(q, j - 1), r->distance(q, j));
    }
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, HnswMetricTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine));

TEST(HnswIndex, RecallFloorOnRandomData) {
    auto base = testing::random_matrix(10000, 24, 5);
    auto queries = testing::random_matrix(100, 24, 6);
    auto idx = *HnswIndex::create(24, Metric::kL2, {.M = 16, .ef_construction = 200, .threads = 2});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    auto flat = *FlatIndex::create(24, Metric::kL2);
    ASSERT_TRUE(flat->add(base, sequential_labels(base.rows)).ok());
    auto truth = result_labels(*flat->search(queries, {.k = 10}));
    auto r = *idx->search(queries, {.k = 10, .ef = 200});
    EXPECT_GE(recall_at_k(result_labels(r), truth, 10), 0.95);
    // Higher ef never hurts much: recall grows with ef.
    auto low = *idx->search(queries, {.k = 10, .ef = 10});
    EXPECT_LE(recall_at_k(result_labels(low), truth, 10), recall_at_k(result_labels(r), truth, 10) + 1e-9);
}

TEST(HnswIndex, IncrementalAddsMatchOneShotQuality) {
    auto base = testing::clustered_matrix(4000, 16, 20, 21);
    auto queries = testing::clustered_matrix(50, 16, 20, 22);
    auto idx = *HnswIndex::create(16, Metric::kL2, {.M = 12, .ef_construction = 100, .threads = 2});
    for (std::size_t b = 0; b < 4; ++b) {
        auto labels = sequential_labels(1000, b * 1000);
        ASSERT_TRUE(idx->add(base.view().slice(b * 1000, 1000), labels).ok());
    }
    const auto truth = brute_force(base, queries, 10, Metric::kL2);
    auto r = *idx->search(queries, {.k = 10, .ef = 100});
    EXPECT_GE(recall_at_k(result_labels(r), truth, 10), 0.95);
}

TEST(HnswIndex, DeletedLabelsAreNeverReturned) {
    auto base = testing::clustered_matrix(3000, 16, 30, 31);
    auto idx = *HnswIndex::create(16, Metric::kL2, {.M = 16, .ef_construction = 100, .threads = 2});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    std::vector<Label> gone;
    std::vector<bool> skip(base.rows, false);
    for (std::size_t i = 0; i < base.rows; i += 3) {
        gone.push_back(Label{i});
        skip[i] = true;
    }
    EXPECT_EQ(*idx->remove(gone), gone.size());
    EXPECT_EQ(idx->info().size, base.rows - gone.size());
    // Query with the deleted vectors themselves: their own label is the nearest but must not appear.
    auto r = *idx->search(base, {.k = 10, .ef = 64});
    for (std::size_t q = 0; q < r.num_queries; ++q) {
        EXPECT_EQ(r.count(q), 10u);
        for (std::size_t j = 0; j < r.count(q); ++j) ASSERT_FALSE(skip[to_int(r.label(q, j))]) << q;
    }
    const auto truth = brute_force(base, base.view().slice(0, 200), 10, Metric::kL2, &skip);
    auto some = *idx->search(base.view().slice(0, 200), {.k = 10, .ef = 100});
    EXPECT_GE(recall_at_k(result_labels(some), truth, 10), 0.9);

    // Re-insert a deleted label with a new vector: it is found, once.
    auto fresh = testing::random_matrix(1, 16, 77);
    for (auto& v : fresh.values) v *= 10.0f;
    std::vector<Label> again = {Label{3}};
    ASSERT_TRUE(idx->add(fresh, again).ok());
    auto r2 = *idx->search(fresh, {.k = 5, .ef = 64});
    EXPECT_EQ(to_int(r2.label(0, 0)), 3u);
    std::set<std::uint64_t> seen;
    for (std::size_t j = 0; j < r2.count(0); ++j) EXPECT_TRUE(seen.insert(to_int(r2.label(0, j))).second);
    // Replacing a live label keeps exactly one copy.
    ASSERT_TRUE(idx->add(fresh, again).ok());
    auto r3 = *idx->search(fresh, {.k = 5, .ef = 64});
    std::size_t threes = 0;
    for (std::size_t j = 0; j < r3.count(0); ++j) threes += to_int(r3.label(0, j)) == 3u;
    EXPECT_EQ(threes, 1u);
}

TEST(HnswIndex, FilterRestrictsResults) {
    struct EvenOnly : LabelFilter {
        bool allows(Label l) const noexcept override { return to_int(l) % 2 == 0; }
    } even;
    auto base = testing::clustered_matrix(2000, 8, 10, 41);
    auto idx = *HnswIndex::create(8, Metric::kL2, {.M = 16, .ef_construction = 100});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    auto r = *idx->search(base.view().slice(0, 50), {.k = 10, .ef = 100, .filter = &even});
    for (std::size_t q = 0; q < 50; ++q) {
        EXPECT_EQ(r.count(q), 10u);
        for (std::size_t j = 0; j < r.count(q); ++j) EXPECT_EQ(to_int(r.label(q, j)) % 2, 0u);
    }
}

TEST(HnswIndex, RejectsBadInputAndHandlesEdgeCases) {
    EXPECT_FALSE(HnswIndex::create(0, Metric::kL2));
    EXPECT_FALSE(HnswIndex::create(8, Metric::kL2, {.M = 1}));
    auto idx = *HnswIndex::create(4, Metric::kL2);
    Matrix<float> q(1, 4);
    auto empty = idx->search(q, {.k = 5});
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->count(0), 0u);
    Matrix<float> bad(1, 5);
    EXPECT_FALSE(idx->add(bad, sequential_labels(1)).ok());
    Matrix<float> inf(1, 4);
    inf.values = {1, 2, INFINITY, 3};
    auto s = idx->add(inf, sequential_labels(1));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("infinite"), std::string::npos);
    // A single vector, then fewer vectors than k.
    Matrix<float> one(1, 4);
    one.values = {1, 2, 3, 4};
    ASSERT_TRUE(idx->add(one, sequential_labels(1)).ok());
    auto r = *idx->search(one, {.k = 5});
    EXPECT_EQ(r.count(0), 1u);
    EXPECT_FALSE(idx->search(bad, {.k = 1}));
}

}  // namespace
}  // namespace quiver::index
