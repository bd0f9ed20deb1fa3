// Fusion rules for missing documents, fusion of TREC runs, and weight tuning that never looks at the
// split it is reported on. Expected values are computed by hand.
#include "quiver/pipeline/fusion.h"

#include <gtest/gtest.h>

#include <cmath>

#include "quiver/pipeline/run_fusion.h"

namespace quiver::pipeline {
namespace {

// A = [1: 3.0, 2: 2.0, 3: 1.0], B = [3: 0.9, 4: 0.5].
const std::vector<std::vector<RankedItem>> kLists = {{{1, 3.0}, {2, 2.0}, {3, 1.0}}, {{3, 0.9}, {4, 0.5}}};

void expect_fused(const FusionSpec& spec, const std::vector<RankedItem>& want) {
    ASSERT_TRUE(validate_fusion(spec, kLists.size()));
    const auto got = fuse(kLists, spec);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].key, want[i].key) << "rank " << i;
        EXPECT_NEAR(got[i].score, want[i].score, 1e-12) << "rank " << i;
    }
}

TEST(FusionMissing, MinimumImputation) {
    FusionSpec z;
    z.method = FusionMethod::kConvex;
    z.normalization = ScoreNormalization::kZScore;
    z.missing = MissingScore::kMin;
    // z-scores: A 1.2247, 0, -1.2247; B 1, -1. Missing items take the list minimum:
    // 1: 1.2247 + (-1); 2: 0 + (-1); 3: -1.2247 + 1; 4: -1.2247 + (-1).
    const double s = 1.224744871391589;
    expect_fused(z, {{1, s - 1.0}, {3, 1.0 - s}, {2, -1.0}, {4, -s - 1.0}});
    z.missing = MissingScore::kZero;  // the same lists, absent = 0
    expect_fused(z, {{1, s}, {2, 0.0}, {3, 1.0 - s}, {4, -1.0}});
    FusionSpec mm = z;
    mm.normalization = ScoreNormalization::kMinMax;
    mm.missing = MissingScore::kMin;  // min-max minimum is 0: the same as kZero
    mm.weights = {0.7, 0.3};
    expect_fused(mm, {{1, 0.7}, {2, 0.35}, {3, 0.3}, {4, 0.0}});
    // An empty list imputes nothing.
    const std::vector<std::vector<RankedItem>> with_empty = {{{1, 2.0}, {2, 1.0}}, {}};
    const auto got = fuse(with_empty, mm);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NEAR(got[0].score, 0.7, 1e-12);
    EXPECT_NEAR(got[1].score, 0.0, 1e-12);
    EXPECT_EQ(*parse_missing_score("min"), MissingScore::kMin);
    EXPECT_FALSE(parse_missing_score("max"));
    EXPECT_EQ(*parse_normalization("minmax"), ScoreNormalization::kMinMax);
    EXPECT_EQ(*parse_normalization("zscore"), ScoreNormalization::kZScore);
}

TEST(RunFusion, RanksLikeTrecEvalAndCutsAtDepth) {
    eval::Run a, b;
    // Ties in run a: trec_eval order is doc id descending, so "y" ranks before "x".
    a["q1"] = {{"x", 1.0}, {"y", 1.0}, {"w", 0.5}};
    b["q1"] = {{"w", 3.0}};
    b["q2"] = {{"v", 2.0}};  // q2 only in run b
    FusionSpec rrf;
    rrf.rrf_k = 0.0;
    const std::vector<eval::Run> runs = {a, b};
    const eval::Run fused = fuse_runs(runs, rrf, 2);
    ASSERT_EQ(fused.size(), 2u);
    // q1 lists (depth 2): a = [y, x], b = [w]. y: 1/1, w: 1/1, x: 1/2; y and w tie, key order = first seen (y).
    const auto& q1 = fused.at("q1");
    ASSERT_EQ(q1.size(), 2u);
    EXPECT_EQ(q1[0].doc_id, "y");
    EXPECT_EQ(q1[1].doc_id, "w");
    EXPECT_DOUBLE_EQ(q1[1].score, 1.0);
    ASSERT_EQ(fused.at("q2").size(), 1u);
    EXPECT_EQ(fused.at("q2")[0].doc_id, "v");
}

TEST(Sweep, ParsesAndRefuses) {
    auto r = parse_sweep("weights=0:1:0.25");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->values(), (std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0}));
    EXPECT_EQ(parse_sweep("weights=0:1:0.05")->values().size(), 21u);
    EXPECT_FALSE(parse_sweep("k=0:1:0.1"));
    EXPECT_FALSE(parse_sweep("weights=0:1"));
    EXPECT_FALSE(parse_sweep("weights=1:0:0.1"));
    EXPECT_FALSE(parse_sweep("weights=0:1:0"));
    EXPECT_FALSE(parse_sweep("weights=-1:1:0.5"));
    EXPECT_FALSE(parse_sweep("weights=0:1:0.00001"));
}

// Train queries t*: run A is right, run B wrong; test queries s*: the reverse. Tuning on train must
// pick a weight favouring A, whatever the test judgments say, and the test judgments favour B.
TEST(Tuning, UsesOnlyTheTuningSplit) {
    eval::Run a, b;
    eval::Qrels train, test;
    for (const char* q : {"t1", "t2"}) {
        a[q] = {{"a", 2.0}, {"z", 1.0}};
        b[q] = {{"z", 2.0}, {"a", 1.0}};
        train[q]["a"] = 1;
    }
    for (const char* q : {"s1", "s2"}) {
        a[q] = {{"z", 2.0}, {"a", 1.0}};
        b[q] = {{"a", 2.0}, {"z", 1.0}};
        test[q]["a"] = 1;
    }
    FusionSpec base;
    base.method = FusionMethod::kConvex;
    const std::vector<eval::Run> runs = {a, b};
    const auto metric = *eval::parse_metric("ndcg@10");
    const SweepRange range = *parse_sweep("weights=0:1:0.05");
    auto tuned = tune_fusion_weights(runs, train, metric, base, range, 1000);
    ASSERT_TRUE(tuned.ok()) << tuned.error().to_string();
    // min-max: a scores w, z scores 1 - w; at w = 0.5 they tie and trec_eval puts "z" first.
    ASSERT_EQ(tuned->best.weights.size(), 2u);
    EXPECT_NEAR(tuned->best.weights[0], 0.55, 1e-12);
    EXPECT_NEAR(tuned->best.weights[1], 0.45, 1e-12);
    EXPECT_DOUBLE_EQ(tuned->best_value, 1.0);
    EXPECT_EQ(tuned->grid.size(), 21u);
    EXPECT_NEAR(tuned->grid[0].value, 1.0 / std::log2(3.0), 1e-12);  // w = 0: "a" second
    // Reported on test, the train-tuned weights rank "a" second.
    const eval::Run on_test = fuse_runs(runs, tuned->best, 1000);
    auto rep = eval::evaluate(test, on_test, {metric});
    ASSERT_TRUE(rep.ok());
    EXPECT_NEAR(rep->metrics[0].mean, 1.0 / std::log2(3.0), 1e-12);
    // Tuned on test instead, the sweep would have chosen w = 0.
    auto cheat = tune_fusion_weights(runs, test, metric, base, range, 1000);
    ASSERT_TRUE(cheat.ok());
    EXPECT_NEAR(cheat->best.weights[0], 0.0, 1e-12);
    // Unhappy paths.
    EXPECT_FALSE(tune_fusion_weights(std::span<const eval::Run>(runs.data(), 1), train, metric, base, range, 10));
    const std::vector<eval::Run> many(5, a);
    EXPECT_FALSE(tune_fusion_weights(many, train, metric, base, range, 10));  // 21^5 combinations
}

}  // namespace
}  // namespace quiver::pipeline
