#include "quiver/eval/run_file.h"

#include <gtest/gtest.h>

#include "testing/testing.h"

namespace quiver::eval {
namespace {

TEST(RunFile, WriteReadRoundTrip) {
    eval::Run run = {{"q1", {{"b", 1.5}, {"a", 1.5}, {"c", 3.25}}}, {"q2", {{"z", 0.125}}}};
    const std::string text = format_run(run, "tag");
    // Ranked as trec_eval does: score desc, ties by doc id desc.
    EXPECT_EQ(text, "q1 Q0 c 1 3.25 tag\nq1 Q0 b 2 1.5 tag\nq1 Q0 a 3 1.5 tag\nq2 Q0 z 1 0.125 tag\n");
    testing::TempDir dir;
    ASSERT_TRUE(write_run(dir.file("r.trec"), run, "tag").ok());
    auto back = read_run(dir.file("r.trec"));
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->at("q1").size(), 3u);
    EXPECT_EQ(back->at("q1")[0].doc_id, "c");
    EXPECT_DOUBLE_EQ(back->at("q1")[0].score, 3.25);
    EXPECT_FALSE(write_run(dir.file("r2.trec"), run, "two words").ok());
}

TEST(RunFile, ReportsMalformedLinesWithLineNumbers) {
    auto r = parse_run("q1 Q0 a 1 1.0 t\n\nq1 Q0 b 2 x t\n", "run.trec");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("run.trec:3"), std::string::npos) << r.error().message();
    auto cols = parse_run("q1 Q0 a 1 1.0\n", "run.trec");
    ASSERT_FALSE(cols.ok());
    EXPECT_NE(cols.error().message().find("run.trec:1"), std::string::npos);
    auto dup = parse_run("q1 Q0 a 1 1.0 t\nq1 Q0 a 2 0.5 t\n", "run.trec");
    ASSERT_FALSE(dup.ok());
    EXPECT_NE(dup.error().message().find("repeated"), std::string::npos);
    auto crlf = parse_run("q1\tQ0\ta\t1\t1.0\tt\r\n", "run.trec");
    ASSERT_TRUE(crlf.ok());
    EXPECT_EQ(crlf->at("q1")[0].doc_id, "a");
    EXPECT_FALSE(read_run("/nonexistent/run.trec").ok());
}

}  // namespace
}  // namespace quiver::eval
