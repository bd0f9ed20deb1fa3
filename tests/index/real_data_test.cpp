// Recall floors and exactness on the real data sets (skipped when ../shared/data is absent).
#include <gtest/gtest.h>

#include "index/index_testing.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

std::vector<std::vector<std::uint64_t>> truth_rows(const Matrix<std::int32_t>& gt, std::size_t k) {
    std::vector<std::vector<std::uint64_t>> out(gt.rows);
    for (std::size_t q = 0; q < gt.rows; ++q) {
        for (std::size_t j = 0; j < k; ++j) out[q].push_back(static_cast<std::uint64_t>(gt.row_ptr(q)[j]));
    }
    return out;
}

TEST(RealData, SiftHnswRecallAndFlatExactness) {
    QUIVER_REQUIRE_DATA(dir, "sift-5k-ngt");
    auto base = *storage::read_vectors(dir + "/base.fvecs");
    auto queries = *storage::read_vectors(dir + "/query.fvecs");
    auto gt = *storage::read_ivecs(dir + "/groundtruth_l2.ivecs");
    const auto truth = truth_rows(gt, 10);

    auto flat = *FlatIndex::create(128, Metric::kL2);
    ASSERT_TRUE(flat->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
    auto exact = testing::result_labels(*flat->search(queries.vectors, {.k = 10, .threads = 2}));
    EXPECT_GE(testing::recall_at_k(exact, truth, 10), 0.999);

    auto hnsw = *HnswIndex::create(128, Metric::kL2, {.M = 16, .ef_construction = 200, .threads = 2});
    ASSERT_TRUE(hnsw->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
    auto r = *hnsw->search(queries.vectors, {.k = 10, .ef = 64});
    EXPECT_GE(testing::recall_at_k(testing::result_labels(r), truth, 10), 0.97);
}

TEST(RealData, GloveCosineHnswRecallAndFlatExactness) {
    QUIVER_REQUIRE_DATA(dir, "glove-6b-100d");
    auto base = *storage::read_vectors(dir + "/base.fvecs", {.max_rows = 20000});
    auto queries = *storage::read_vectors(dir + "/query.fvecs", {.max_rows = 200});
    // The shipped ground truth covers the full 100k base; recompute for the 20k prefix.
    const auto truth = testing::brute_force(base.vectors, queries.vectors, 10, Metric::kCosine);
    auto flat = *FlatIndex::create(100, Metric::kCosine);
    ASSERT_TRUE(flat->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
    auto exact = testing::result_labels(*flat->search(queries.vectors, {.k = 10, .threads = 2}));
    EXPECT_EQ(exact, truth);

    auto hnsw = *HnswIndex::create(100, Metric::kCosine, {.M = 16, .ef_construction = 200, .threads = 2});
    ASSERT_TRUE(hnsw->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
    auto r = *hnsw->search(queries.vectors, {.k = 10, .ef = 200});
    EXPECT_GE(testing::recall_at_k(testing::result_labels(r), truth, 10), 0.95);
}

// HNSW walking SQ8 codes (batched integer walk, default float32 re-score) keeps the float32 graph's
// floors at the same ef: GloVe 20k slice (cosine) at ef 200 and SIFT 4,500 (L2) at ef 64.
TEST(RealData, Sq8HnswKeepsTheFloatFloors) {
    QUIVER_REQUIRE_DATA(glove, "glove-6b-100d");
    QUIVER_REQUIRE_DATA(sift, "sift-5k-ngt");
    HnswParams p{.M = 16, .ef_construction = 200, .threads = 2};
    p.codec = *CodecSpec::parse("sq8");
    {
        auto base = *storage::read_vectors(glove + "/base.fvecs", {.max_rows = 20000});
        auto queries = *storage::read_vectors(glove + "/query.fvecs", {.max_rows = 200});
        const auto truth = testing::brute_force(base.vectors, queries.vectors, 10, Metric::kCosine);
        auto hnsw = *HnswIndex::create(100, Metric::kCosine, p);
        ASSERT_TRUE(hnsw->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
        const double recall =
            testing::recall_at_k(testing::result_labels(*hnsw->search(queries.vectors, {.k = 10, .ef = 200})), truth, 10);
        std::printf("[ info ] GloVe-20k HNSW-SQ8 ef 200: recall@10 %.4f\n", recall);
        EXPECT_GE(recall, 0.95);
    }
    {
        auto base = *storage::read_vectors(sift + "/base.fvecs");
        auto queries = *storage::read_vectors(sift + "/query.fvecs");
        const auto truth = truth_rows(*storage::read_ivecs(sift + "/groundtruth_l2.ivecs"), 10);
        auto hnsw = *HnswIndex::create(128, Metric::kL2, p);
        ASSERT_TRUE(hnsw->add(base.vectors, sequential_labels(base.vectors.rows)).ok());
        const double recall =
            testing::recall_at_k(testing::result_labels(*hnsw->search(queries.vectors, {.k = 10, .ef = 64})), truth, 10);
        std::printf("[ info ] SIFT-4.5k HNSW-SQ8 ef 64: recall@10 %.4f\n", recall);
        EXPECT_GE(recall, 0.97);
    }
}

}  // namespace
}  // namespace quiver::index

namespace quiver::index {
namespace {

// Every live vector must be reachable: each GloVe-100k vector, searched with itself at ef 64,
// comes back at distance zero under its own label (exact duplicates may share rank 1, so the
// label is looked for among the hits tied with the first).
TEST(RealData, EveryGloveVectorIsItsOwnNearestNeighbour) {
    QUIVER_REQUIRE_DATA(dir, "glove-6b-100d");
    auto base = *storage::read_vectors(dir + "/base.fvecs");
    const std::size_t n = base.vectors.rows;
    ASSERT_EQ(n, 100000u);
    auto hnsw = *HnswIndex::create(100, Metric::kCosine, {.M = 16, .ef_construction = 200, .threads = 2});
    ASSERT_TRUE(hnsw->add(base.vectors, sequential_labels(n)).ok());
    EXPECT_EQ(hnsw->unreachable_count(), 0u);
    auto r = *hnsw->search(base.vectors, {.k = 10, .ef = 64, .threads = 2});
    std::size_t missing = 0;
    for (std::size_t q = 0; q < n; ++q) {
        bool found = false;
        for (std::size_t j = 0; j < 10 && !found; ++j) {
            if (r.distance(q, j) > r.distance(q, 0) + 1e-6f) break;
            found = to_int(r.label(q, j)) == q;
        }
        if (!found && ++missing <= 5) ADD_FAILURE() << "vector " << q << " is not its own nearest neighbour";
    }
    EXPECT_EQ(missing, 0u);
}

}  // namespace
}  // namespace quiver::index
