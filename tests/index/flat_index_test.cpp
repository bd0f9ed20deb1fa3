#include "quiver/index/flat_index.h"

#include <gtest/gtest.h>

#include <cmath>

#include "index/index_testing.h"
#include "testing/testing.h"

namespace quiver::index {
namespace {

using testing::brute_force;
using testing::result_labels;

class FlatMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(FlatMetricTest, ScanAndBlasPathsEqualBruteForce) {
    const Metric metric = GetParam();
    auto base = testing::random_matrix(3000, 37, 1);
    auto queries = testing::random_matrix(40, 37, 2);
    auto idx = FlatIndex::create(37, metric);
    ASSERT_TRUE(idx);
    ASSERT_TRUE((*idx)->add(base, sequential_labels(base.rows)).ok());
    const auto truth = brute_force(base, queries, 10, metric);
    // 40 queries take the BLAS path; 5 take the SIMD scan path.
    for (std::size_t nq : {40u, 5u}) {
        for (std::size_t threads : {1u, 2u}) {
            auto r = (*idx)->search(queries.view().slice(0, nq), {.k = 10, .threads = threads});
            ASSERT_TRUE(r) << r.error().to_string();
            auto got = result_labels(*r);
            for (std::size_t q = 0; q < nq; ++q) EXPECT_EQ(got[q], truth[q]) << "query " << q;
            for (std::size_t q = 0; q < nq; ++q) {
                const double want = testing::reference_distance(queries.row_ptr(q), base.row_ptr(truth[q][0]), 37, metric);
                EXPECT_NEAR(r->distance(q, 0), want, 1e-4 * (1 + std::fabs(want)));
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, FlatMetricTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine));

// Every label divisible by 3 is filtered out.
class NotThrees final : public LabelFilter {
public:
    bool allows(Label label) const noexcept override { return to_int(label) % 3 != 0; }
};

// The batched path (fused GEMM filter) across base chunks, row blocks with short tails, query panels with
// 16- and 32-column ends, 1-3 threads, removed labels, a filter and duplicated vectors (exact ties, broken
// by lower label): always the brute-force top k, in order. (Run again at the lower SIMD levels by ctest:
// quiver_index_flat_scalar / _avx2.)
TEST_P(FlatMetricTest, BatchedSearchEqualsBruteForceAcrossChunksPanelsAndThreads) {
    const Metric metric = GetParam();
    const std::size_t dim = 100;
    auto base = testing::clustered_matrix(2500, dim, 20, 7);
    // Rows 2000.. repeat rows 0..: the same vector under two labels.
    for (std::size_t r = 2000; r < base.rows; ++r) {
        std::copy(base.row_ptr(r - 2000), base.row_ptr(r - 2000) + dim, base.values.begin() + static_cast<long>(r * dim));
    }
    auto queries = testing::clustered_matrix(100, dim, 20, 8);
    auto idx = *FlatIndex::create(dim, metric);
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    std::vector<bool> skip(base.rows, false);
    std::vector<Label> gone;
    for (std::size_t r = 5; r < base.rows; r += 97) {
        gone.push_back(Label{r});
        skip[r] = true;
    }
    ASSERT_EQ(*idx->remove(gone), gone.size());
    std::vector<bool> skip_filtered = skip;
    for (std::size_t r = 0; r < base.rows; r += 3) skip_filtered[r] = true;
    const NotThrees filter;
    for (const std::size_t k : {1u, 10u, 40u}) {
        const auto truth = brute_force(base, queries, k, metric, &skip);
        const auto truth_filtered = brute_force(base, queries, k, metric, &skip_filtered);
        for (const std::size_t nq : {16u, 33u, 100u}) {
            for (const std::size_t threads : {1u, 2u, 3u}) {
                for (const bool filtered : {false, true}) {
                    SearchParams p{.k = k, .threads = threads};
                    if (filtered) p.filter = &filter;
                    auto r = idx->search(queries.view().slice(0, nq), p);
                    ASSERT_TRUE(r) << r.error().to_string();
                    const auto got = result_labels(*r);
                    const auto& want = filtered ? truth_filtered : truth;
                    for (std::size_t q = 0; q < nq; ++q) {
                        ASSERT_EQ(got[q], want[q]) << "k " << k << " nq " << nq << " threads " << threads
                                                   << " filtered " << filtered << " query " << q;
                    }
                }
            }
        }
    }
}

TEST(FlatIndex, RemovedAndReplacedLabels) {
    auto base = testing::random_matrix(500, 16, 3);
    auto idx = *FlatIndex::create(16, Metric::kL2);
    ASSERT_TRUE(idx->add(base, sequential_labels(500)).ok());
    // Query with base rows: each finds itself first, until removed.
    std::vector<Label> gone = {Label{0}, Label{1}, Label{2}};
    EXPECT_EQ(*idx->remove(gone), 3u);
    EXPECT_EQ(*idx->remove(gone), 0u);
    EXPECT_EQ(idx->info().size, 497u);
    auto r = *idx->search(base.view().slice(0, 3), {.k = 500});
    for (std::size_t q = 0; q < 3; ++q) {
        EXPECT_EQ(r.count(q), 497u);
        for (std::size_t j = 0; j < r.count(q); ++j) EXPECT_GE(to_int(r.label(q, j)), 3u);
    }
    // Re-insert label 1 with a new vector: found again, with the new vector.
    auto fresh = testing::random_matrix(1, 16, 99);
    std::vector<Label> one = {Label{1}};
    ASSERT_TRUE(idx->add(fresh, one).ok());
    auto r2 = *idx->search(fresh, {.k = 1});
    EXPECT_EQ(to_int(r2.label(0, 0)), 1u);
    EXPECT_NEAR(r2.distance(0, 0), 0.0f, 1e-5);
}

TEST(FlatIndex, RejectsBadInput) {
    auto idx = *FlatIndex::create(4, Metric::kCosine);
    Matrix<float> wrong_dim(2, 3);
    auto s = idx->add(wrong_dim, sequential_labels(2));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("dimension 3"), std::string::npos);
    Matrix<float> nan(1, 4);
    nan.values = {1, NAN, 0, 0};
    s = idx->add(nan, sequential_labels(1));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("NaN"), std::string::npos);
    Matrix<float> zero(1, 4);
    s = idx->add(zero, sequential_labels(1));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("zero vector"), std::string::npos);
    Matrix<float> ok(1, 4);
    ok.values = {1, 0, 0, 0};
    EXPECT_FALSE(idx->add(ok, sequential_labels(2)).ok());  // count mismatch
    EXPECT_EQ(idx->info().size, 0u);                        // nothing half-added
    EXPECT_FALSE(idx->search(ok, {.k = 0}));
    EXPECT_FALSE(FlatIndex::create(0, Metric::kL2));
    // Empty index: empty rows, no crash.
    auto r = idx->search(ok, {.k = 3});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count(0), 0u);
}

}  // namespace
}  // namespace quiver::index
