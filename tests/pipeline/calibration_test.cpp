// Calibrated cut-offs: set metrics and the global threshold by hand; a query-dependent mapping beats any
// single threshold when queries score on different scales; training reads only the training split.
#include "quiver/pipeline/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace quiver::pipeline {
namespace {

TEST(Calibration, SetMetricsAndGlobalThresholdByHand) {
    eval::Run run;
    run["q1"] = {{"a", 3.0}, {"b", 2.0}, {"c", 1.0}};
    run["q2"] = {{"d", 5.0}, {"e", 0.5}};
    eval::Qrels qrels;
    qrels["q1"]["a"] = 1;
    qrels["q1"]["c"] = 1;
    qrels["q2"]["e"] = 2;
    qrels["q2"]["d"] = 0;
    qrels["q3"]["x"] = 1;  // not in the run: not counted
    // Threshold 2: q1 returns a, b (P 1/2, R 1/2, F1 1/2); q2 returns d (0, 0, 0).
    auto m = set_metrics(apply_global_cutoff(run, 2.0, 100), qrels);
    EXPECT_EQ(m.queries, 2u);
    EXPECT_DOUBLE_EQ(m.precision, 0.25);
    EXPECT_DOUBLE_EQ(m.recall, 0.25);
    EXPECT_DOUBLE_EQ(m.f1, 0.25);
    // Candidates 5, 3, 2, 1, 0.5 give mean F1 0, 1/3, 1/4, 2/5, (0.8 + 2/3)/2 = 0.7333: best 0.5.
    EXPECT_DOUBLE_EQ(best_global_threshold(run, qrels, 100), 0.5);
    // Depth 1 leaves only 5 and 3: threshold 3 (F1 q1 = 2/3 / 2 = 1/3) beats 5 (0).
    EXPECT_DOUBLE_EQ(best_global_threshold(run, qrels, 1), 3.0);
}

// Query i scores its ten documents c_i * (10, 9, ..., 1) with c_i in [1, 20]; the top two are relevant.
void make_split(const char* prefix, std::mt19937& rng, eval::Run& run, eval::Qrels& qrels) {
    std::uniform_real_distribution<double> scale(1.0, 20.0);
    for (int q = 0; q < 40; ++q) {
        const std::string qid = prefix + std::to_string(q);
        const double c = scale(rng);
        for (int d = 0; d < 10; ++d) {
            const std::string doc = "d" + std::to_string(d);
            run[qid].push_back({doc, c * (10 - d)});
            if (d < 2) qrels[qid][doc] = 1;
        }
    }
}

TEST(Calibration, QueryDependentMappingBeatsOneThreshold) {
    std::mt19937 rng(5);
    eval::Run run;
    eval::Qrels train, test;
    make_split("t", rng, run, train);
    make_split("s", rng, run, test);
    CalibrationOptions o;
    o.depth = 10;
    auto model = train_calibration(run, train, o);
    ASSERT_TRUE(model.ok()) << model.error().to_string();
    EXPECT_GT(model->train_f1, 0.95);
    const auto calibrated = set_metrics(apply_calibrated_cutoff(run, *model), test);
    const double t = best_global_threshold(run, train, 10);
    const auto global = set_metrics(apply_global_cutoff(run, t, 10), test);
    EXPECT_EQ(calibrated.queries, 40u);
    EXPECT_GT(calibrated.f1, 0.95);
    EXPECT_LT(global.f1, 0.85);
    // Monotone: each query's calibrated order is its score order. calibrated_probabilities (what
    // collections call on their own ranking) gives the same numbers.
    EXPECT_TRUE(validate_calibration(*model).ok());
    for (const auto& [qid, entries] : run) {
        const auto p = calibrated_scores(entries, *model);
        for (std::size_t i = 1; i < p.size(); ++i) EXPECT_GE(p[i - 1].score, p[i].score);
        std::vector<eval::RunEntry> sorted = entries;
        std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
        std::vector<double> scores;
        for (std::size_t i = 0; i < sorted.size() && i < model->depth; ++i) scores.push_back(sorted[i].score);
        const auto q = calibrated_probabilities(scores, *model);
        ASSERT_EQ(q.size(), p.size());
        for (std::size_t i = 0; i < q.size(); ++i) EXPECT_EQ(q[i], p[i].score);
    }
    CalibrationModel broken = *model;
    broken.wa.pop_back();
    EXPECT_FALSE(validate_calibration(broken).ok());
    broken = *model;
    broken.feature_scale[2] = 0.0;
    EXPECT_FALSE(validate_calibration(broken).ok());
    broken = *model;
    broken.threshold = -0.1;
    EXPECT_FALSE(validate_calibration(broken).ok());
    // Training reads only its own split: the test queries' entries in the run change nothing.
    eval::Run train_only;
    for (const auto& [qid, entries] : run) {
        if (qid[0] == 't') train_only[qid] = entries;
    }
    auto again = train_calibration(train_only, train, o);
    EXPECT_EQ(again->wa, model->wa);
    EXPECT_EQ(again->threshold, model->threshold);
    // Too little to train on.
    eval::Qrels one;
    one["t0"] = train["t0"];
    EXPECT_FALSE(train_calibration(run, one, o).ok());
}

}  // namespace
}  // namespace quiver::pipeline
