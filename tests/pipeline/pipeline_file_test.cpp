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

}  // namespace
}  // namespace quiver::pipeline
