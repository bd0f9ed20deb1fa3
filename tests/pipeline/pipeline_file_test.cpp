// Pipeline files: round trip, and refusal of anything that could silently change a setting.
#include "quiver/pipeline/pipeline_file.h"

#include <gtest/gtest.h>

namespace quiver::pipeline {
namespace {

TEST(PipelineFile, RoundTrip) {
    PipelineConfig c;
    c.fusion.method = FusionMethod::kConvex;
    c.fusion.normalization = ScoreNormalization::kZScore;
    c.fusion.missing = MissingScore::kMin;
    c.fusion.weights = {0.35, 0.65};
    c.tuned = TuningRecord{"train", "ndcg@10", 0.5, "weights=0:1:0.05", {"a.trec", "b.trec"}};
    const std::string text = json::dump(pipeline_to_json(c));
    auto back = pipeline_from_json(*json::parse(text));
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->fusion.method, FusionMethod::kConvex);
    EXPECT_EQ(back->fusion.normalization, ScoreNormalization::kZScore);
    EXPECT_EQ(back->fusion.missing, MissingScore::kMin);
    EXPECT_EQ(back->fusion.weights, (std::vector<double>{0.35, 0.65}));
    ASSERT_TRUE(back->tuned.has_value());
    EXPECT_EQ(back->tuned->split, "train");
    EXPECT_EQ(back->tuned->runs.size(), 2u);
    EXPECT_EQ(json::dump(pipeline_to_json(*back)), text);
}

TEST(PipelineFile, Refusals) {
    const auto parse = [](const char* text) { return pipeline_from_json(*json::parse(text)); };
    EXPECT_TRUE(parse(R"({"format":"quiver-pipeline","version":1})").ok());
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline"})").ok());
    EXPECT_FALSE(parse(R"({"format":"other","version":1})").ok());
    auto newer = parse(R"({"format":"quiver-pipeline","version":2})");
    ASSERT_FALSE(newer.ok());
    EXPECT_EQ(newer.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline","version":1,"fusion":{"wieghts":[1]}})").ok());
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline","version":1,"fusion":{"weights":[-1]}})").ok());
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline","version":1,"fusion":{"method":"sum"}})").ok());
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline","version":1,"fusion":{"k":"60"}})").ok());
    EXPECT_FALSE(parse(R"({"format":"quiver-pipeline","version":1,"extra":1})").ok());
    EXPECT_FALSE(load_pipeline("/nonexistent/quiver/pipeline.json").ok());
}

TEST(PipelineFile, PrfAndCutoffRoundTrip) {
    PipelineConfig c;
    c.prf = PrfSpec{PrfMethod::kRm3, 7, 12, 0.3, 1.0, 0.75};
    CalibrationModel m;
    m.depth = 50;
    m.feature_mean = {0, 1.5, -2.25, 3, 0.1, 1e-9};
    m.feature_scale = {1, 0.5, 2, 3, 0.7, 1e-3};
    m.wa = {0.1, -0.2, 0.3, -0.4, 0.5, -0.6};
    m.wb = {1.0 / 3, 2, 3, 4, 5, 6};
    m.threshold = 0.4183726152;
    m.train_f1 = 0.5;
    c.cutoff = CutoffConfig{m, "train"};
    const std::string text = json::dump(pipeline_to_json(c));
    auto back = pipeline_from_json(*json::parse(text));
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    ASSERT_TRUE(back->prf.has_value());
    EXPECT_EQ(to_string(*back->prf), "rm3:fb_docs=7,fb_terms=12,weight=0.3");
    ASSERT_TRUE(back->cutoff.has_value());
    EXPECT_EQ(back->cutoff->split, "train");
    EXPECT_EQ(back->cutoff->model.depth, 50u);
    EXPECT_EQ(back->cutoff->model.wb, m.wb);  // exact: the numbers round-trip
    EXPECT_EQ(back->cutoff->model.threshold, m.threshold);
    EXPECT_EQ(json::dump(pipeline_to_json(*back)), text);
    // Rocchio keeps alpha/beta; the method defaults as the caller says.
    auto r = prf_from_json(*json::parse(R"({"fb_docs": 3, "alpha": 0.9, "beta": 0.1})"), PrfMethod::kRocchio);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(to_string(*r), "rocchio:fb_docs=3,fb_terms=10,alpha=0.9,beta=0.1");
}

TEST(PipelineFile, PrfAndCutoffRefusals) {
    const auto prf = [](const char* text) { return prf_from_json(*json::parse(text)); };
    EXPECT_TRUE(prf(R"({})").ok());
    EXPECT_FALSE(prf(R"({"method": "rm4"})").ok());
    EXPECT_FALSE(prf(R"({"alpha": 1})").ok());  // rm3 has no alpha
    EXPECT_FALSE(prf(R"({"method": "rocchio", "original_query_weight": 0.5})").ok());
    EXPECT_FALSE(prf(R"({"fb_docs": 0})").ok());
    EXPECT_FALSE(prf(R"({"fb_docs": 2.5})").ok());
    EXPECT_FALSE(prf(R"({"fb_terms": 1001})").ok());
    EXPECT_FALSE(prf(R"({"original_query_weight": 1.5})").ok());
    EXPECT_FALSE(prf(R"({"method": "rocchio", "beta": -1})").ok());
    EXPECT_FALSE(prf(R"([])").ok());
    const auto cutoff = [](const std::string& text) { return cutoff_from_json(*json::parse(text)); };
    const std::string six = "[0, 0, 0, 0, 0, 0]", ones = "[1, 1, 1, 1, 1, 1]";
    const auto model = [&](const std::string& extra, const std::string& scale) {
        return R"({"method": "calibrated", "depth": 10, "threshold": 0.5, "feature_mean": )" + six +
               R"(, "feature_scale": )" + scale + R"(, "wa": )" + six + R"(, "wb": )" + six + extra + "}";
    };
    EXPECT_TRUE(cutoff(model("", ones)).ok());
    EXPECT_FALSE(cutoff(model("", six)).ok());  // a zero scale
    EXPECT_FALSE(cutoff(model("", "[1, 1, 1]")).ok());
    EXPECT_FALSE(cutoff(model(R"(, "bias": 1)", ones)).ok());
    auto no_method = cutoff(R"({"depth": 10})");
    EXPECT_FALSE(no_method.ok());
    std::string bad_threshold = model("", ones);
    bad_threshold.replace(bad_threshold.find("0.5"), 3, "1.5");
    EXPECT_FALSE(cutoff(bad_threshold).ok());
    std::string bad_depth = model("", ones);
    bad_depth.replace(bad_depth.find("10"), 2, "0");
    EXPECT_FALSE(cutoff(bad_depth).ok());
}

}  // namespace
}  // namespace quiver::pipeline
