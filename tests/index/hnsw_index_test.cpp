#include "quiver/index/hnsw_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "index/hnsw/hnsw_graph.h"
#include "index/hnsw/scratch.h"
#include "index/index_testing.h"
#include "quiver/index/flat_index.h"
#include "quiver/simd/kernels.h"
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

// A one-thread add walks the graph without locks (the sorted-beam walk of queries; the checked walk
// once labels were replaced): the graph it builds is as good as a two-thread build's, for every
// metric, after a second batch that replaces labels (tombstoned nodes the walk must pass) and is large
// enough for the reachability check to run.
TEST(HnswIndex, OneThreadBuildWithoutLocksKeepsQuality) {
    auto base = testing::clustered_matrix(3000, 32, 30, 41);
    auto queries = testing::clustered_matrix(100, 32, 30, 42);
    for (const Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
        const std::size_t ef = metric == Metric::kInnerProduct ? 300 : 100;
        const auto truth = brute_force(base, queries, 10, metric);
        double recall[2] = {0, 0};
        for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
            auto idx = *HnswIndex::create(32, metric, {.M = 16, .ef_construction = 64, .threads = threads});
            // Rows 0..1499, then rows 1200..2999 under labels 1200..2999: 300 replaced (tombstones,
            // too few to compact), 1,500 new.
            ASSERT_TRUE(idx->add(base.view().slice(0, 1500), sequential_labels(1500)).ok());
            ASSERT_TRUE(idx->add(base.view().slice(1200, 1800), sequential_labels(1800, 1200)).ok());
            EXPECT_EQ(idx->info().size, 3000u);
            EXPECT_EQ(idx->slots(), 3300u);
            // (Inner product is not a metric: the narrow-search repairs can cut a node off again, with
            // one thread or two alike.)
            if (metric != Metric::kInnerProduct) {
                EXPECT_EQ(idx->unreachable_count(), 0u) << simd::to_string(metric) << " threads " << threads;
            }
            recall[threads - 1] = recall_at_k(result_labels(*idx->search(queries, {.k = 10, .ef = ef})), truth, 10);
        }
        EXPECT_GE(recall[0], metric == Metric::kInnerProduct ? 0.8 : 0.9) << simd::to_string(metric);
        EXPECT_GE(recall[0], recall[1] - 0.02) << simd::to_string(metric);
    }
}

// Two threads inserting a graph with no deleted node walk the sorted beam of queries, each link list
// read under its lock (sorted_walk in hnsw_build.cpp), not the two-heap walk: the graph is as good as
// a one-thread build's, and after the reachability check (whose self-searches stop once the node
// enters the beam, for L2 and cosine) every node is found by a narrow search for its own vector.
TEST(HnswIndex, TwoThreadBuildWalksTheSortedBeamAndEveryNodeFindsItself) {
    auto base = testing::clustered_matrix(4000, 32, 40, 51);
    auto queries = testing::clustered_matrix(100, 32, 40, 52);
    for (const Metric metric : {Metric::kL2, Metric::kCosine}) {
        const auto truth = brute_force(base, queries, 10, metric);
        double recall[2] = {0, 0};
        for (const std::size_t threads : {std::size_t{1}, std::size_t{2}}) {
            auto idx = *HnswIndex::create(32, metric, {.M = 16, .ef_construction = 64, .threads = threads});
            ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
            EXPECT_EQ(idx->unreachable_count(), 0u) << simd::to_string(metric) << " threads " << threads;
            // Every node's own vector at the check's beam width (max(32, 2M) = 32) finds it.
            auto self = idx->search(base, {.k = 32, .ef = 32, .threads = 2});
            ASSERT_TRUE(self);
            std::size_t missed = 0;
            for (std::size_t q = 0; q < base.rows; ++q) {
                bool found = false;
                for (std::size_t j = 0; j < self->count(q) && !found; ++j) found = self->label(q, j) == Label{q};
                missed += found ? 0 : 1;
            }
            EXPECT_EQ(missed, 0u) << simd::to_string(metric) << " threads " << threads;
            recall[threads - 1] = recall_at_k(result_labels(*idx->search(queries, {.k = 10, .ef = 100})), truth, 10);
        }
        EXPECT_GE(recall[1], 0.95) << simd::to_string(metric);
        EXPECT_GE(recall[1], recall[0] - 0.02) << simd::to_string(metric);
    }
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

// SearchParams::bound, the caller's bar (the best k of the segments walked before): nodes nearer than
// the bar are walked as without one; farther nodes only while they are among the nearest ef/2 + 1 the
// beam holds. So a bar beyond every distance changes nothing, and a bar that fewer than ef/2 + 1 nodes
// beat (another segment already holds results as good) narrows the walk to exactly the ef/2 + 1 walk.
// Exact figures of a one-thread (deterministic) build.
TEST(HnswIndex, ABoundNarrowsTheWalkToHalfItsBeam) {
    auto base = testing::random_matrix(5000, 32, 41);
    auto queries = testing::random_matrix(200, 32, 42);
    auto idx = *HnswIndex::create(32, Metric::kL2, {.M = 16, .ef_construction = 64, .threads = 1});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    auto flat = *FlatIndex::create(32, Metric::kL2);
    ASSERT_TRUE(flat->add(base, sequential_labels(base.rows)).ok());
    const auto exact = *flat->search(queries, {.k = 10});
    const auto truth = result_labels(exact);
    const auto full = result_labels(*idx->search(queries, {.k = 10, .ef = 64}));
    const auto narrow = result_labels(*idx->search(queries, {.k = 10, .ef = 33}));
    auto barred = [&](auto bound_of) {
        std::vector<std::vector<std::uint64_t>> out;
        for (std::size_t q = 0; q < queries.rows; ++q) {
            SearchParams p{.k = 10, .ef = 64};
            p.bound = bound_of(q);
            out.push_back(result_labels(*idx->search(queries.view().slice(q, 1), p))[0]);
        }
        return out;
    };
    EXPECT_EQ(barred([](std::size_t) { return std::numeric_limits<float>::infinity(); }), full);
    EXPECT_EQ(barred([](std::size_t) { return 1e30f; }), full);
    EXPECT_EQ(barred([](std::size_t) { return 0.0f; }), narrow);
    EXPECT_EQ(barred([&](std::size_t q) { return exact.distance(q, 9); }), narrow);
    const double full_recall = recall_at_k(full, truth, 10);
    const double narrow_recall = recall_at_k(narrow, truth, 10);
    std::printf("recall@10: full walk %.4f, narrowed %.4f\n", full_recall, narrow_recall);
    EXPECT_NEAR(full_recall, 0.9790, 1e-9);
    EXPECT_NEAR(narrow_recall, 0.9150, 1e-9);
    // With deleted nodes (the checked beam: traversed, not returned) the same holds.
    std::vector<Label> gone;
    for (std::size_t i = 0; i < base.rows; i += 7) gone.push_back(Label{i});
    ASSERT_TRUE(idx->remove(gone));
    const auto full_checked = result_labels(*idx->search(queries, {.k = 10, .ef = 64}));
    EXPECT_EQ(barred([](std::size_t) { return std::numeric_limits<float>::infinity(); }), full_checked);
    EXPECT_EQ(barred([](std::size_t) { return 0.0f; }), result_labels(*idx->search(queries, {.k = 10, .ef = 33})));
    EXPECT_NE(full_checked, result_labels(*idx->search(queries, {.k = 10, .ef = 33})));
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

TEST(HnswIndex, AllowedDocsMaskSkipsButTraverses) {
    auto base = testing::clustered_matrix(3000, 16, 20, 51);
    auto queries = testing::clustered_matrix(100, 16, 20, 52);
    auto idx = *HnswIndex::create(16, Metric::kL2, {.M = 16, .ef_construction = 100, .threads = 2});
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    // 40% deleted (a bitmap, not index tombstones) and a filter on two thirds of the rest.
    std::mt19937 rng(5);
    std::vector<std::uint32_t> dead;
    Bitmap filter;
    std::vector<bool> skip(base.rows, false);
    for (std::uint32_t i = 0; i < base.rows; ++i) {
        if (rng() % 5 < 2) {
            dead.push_back(i);
            skip[i] = true;
        } else if (i % 3 != 0) {
            filter.add(i);
        } else {
            skip[i] = true;
        }
    }
    const DeletedDocs deleted = DeletedDocs().with(dead);
    const AllowedLabels allowed(AllowedDocs::of(&deleted, &filter));
    auto r = *idx->search(queries, {.k = 10, .ef = 128, .filter = &allowed});
    for (std::size_t q = 0; q < r.num_queries; ++q) {
        ASSERT_EQ(r.count(q), 10u);
        for (std::size_t j = 0; j < r.count(q); ++j) ASSERT_FALSE(skip[to_int(r.label(q, j))]);
    }
    const auto truth = brute_force(base, queries, 10, Metric::kL2, &skip);
    EXPECT_GE(recall_at_k(result_labels(r), truth, 10), 0.9);
}

// Churn: many rounds of deleting a fifth of the labels and re-inserting them with new vectors.
// Compaction reclaims the tombstones, so slots stay bounded and recall stays that of a fresh build.
TEST(HnswIndex, ChurnKeepsRecallAndReclaimsTombstones) {
    const std::size_t n = 2000;
    const std::size_t dim = 16;
    auto pool = testing::clustered_matrix(n * 6, dim, 25, 61);
    auto queries = testing::clustered_matrix(100, dim, 25, 62);
    auto idx = *HnswIndex::create(dim, Metric::kL2, {.M = 12, .ef_construction = 100, .threads = 1});
    std::vector<std::size_t> row_of(n);  // label -> row of `pool` holding its current vector
    for (std::size_t i = 0; i < n; ++i) row_of[i] = i;
    ASSERT_TRUE(idx->add(pool.view().slice(0, n), sequential_labels(n)).ok());
    std::mt19937 rng(17);
    std::size_t next_row = n;
    std::size_t max_slots = 0;
    for (int round = 0; round < 20; ++round) {
        std::vector<Label> gone;
        for (std::size_t i = 0; i < n; ++i) {
            if (rng() % 5 == 0) gone.push_back(Label{i});
        }
        ASSERT_EQ(*idx->remove(gone), gone.size());
        std::vector<float> rows;
        for (Label l : gone) {
            const std::size_t r = next_row++ % pool.rows;
            row_of[to_int(l)] = r;
            rows.insert(rows.end(), pool.view().row_ptr(r), pool.view().row_ptr(r) + dim);
        }
        ASSERT_TRUE(idx->add(MatrixView<float>{rows.data(), gone.size(), dim}, gone).ok());
        EXPECT_EQ(idx->info().size, n);
        max_slots = std::max(max_slots, idx->slots());
    }
    // Without reclaiming, 20 rounds would leave about n * 5 slots.
    EXPECT_LT(max_slots, n * 3 / 2 + n / 5);
    Matrix<float> current(n, dim);
    for (std::size_t i = 0; i < n; ++i) {
        std::copy(pool.view().row_ptr(row_of[i]), pool.view().row_ptr(row_of[i]) + dim, current.values.data() + i * dim);
    }
    const auto truth = brute_force(current, queries, 10, Metric::kL2);
    const double churned = recall_at_k(result_labels(*idx->search(queries, {.k = 10, .ef = 64})), truth, 10);
    auto fresh = *HnswIndex::create(dim, Metric::kL2, {.M = 12, .ef_construction = 100, .threads = 1});
    ASSERT_TRUE(fresh->add(current, sequential_labels(n)).ok());
    const double rebuilt = recall_at_k(result_labels(*fresh->search(queries, {.k = 10, .ef = 64})), truth, 10);
    EXPECT_GE(churned, rebuilt - 0.02) << "fresh build " << rebuilt;
    EXPECT_GE(churned, 0.95);
    // An explicit compaction drops every tombstone and keeps every live label.
    ASSERT_TRUE(idx->remove(std::vector<Label>{Label{0}}).ok());
    ASSERT_TRUE(idx->compact().ok());
    EXPECT_EQ(idx->slots(), n - 1);
    EXPECT_EQ(idx->info().size, n - 1);
}

// drop() as a merge uses it: each round removes 30% of the labels (a compaction's threshold), the rest
// are renumbered densely in order, and new rows are appended after them; the graph is consolidated, never
// rebuilt. Its recall against brute force is compared with a fresh build over the same rows, round by round.
void check_drop_rounds(const HnswParams& params, Metric metric, std::size_t n, double min_recall) {
    double gap[2] = {0, 0};
    const std::size_t dim = 32;
    auto pool = testing::random_matrix(n * 4, dim, 71);
    auto queries = testing::random_matrix(200, dim, 72);
    auto idx = *HnswIndex::create(dim, metric, params);
    std::vector<std::size_t> rows;  // label -> row of `pool`
    for (std::size_t i = 0; i < n; ++i) rows.push_back(i);
    ASSERT_TRUE(idx->add(pool.view().slice(0, n), sequential_labels(n)).ok());
    std::size_t next_row = n;
    std::mt19937 rng(5);
    for (int round = 0; round < 5; ++round) {
        std::vector<Label> gone;
        std::vector<std::size_t> kept;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            if (rng() % 10 < 3) {
                gone.push_back(Label{i});
            } else {
                kept.push_back(rows[i]);
            }
        }
        std::shuffle(gone.begin(), gone.end(), rng);  // any order
        gone.push_back(Label{rows.size() + 7});        // absent labels are ignored
        ASSERT_TRUE(idx->drop(gone, 2).ok());
        EXPECT_EQ(idx->info().size, kept.size());
        EXPECT_EQ(idx->slots(), kept.size());
        EXPECT_EQ(idx->unreachable_count(), 0u);
        rows = kept;
        std::vector<float> fresh_rows;
        std::vector<Label> labels;
        for (std::size_t i = 0; i < gone.size() - 1; ++i) {
            labels.push_back(Label{rows.size()});
            rows.push_back(next_row++ % pool.rows);
            fresh_rows.insert(fresh_rows.end(), pool.view().row_ptr(rows.back()), pool.view().row_ptr(rows.back()) + dim);
        }
        ASSERT_TRUE(idx->add(MatrixView<float>{fresh_rows.data(), labels.size(), dim}, labels).ok());
        Matrix<float> current(rows.size(), dim);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            std::copy(pool.view().row_ptr(rows[i]), pool.view().row_ptr(rows[i]) + dim, current.values.data() + i * dim);
        }
        const auto truth = brute_force(current, queries, 10, metric);
        auto fresh = *HnswIndex::create(dim, metric, params);
        ASSERT_TRUE(fresh->add(current, sequential_labels(rows.size())).ok());
        for (std::size_t e = 0; e < 2; ++e) {
            const std::size_t ef = e == 0 ? 16 : 64;
            const double dropped = recall_at_k(result_labels(*idx->search(queries, {.k = 10, .ef = ef})), truth, 10);
            const double rebuilt = recall_at_k(result_labels(*fresh->search(queries, {.k = 10, .ef = ef})), truth, 10);
            std::printf("round %d ef %zu: recall@10 %.4f after drop, %.4f rebuilt\n", round, ef, dropped, rebuilt);
            // One round's figures vary by about 0.02 between two builds over the same rows.
            EXPECT_GE(dropped, rebuilt - 0.05) << "round " << round << " ef " << ef;
            gap[e] += (rebuilt - dropped) / 5;
        }
        EXPECT_GE(recall_at_k(result_labels(*idx->search(queries, {.k = 10, .ef = 64})), truth, 10), min_recall);
    }
    // Five rounds, 2 threads (this machine, four runs): mean loss against the rebuilds 0.015-0.020 at ef 16,
    // 0.006-0.008 at ef 64 (uniform 32-d L2); 0.006-0.012 and -0.001-0.001 (SQ8, cosine).
    std::printf("mean recall@10 loss against a rebuild: %.4f at ef 16, %.4f at ef 64\n", gap[0], gap[1]);
    EXPECT_LE(gap[0], 0.03);
    EXPECT_LE(gap[1], 0.015);
}

TEST(HnswIndex, DropConsolidatesRenumbersAndKeepsRebuildRecall) {
    check_drop_rounds({.M = 16, .ef_construction = 64, .threads = 2}, Metric::kL2, 20000, 0.80);
}

TEST(HnswIndex, DropKeepsACodedGraphsCodesAndRecall) {
    HnswParams p{.M = 16, .ef_construction = 64, .threads = 2};
    p.codec = *CodecSpec::parse("sq8");
    check_drop_rounds(p, Metric::kCosine, 10000, 0.80);
}

// The codec is trained again on the vectors a drop keeps: here the first add trains SQ8 on vectors ten
// times smaller than the ones added next (whose codes then clip), and once the small ones are dropped
// the code distances (no re-score) must be those of a codec trained on the large ones.
TEST(HnswIndex, DropTrainsACodedGraphsCodecAgainOnTheVectorsKept) {
    const std::size_t dim = 16;
    auto small = testing::random_matrix(2000, dim, 81);
    auto large = testing::random_matrix(2000, dim, 82);
    for (float& x : large.values) x *= 10;
    auto queries = testing::random_matrix(50, dim, 83);
    for (float& x : queries.values) x *= 10;
    HnswParams p{.M = 16, .ef_construction = 64, .threads = 1};
    p.codec = *CodecSpec::parse("sq8");
    auto idx = *HnswIndex::create(dim, Metric::kL2, p);
    ASSERT_TRUE(idx->add(small, sequential_labels(2000)).ok());
    std::vector<Label> next(2000);
    for (std::size_t i = 0; i < 2000; ++i) next[i] = Label{2000 + i};
    ASSERT_TRUE(idx->add(large, next).ok());
    // Mean relative error of the code distances of the hits against their float32 distances.
    auto code_error = [&](std::size_t first_label) {
        const SearchParams sp{.k = 10, .ef = 64, .threads = 1, .filter = nullptr, .nprobe = 0, .rescore = 0};
        const SearchResults r = *idx->search(queries, sp);
        double sum = 0;
        std::size_t n = 0;
        for (std::size_t q = 0; q < r.num_queries; ++q) {
            for (std::size_t j = 0; j < r.count(q); ++j) {
                const std::size_t row = to_int(r.label(q, j)) - first_label;
                if (row >= large.rows) continue;  // a small vector (before the drop)
                const double exact =
                    testing::reference_distance(queries.view().row_ptr(q), large.view().row_ptr(row), dim, Metric::kL2);
                sum += std::abs(r.distance(q, j) - exact) / exact;
                ++n;
            }
        }
        return n == 0 ? 1.0 : sum / static_cast<double>(n);
    };
    const double before = code_error(2000);
    ASSERT_TRUE(idx->drop(sequential_labels(2000), 1).ok());
    const double after = code_error(0);
    // This machine: 0.279 before, 0.033 after (0.278 after without the new training).
    std::printf("code distance error: %.4f before the drop (clipped codes), %.4f after\n", before, after);
    EXPECT_GT(before, 0.15);
    EXPECT_LT(after, 0.06);
}

TEST(HnswIndex, DropOfEveryNodeLeavesAnEmptyGraphThatGrowsAgain) {
    auto base = testing::random_matrix(300, 8, 3);
    auto idx = *HnswIndex::create(8, Metric::kL2, {.M = 8, .ef_construction = 32, .threads = 1});
    ASSERT_TRUE(idx->add(base, sequential_labels(300)).ok());
    ASSERT_TRUE(idx->drop(sequential_labels(300)).ok());
    EXPECT_EQ(idx->info().size, 0u);
    EXPECT_EQ(idx->max_level(), -1);
    EXPECT_EQ(idx->search(base.view().slice(0, 1), {.k = 3})->count(0), 0u);
    ASSERT_TRUE(idx->add(base.view().slice(0, 10), sequential_labels(10)).ok());
    const auto r = *idx->search(base.view().slice(4, 1), {.k = 1});
    EXPECT_EQ(to_int(r.label(0, 0)), 4u);
    // Tombstones go with a drop of nothing; labels stay.
    ASSERT_TRUE(idx->remove(std::vector<Label>{Label{2}}).ok());
    ASSERT_TRUE(idx->drop({}).ok());
    EXPECT_EQ(idx->slots(), 9u);
    EXPECT_EQ(to_int(idx->search(base.view().slice(9, 1), {.k = 1})->label(0, 0)), 9u);
    // External ids name labels by position: a drop would leave them naming other nodes.
    std::vector<std::string> names(10);
    idx->set_external_ids(names);
    EXPECT_EQ(idx->drop(std::vector<Label>{Label{1}}).error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_EQ(idx->info().size, 9u);
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

namespace quiver::index {
namespace {

class HnswCodedTest : public ::testing::TestWithParam<Metric> {};

// HNSW walking SQ8 codes: recall floor against brute force, float32 re-scored distances, a
// smaller record than the float graph, and a save/open round trip with identical results.
TEST_P(HnswCodedTest, Sq8WalkWithFloatRescore) {
    const Metric metric = GetParam();
    testing::TempDir dir;
    auto base = testing::clustered_matrix(4000, 32, 40, 21);
    auto queries = testing::clustered_matrix(100, 32, 40, 22);
    HnswParams p{.M = 16, .ef_construction = 100, .threads = 2};
    p.codec = *CodecSpec::parse("sq8");
    auto idx = *HnswIndex::create(32, metric, p);
    ASSERT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    auto plain = *HnswIndex::create(32, metric, {.M = 16, .ef_construction = 100, .threads = 2});
    ASSERT_TRUE(plain->add(base, sequential_labels(base.rows)).ok());
    const auto truth = testing::brute_force(base, queries, 10, metric);
    const std::size_t ef = metric == Metric::kInnerProduct ? 300 : 100;
    auto r = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2});
    EXPECT_GE(testing::recall_at_k(testing::result_labels(r), truth, 10), 0.95) << simd::to_string(metric);
    for (std::size_t q = 0; q < r.num_queries; ++q) {
        for (std::size_t j = 0; j < r.count(q); ++j) {
            // Re-scored: the distance is the float32 one, not the code estimate.
            const double exact = testing::reference_distance(queries.row_ptr(q), base.row_ptr(to_int(r.label(q, j))),
                                                             32, metric);
            EXPECT_NEAR(r.distance(q, j), exact, 1e-4 * (1 + std::abs(exact)));
            if (j > 0) EXPECT_LE(r.distance(q, j - 1), r.distance(q, j));
        }
    }
    // Re-score depth: the default re-scores min(ef, max(4k, 32)) = 40; a depth below k re-scores k;
    // 0 returns the code estimates, ascending, within SQ8's error of the exact distances.
    auto forty = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2, .rescore = 40});
    EXPECT_EQ(forty.labels, r.labels);
    EXPECT_EQ(forty.distances, r.distances);
    auto full = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2, .rescore = ef});
    EXPECT_GE(testing::recall_at_k(testing::result_labels(full), truth, 10),
              testing::recall_at_k(testing::result_labels(r), truth, 10) - 0.01);
    auto shallow = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2, .rescore = 3});
    auto at_k = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2, .rescore = 10});
    EXPECT_EQ(shallow.labels, at_k.labels);
    EXPECT_EQ(shallow.distances, at_k.distances);
    EXPECT_GE(testing::recall_at_k(testing::result_labels(at_k), truth, 10), 0.9) << simd::to_string(metric);
    auto raw = *idx->search(queries, {.k = 10, .ef = ef, .threads = 2, .rescore = 0});
    EXPECT_GE(testing::recall_at_k(testing::result_labels(raw), truth, 10), 0.8) << simd::to_string(metric);
    std::size_t differ = 0;
    for (std::size_t q = 0; q < raw.num_queries; ++q) {
        ASSERT_EQ(raw.count(q), 10u);
        for (std::size_t j = 0; j < 10; ++j) {
            const double exact = testing::reference_distance(queries.row_ptr(q),
                                                             base.row_ptr(to_int(raw.label(q, j))), 32, metric);
            // SQ8 on these ranges: a code distance is within a few percent of the exact one.
            EXPECT_NEAR(raw.distance(q, j), exact, 0.05 * (1 + std::abs(exact)));
            differ += raw.distance(q, j) != static_cast<float>(exact);
            if (j > 0) EXPECT_LE(raw.distance(q, j - 1), raw.distance(q, j));
        }
    }
    EXPECT_GT(differ, 0u);  // not re-scored
    EXPECT_EQ(idx->unreachable_count(), 0u);
    const std::string path = dir.file("coded.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    auto opened = HnswIndex::open(path);
    ASSERT_TRUE(opened) << opened.error().to_string();
    EXPECT_EQ((*opened)->params().codec, p.codec);
    auto r2 = *(*opened)->search(queries, {.k = 10, .ef = ef});
    EXPECT_EQ(r.labels, r2.labels);
    EXPECT_EQ(r.distances, r2.distances);
    // Vectors left on disk: the pread re-score gives exactly the in-memory results.
    auto disk = HnswIndex::open(path, {.vectors_on_disk = true});
    ASSERT_TRUE(disk) << disk.error().to_string();
    EXPECT_TRUE((*disk)->vectors_on_disk());
    auto r3 = *(*disk)->search(queries, {.k = 10, .ef = ef, .threads = 2});
    EXPECT_EQ(r.labels, r3.labels);
    EXPECT_EQ(r.distances, r3.distances);
    auto in_memory = *HnswIndex::open(path);
    EXPECT_EQ((*disk)->memory_bytes() + 4000 * 32 * sizeof(float), in_memory->memory_bytes());
    // A mutation reads the vectors into memory first; results stay exact.
    EXPECT_EQ(*(*disk)->remove(std::vector<Label>{Label{0}}), 1u);
    ASSERT_TRUE((*disk)->add(base.view().slice(0, 1), std::vector<Label>{Label{0}}).ok());
    EXPECT_FALSE((*disk)->vectors_on_disk());
    auto self = *(*disk)->search(base.view().slice(0, 1), {.k = 1, .ef = 64});
    if (metric != Metric::kInnerProduct) EXPECT_EQ(to_int(self.label(0, 0)), 0u);  // IP: not a metric
    // The opened index grows (codes encoded with the saved codec, vectors copied out of the mapping).
    auto more = testing::clustered_matrix(50, 32, 40, 23);
    ASSERT_TRUE((*opened)->add(more, sequential_labels(50, 9000)).ok());
    auto hit = *(*opened)->search(more.view().slice(3, 1), {.k = 1, .ef = 64});
    EXPECT_EQ(to_int(hit.label(0, 0)), 9003u);
    // Damage past the checksum: the codes flag without the version is rejected.
    std::string bytes = testing::read_bytes(path);
    bytes[16 + 12] = 0;
    testing::write_bytes(path, bytes);
    EXPECT_FALSE(HnswIndex::open(path));
}

// The batched integer walk (u8s8_dot_batch of the active SIMD level, four codes per call, every
// neighbour list prefetched at once) returns exactly the estimates of a scalar reference: with no
// re-score, each returned distance equals bias - scale * sum_j w_j c_j (+ the code term under L2),
// computed here in int64 from the codec's own codes and query weights. The index trains its codec
// on every row of a first batch below the default sample size, so the codec trained here is the same.
// 100 dimensions: one whole 64-byte chunk and a masked tail in the VNNI kernel.
TEST_P(HnswCodedTest, Sq8WalkDistancesEqualScalarIntegerEstimates) {
    const Metric metric = GetParam();
    const std::size_t n = 3000, d = 100;
    auto base = testing::clustered_matrix(n, d, 30, 31);
    auto queries = testing::clustered_matrix(40, d, 30, 32);
    HnswParams p{.M = 8, .ef_construction = 64, .threads = 2};
    p.codec = *CodecSpec::parse("sq8");
    auto idx = *HnswIndex::create(d, metric, p);
    ASSERT_TRUE(idx->add(base, sequential_labels(n)).ok());
    auto r = *idx->search(queries, {.k = 10, .ef = 40, .threads = 1, .rescore = 0});

    // The rows as the index sees them (cosine: unit length).
    Matrix<float> rows = base, qs = queries;
    if (metric == Metric::kCosine) {
        for (std::size_t i = 0; i < n; ++i) simd::normalize(rows.row_ptr(i), d);
        for (std::size_t i = 0; i < qs.rows; ++i) simd::normalize(qs.row_ptr(i), d);
    }
    auto codec = *Codec::create(p.codec, d, metric, p.seed);
    ASSERT_TRUE(codec->train(rows.view()).ok());
    std::vector<std::uint8_t> codes(n * codec->code_size());
    codec->encode(rows.view(), codes.data());
    Int8Query iq;
    std::size_t checked = 0;
    for (std::size_t q = 0; q < qs.rows; ++q) {
        ASSERT_TRUE(codec->int8_query(qs.row_ptr(q), iq));
        ASSERT_EQ(r.count(q), 10u);
        for (std::size_t j = 0; j < r.count(q); ++j) {
            const std::uint8_t* c = codes.data() + to_int(r.label(q, j)) * codec->code_size();
            std::int64_t dot = 0;
            for (std::size_t i = 0; i < d; ++i) dot += std::int64_t{c[i]} * iq.weights[i];
            float expect = iq.bias - iq.scale * static_cast<float>(static_cast<std::int32_t>(dot));
            if (codec->has_code_term()) expect = expect + codec->code_term(c);
            EXPECT_EQ(r.distance(q, j), expect) << simd::to_string(metric) << " query " << q << " rank " << j;
            if (j > 0) EXPECT_LE(r.distance(q, j - 1), r.distance(q, j));
            ++checked;
        }
    }
    EXPECT_EQ(checked, qs.rows * 10);
}

// The walk-equivalence tests' data: 3,000 x 48 clustered rows whose every tenth row copies another
// (exact ties), 60 queries, and a 2-thread graph over them with the given codec.
struct TieData {
    static constexpr std::size_t n = 3000, d = 48;
    Matrix<float> base, queries;
    explicit TieData(std::uint64_t seed) : base(testing::clustered_matrix(n, d, 30, seed)),
                                  queries(testing::clustered_matrix(60, d, 30, seed + 1)) {
        for (std::size_t i = 10; i < n; i += 10) std::copy_n(base.row_ptr((i * 37 + 11) % i), d, base.row_ptr(i));
    }
    std::unique_ptr<HnswIndex> graph(Metric metric, const char* codec) const {
        HnswParams p{.M = 12, .ef_construction = 80, .threads = 2};
        p.codec = *CodecSpec::parse(codec);
        auto idx = *HnswIndex::create(d, metric, p);
        EXPECT_TRUE(idx->add(base, sequential_labels(n)).ok());
        return idx;
    }
};

// An unfiltered search walks one sorted beam; a filtered one the two heaps. A filter that allows
// everything must give exactly the same neighbours and distances, for float32 and SQ8 graphs, with
// and without the float32 re-score, at a narrow and a wide beam. Both walks order candidates by
// (distance, slot), so ties cannot make them expand different nodes: every tenth row here is a copy
// of another (exact ties in float32 and in the SQ8 estimates), and SQ8's integer estimates tie on
// their own as well (before the order was total, about one data set in ten gave a different walk
// at ef 10). Several data sets, since the threaded build gives a different graph each run.
TEST_P(HnswCodedTest, SortedBeamWalkEqualsTwoHeapWalk) {
    struct AllowAll : LabelFilter {
        bool allows(Label) const noexcept override { return true; }
    } all;
    const Metric metric = GetParam();
    for (std::uint64_t data = 0; data < 6; ++data) {
        const TieData t(61 + 2 * data);
        const auto& queries = t.queries;
        for (const char* codec : {"none", "sq8"}) {
            auto idx = t.graph(metric, codec);
            for (std::size_t ef : {10, 40, 200}) {
                for (std::size_t rescore : {SearchParams::kRescoreDefault, std::size_t{0}}) {
                    const SearchParams sorted{.k = 10, .ef = ef, .threads = 1, .rescore = rescore};
                    SearchParams heaps = sorted;
                    heaps.filter = &all;
                    auto a = *idx->search(queries, sorted);
                    auto b = *idx->search(queries, heaps);
                    const std::string where = std::string(codec) + " " + std::string(simd::to_string(metric)) + " data " +
                                              std::to_string(data) + " ef " + std::to_string(ef) + " rescore " +
                                              std::to_string(rescore);
                    EXPECT_EQ(a.labels, b.labels) << where;
                    EXPECT_EQ(a.distances, b.distances) << where;
                    for (std::size_t q = 0; q < a.num_queries; ++q) EXPECT_EQ(a.count(q), 10u);
                }
            }
        }
    }
}

// A walk under a mask that allows most nodes (LabelFilter::mostly_allows, as a collection passes for
// a segment with few deletes) uses one CheckedBeam; any other filter the two heaps. The hint must
// not change results: the same neighbours and distances either way, for float32 and SQ8 graphs,
// with and without the re-score, narrow and wide beams, 10% and 45% of the nodes masked (and the
// index's own deletions: remove() then a search with no filter, against the two heaps' walk).
// Duplicated rows make exact ties, as in SortedBeamWalkEqualsTwoHeapWalk.
TEST_P(HnswCodedTest, CheckedBeamWalkEqualsTwoHeapWalk) {
    struct Mask : LabelFilter {
        std::vector<std::uint8_t> dead;
        bool mostly = false;
        bool allows(Label l) const noexcept override { return dead[to_int(l)] == 0; }
        bool mostly_allows() const noexcept override { return mostly; }
    };
    const Metric metric = GetParam();
    const std::size_t n = TieData::n;
    std::mt19937 rng(17);
    for (std::uint64_t data = 0; data < 4; ++data) {
        const TieData t(71 + 2 * data);
        const auto& queries = t.queries;
        for (const char* codec : {"none", "sq8"}) {
            auto idx = t.graph(metric, codec);
            for (unsigned pct : {10u, 45u}) {
                Mask beam_mask, heap_mask;
                beam_mask.dead.resize(n);
                for (auto& x : beam_mask.dead) x = rng() % 100 < pct ? 1 : 0;
                beam_mask.mostly = true;
                heap_mask.dead = beam_mask.dead;
                for (std::size_t ef : {10, 40, 200}) {
                    for (std::size_t rescore : {SearchParams::kRescoreDefault, std::size_t{0}}) {
                        const SearchParams a_params{.k = 10, .ef = ef, .threads = 1, .filter = &beam_mask, .rescore = rescore};
                        SearchParams b_params = a_params;
                        b_params.filter = &heap_mask;
                        auto a = *idx->search(queries, a_params);
                        auto b = *idx->search(queries, b_params);
                        const std::string where = std::string(codec) + " " + std::string(simd::to_string(metric)) +
                                                  " data " + std::to_string(data) + " masked " + std::to_string(pct) +
                                                  "% ef " + std::to_string(ef) + " rescore " + std::to_string(rescore);
                        EXPECT_EQ(a.labels, b.labels) << where;
                        EXPECT_EQ(a.distances, b.distances) << where;
                        for (std::size_t q = 0; q < a.num_queries; ++q) {
                            EXPECT_EQ(a.count(q), 10u) << where;
                            for (std::size_t j = 0; j < a.count(q); ++j) EXPECT_EQ(beam_mask.dead[to_int(a.label(q, j))], 0) << where;
                        }
                    }
                }
            }
            // The index's own deletions (tombstones): no filter walks the CheckedBeam, an allow-all
            // filter without the hint the two heaps.
            std::vector<Label> gone;
            for (std::size_t i = 0; i < n; i += 5) gone.push_back(Label{i});
            ASSERT_EQ(*idx->remove(gone), gone.size());
            Mask all;
            all.dead.assign(n, 0);
            for (std::size_t ef : {10, 200}) {
                const SearchParams a_params{.k = 10, .ef = ef, .threads = 1};
                SearchParams b_params = a_params;
                b_params.filter = &all;
                auto a = *idx->search(queries, a_params);
                auto b = *idx->search(queries, b_params);
                EXPECT_EQ(a.labels, b.labels) << codec << " tombstones ef " << ef;
                EXPECT_EQ(a.distances, b.distances) << codec << " tombstones ef " << ef;
                for (std::size_t q = 0; q < a.num_queries; ++q) {
                    for (std::size_t j = 0; j < a.count(q); ++j) EXPECT_NE(to_int(a.label(q, j)) % 5, 0u);
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, HnswCodedTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine));

TEST(HnswIndex, CodedRejectsBlockCodecsAndTinyFirstBatch) {
    HnswParams p;
    p.codec = *CodecSpec::parse("pq8x4");
    auto bad = HnswIndex::create(32, Metric::kL2, p);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

// A finite query whose distances overflow to +infinity (components of 1e30 under L2) once put the
// sorted beam's first insertion past its end (the count of entries at most +infinity took in the
// padding) and crashed. Such vectors and queries are refused now (kMaxSquaredNorm), with a message
// naming the row; one just inside the bound is answered with finite, ascending distances (the beam
// itself is tested with +infinity in MatchesReferenceUnderRandomInsertsAndPops). Cosine normalises
// first, so it takes any finite magnitude.
TEST(HnswIndex, VectorsWhoseDistancesWouldOverflowAreRefused) {
    auto base = testing::clustered_matrix(500, 16, 5, 21);
    for (const char* codec : {"none", "sq8"}) {
        for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
            HnswParams p{.M = 8, .ef_construction = 40, .threads = 1};
            p.codec = *CodecSpec::parse(codec);
            auto idx = *HnswIndex::create(16, metric, p);
            ASSERT_TRUE(idx->add(base, sequential_labels(500)).ok());
            ASSERT_EQ(*idx->remove(std::vector<Label>{Label{3}}), 1u);  // the checked walk too
            Matrix<float> huge(2, 16), edge(1, 16);
            std::fill_n(huge.row_ptr(0), 16, 1.0f);
            std::fill_n(huge.row_ptr(1), 16, -3e29f);
            std::fill_n(edge.row_ptr(0), 16, 2.2e18f);  // norm 8.8e18
            const std::string where = std::string(codec) + " " + std::string(simd::to_string(metric));
            auto r = idx->search(huge.view(), {.k = 5, .ef = 10});
            if (metric == Metric::kCosine) {
                ASSERT_TRUE(r) << where;
            } else {
                ASSERT_FALSE(r) << where;
                EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
                EXPECT_NE(r.error().message().find("queries row 1 has a norm of 1.2e+30"), std::string::npos)
                    << r.error().message();
                auto added = idx->add(huge.view(), std::vector<Label>{Label{900}, Label{901}});
                ASSERT_FALSE(added) << where;
                EXPECT_NE(added.error().message().find("vectors row 1"), std::string::npos) << added.error().message();
            }
            for (std::size_t ef : {1, 10, 100}) {
                auto e = idx->search(edge.view(), {.k = 5, .ef = ef});
                ASSERT_TRUE(e) << where << ": " << e.error().message();
                EXPECT_EQ(e->count(0), 5u) << where << " ef " << ef;
                for (std::size_t j = 0; j < e->count(0); ++j) EXPECT_TRUE(std::isfinite(e->distance(0, j))) << where;
                for (std::size_t j = 1; j < e->count(0); ++j) EXPECT_LE(e->distance(0, j - 1), e->distance(0, j));
            }
        }
    }
}

// The beam reference tests' shared steps. reset_empty: a reset beam is empty, with no bound.
// pop_both: the beam's closest unexpanded entry is the reference's first unexpanded one (or neither
// has one); both are popped.
template <class Beam>
void reset_empty(Beam& beam, std::size_t ef) {
    beam.reset(ef);
    EXPECT_EQ(beam.size(), 0u);
    EXPECT_FALSE(beam.has_next());
    EXPECT_EQ(beam.bound(), INFINITY);
}
template <class Beam, class Ref>
void pop_both(Beam& beam, std::vector<Ref>& ref, std::size_t& pops) {
    auto it = std::find_if(ref.begin(), ref.end(), [](const Ref& r) { return !r.expanded; });
    ASSERT_EQ(beam.has_next(), it != ref.end());
    ASSERT_EQ(beam.next_distance(), it == ref.end() ? INFINITY : it->d);
    if (it == ref.end()) return;
    ASSERT_EQ(beam.next(), it->slot);
    ASSERT_EQ(beam.pop(), it->slot);
    it->expanded = true;
    ++pops;
}

// SortedBeam against a plain reference (a sorted vector truncated to ef, expanded flags, the closest
// unexpanded entry popped): random insertions with many equal distances and pops interleaved, over
// many searches (reset between them), for beams of 1 to 300 entries: up to 32 entries the
// insertion point is counted, past that first bisected; the expanded flags are a bitset, so 63-65,
// 128-129 and 300 entries shift flags across 64-bit words. After every step the beam holds the
// reference's entries in its order.
TEST(HnswSortedBeam, MatchesReferenceUnderRandomInsertsAndPops) {
    struct Ref {
        float d;
        std::uint32_t slot;
        bool expanded;
    };
    std::mt19937 rng(77);
    for (std::size_t ef : {1, 2, 7, 32, 33, 63, 64, 65, 128, 129, 150, 300}) {
        detail::SortedBeam beam;
        std::size_t pops = 0, inserts = 0, rejected = 0;
        for (int search = 0; search < 30; ++search) {
            std::vector<Ref> ref;
            reset_empty(beam, ef);
            for (std::uint32_t step = 0; step < 3 * ef + 20; ++step) {
                if (rng() % 4 == 0) {
                    pop_both(beam, ref, pops);
                    ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "ef " << ef << " step " << step;
                } else {
                    // Many ties, and now and then +infinity (a distance that overflowed), which
                    // enters last while the beam has room.
                    const float d = rng() % 97 == 0 ? INFINITY : static_cast<float>(rng() % 64) / 4;
                    const float bound = ref.size() == ef ? ref.back().d : INFINITY;
                    const std::uint32_t bound_slot = ref.size() == ef ? ref.back().slot : std::numeric_limits<std::uint32_t>::max();
                    ASSERT_EQ(beam.bound(), bound);
                    beam.insert(d, step);
                    if (d < bound || (d == bound && step < bound_slot)) {
                        auto at = std::upper_bound(ref.begin(), ref.end(), d,
                                                   [](float x, const Ref& r) { return x < r.d; });
                        ref.insert(at, {d, step, false});
                        if (ref.size() > ef) ref.pop_back();
                        ++inserts;
                    } else {
                        ++rejected;
                    }
                }
                ASSERT_EQ(beam.size(), ref.size());
                for (std::size_t j = 0; j < ref.size(); ++j) {
                    ASSERT_EQ(beam[j].distance, ref[j].d) << "ef " << ef << " step " << step << " entry " << j;
                    ASSERT_EQ(beam[j].slot, ref[j].slot) << "ef " << ef << " step " << step << " entry " << j;
                    ASSERT_EQ(beam.distances()[j], ref[j].d);
                    ASSERT_EQ(beam.slots()[j], ref[j].slot);
                }
            }
        }
        EXPECT_GT(pops, 50u) << ef;
        EXPECT_GT(inserts, 80u) << ef;
        EXPECT_GT(rejected, 10u) << ef;
    }
}

// CheckedBeam against a reference of the two-heap walk's state: every entry closer than the ef-th
// allowed one (the bound), allowed or not, sorted by (distance, slot), with expanded flags; an entry
// enters when it precedes the bound (always while fewer than ef are allowed), and once ef are
// allowed nothing beyond the ef-th stays. Random insertions with many ties, mixes of 5% to 90%
// disallowed entries, pops interleaved, beams of 1 to 300 (so the array grows past its first
// allocation and the bitsets shift across words), reset between searches. Also +infinity distances
// (vectors whose distance overflows): they enter last while the bound is +infinity.
TEST(HnswSortedBeam, CheckedBeamMatchesTwoHeapReference) {
    struct Ref {
        float d;
        std::uint32_t slot;
        bool allowed;
        bool expanded;
    };
    std::mt19937 rng(78);
    std::size_t grown = 0;
    for (std::size_t ef : {1, 2, 7, 32, 33, 63, 64, 65, 128, 129, 300}) {
        detail::CheckedBeam beam;
        std::size_t pops = 0, inserts = 0, rejected = 0, disallowed = 0;
        for (int search = 0; search < 30; ++search) {
            const unsigned deny_pct = std::array<unsigned, 4>{5, 30, 60, 90}[search % 4];
            std::vector<Ref> ref;
            reset_empty(beam, ef);
            for (std::uint32_t step = 0; step < 4 * ef + 40; ++step) {
                if (rng() % 4 == 0) {
                    pop_both(beam, ref, pops);
                    ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "ef " << ef << " step " << step;
                    continue;
                }
                const float d = rng() % 97 == 0 ? INFINITY : static_cast<float>(rng() % 64) / 4;
                const bool allowed = rng() % 100 >= deny_pct;
                std::size_t count = 0;
                const Ref* nth = nullptr;  // the ef-th allowed entry
                for (const Ref& r : ref) {
                    if (r.allowed && ++count == ef) nth = &r;
                }
                const float bound = nth != nullptr ? nth->d : INFINITY;
                const std::uint32_t bound_slot = nth != nullptr ? nth->slot : std::numeric_limits<std::uint32_t>::max();
                ASSERT_EQ(beam.bound(), bound);
                const bool enters = d < bound || (d == bound && step < bound_slot);
                ASSERT_EQ(beam.admits(d, step), enters);
                ASSERT_EQ(beam.insert(d, step, allowed), enters);
                if (!enters) {
                    ++rejected;
                    continue;
                }
                auto at = std::upper_bound(ref.begin(), ref.end(), d, [](float x, const Ref& r) { return x < r.d; });
                ref.insert(at, {d, step, allowed, false});  // steps rise, so a tie goes after its equals
                ++inserts;
                disallowed += allowed ? 0 : 1;
                count = 0;
                for (std::size_t j = 0; j < ref.size(); ++j) {
                    if (ref[j].allowed && ++count == ef) {
                        ref.resize(j + 1);
                        break;
                    }
                }
                grown += ref.size() > ef + 32 ? 1 : 0;
                ASSERT_EQ(beam.size(), ref.size()) << "ef " << ef << " step " << step;
                for (std::size_t j = 0; j < ref.size(); ++j) {
                    ASSERT_EQ(beam[j].distance, ref[j].d) << "ef " << ef << " step " << step << " entry " << j;
                    ASSERT_EQ(beam[j].slot, ref[j].slot) << "ef " << ef << " step " << step << " entry " << j;
                    ASSERT_EQ(beam.allowed(j), ref[j].allowed) << "ef " << ef << " step " << step << " entry " << j;
                }
            }
            std::vector<detail::Candidate> out;
            beam.copy_to(out);
            std::vector<detail::Candidate> want;
            for (const Ref& r : ref) {
                if (r.allowed) want.emplace_back(r.d, r.slot);
            }
            ASSERT_EQ(out, want) << "ef " << ef;
            ASSERT_LE(out.size(), ef);
        }
        EXPECT_GT(pops, 50u) << ef;
        EXPECT_GT(inserts, 80u) << ef;
        EXPECT_GT(rejected, 10u) << ef;
        EXPECT_GT(disallowed, 20u) << ef;
    }
    EXPECT_GT(grown, 100u);  // the arrays grew past their first allocation
}

// connect() prunes a full settled list (the output of a selection) plus one new link with
// select_with_added, which skips the comparisons whose outcome the settled list already fixes. It must
// give exactly what the full heuristic (select_neighbors) gives. The lists evolve as connect() makes
// them: a list below its cap takes a new link by appending it (and is no longer settled), a full one
// is pruned by the heuristic (and is settled again). Random data (the heuristic keeps nearly every
// link, so lists stay full) and clustered data (it drops many), every metric, caps 32 and 4.
TEST(HnswSelect, AddingToASettledListEqualsTheFullHeuristic) {
    using detail::Candidate;
    for (const Metric metric : {Metric::kL2, Metric::kCosine, Metric::kInnerProduct}) {
        for (const bool clustered : {false, true}) {
            const std::size_t n = 600, dim = 24;
            auto data = clustered ? testing::clustered_matrix(n, dim, 12, 31) : testing::random_matrix(n, dim, 32);
            if (metric == Metric::kCosine) {
                for (std::size_t r = 0; r < n; ++r) simd::normalize(data.row_ptr(r), dim);
            }
            HnswGraph g;
            ASSERT_TRUE(g.init(dim, metric, {.M = 16, .ef_construction = 64}).ok());
            g.reserve(n);
            for (std::uint32_t s = 0; s < n; ++s) std::memcpy(g.payload_mut(s), data.row_ptr(s), dim * sizeof(float));
            g.count = n;
            std::mt19937 rng(clustered ? 5 : 6);
            std::size_t checked = 0, added_dropped = 0, links_dropped = 0;
            for (const std::size_t cap : {std::size_t{32}, std::size_t{4}}) {
                for (int trial = 0; trial < 40; ++trial) {
                    const std::uint32_t base = static_cast<std::uint32_t>(rng() % n);
                    const float* bv = g.vec(base);
                    auto candidate = [&](std::uint32_t s) { return Candidate(g.dist(g.vec(s), bv, dim), s); };
                    // A settled list: the heuristic over 2 * cap random candidates.
                    std::vector<Candidate> list;
                    std::set<std::uint32_t> used{base};
                    while (list.size() < 2 * cap) {
                        const auto s = static_cast<std::uint32_t>(rng() % n);
                        if (used.insert(s).second) list.push_back(candidate(s));
                    }
                    std::sort(list.begin(), list.end());
                    g.select_neighbors(list, cap);
                    bool settled = true;
                    for (int step = 0; step < 100 && used.size() < n; ++step) {
                        auto s = static_cast<std::uint32_t>(rng() % n);
                        while (used.count(s) != 0) s = static_cast<std::uint32_t>(rng() % n);
                        used.insert(s);
                        if (list.size() < cap) {  // room: appended, unsettled
                            list.push_back(candidate(s));
                            settled = false;
                            continue;
                        }
                        std::vector<Candidate> full = list;
                        full.push_back(candidate(s));
                        std::sort(full.begin(), full.end());
                        std::vector<Candidate> fast = full;
                        g.select_neighbors(full, cap);
                        if (settled) {
                            g.select_with_added(fast, cap, s);
                            ASSERT_EQ(fast, full) << simd::to_string(metric) << " cap " << cap << " trial " << trial
                                                  << " step " << step;
                            ++checked;
                            added_dropped += std::none_of(full.begin(), full.end(),
                                                          [&](const Candidate& c) { return c.second == s; });
                            links_dropped += list.size() + 1 - full.size();
                        }
                        list = std::move(full);
                        settled = true;
                    }
                }
            }
            // Many prunes compared, with both outcomes: the new link refused, and old links dropped.
            const std::string what = std::string(simd::to_string(metric)) + (clustered ? " clustered" : " random");
            EXPECT_GT(checked, 500u) << what;
            EXPECT_GT(added_dropped, 50u) << what;
            EXPECT_GT(links_dropped, 50u) << what;
        }
    }
}

// VisitedSet::mark_new: the ids not yet visited in this search, in order, each once even when
// repeated in the list; all of them marked afterwards; a new search sees none. Both tag widths (u8
// up to kByteTagNodes nodes, u16 past it), over 70,000 searches, so both tags wrap (every 255 and
// 65,535 searches) and the clear at the wrap is exercised; a node marked many searches ago must not
// look visited when the tag comes round again.
TEST(HnswSortedBeam, MarkNewReturnsUnvisitedInOrder) {
    for (const std::size_t n : {std::size_t{100}, detail::VisitedSet::kByteTagNodes + 1}) {
        detail::VisitedSet v(n);
        EXPECT_EQ(v.byte_tags(), n <= detail::VisitedSet::kByteTagNodes);
        EXPECT_EQ(v.size(), n);
        const auto top = static_cast<std::uint32_t>(n - 1);
        std::size_t failures = 0;
        for (std::uint32_t round = 0; round < 70000 && failures == 0; ++round) {
            v.next();
            // A node marked in an earlier search only (its tag is stale) reads as unvisited.
            const std::uint32_t stale = 10 + round % 50;
            failures += v.visited(stale) ? 1 : 0;
            failures += v.test_and_mark(5) ? 1 : 0;
            failures += v.test_and_mark(5) ? 0 : 1;
            const std::uint32_t ids[] = {7, 5, 9, 7, top, 0, 5, 63, 64, top, 8};
            std::uint32_t out[11];
            const std::size_t m = v.mark_new(ids, 11, out);
            failures += std::vector<std::uint32_t>(out, out + m) != std::vector<std::uint32_t>{7, 9, top, 0, 63, 64, 8};
            for (std::uint32_t id : ids) failures += v.visited(id) ? 0 : 1;
            for (std::uint32_t id : {1u, 6u, 62u, 65u, top - 1}) failures += v.visited(id) ? 1 : 0;
            failures += v.mark_new(ids, 11, out) == 0 ? 0 : 1;
            v.test_and_mark(10 + (round + 1) % 50);  // stale for the next search
            ASSERT_EQ(failures, 0u) << "n " << n << " search " << round;
        }
        v.next();
        const std::uint32_t ids[] = {7, 5, 9, 7, top};
        std::uint32_t out[5];
        EXPECT_EQ(v.mark_new(ids, 3, out), 3u);
        EXPECT_EQ(v.mark_new(ids + 3, 2, out), 1u);  // 7 again, then top
        EXPECT_EQ(out[0], top);
    }
}

}  // namespace
}  // namespace quiver::index
