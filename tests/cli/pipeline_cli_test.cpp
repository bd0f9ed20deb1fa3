// quiver eval --fuse / --sweep / --pipeline, quiver ingest of every layout, quiver limit: as a user runs them.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "testing/testing.h"

namespace quiver {
namespace {

testing::CommandResult run(const std::string& args) {
    return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1");
}

std::string fixture(const std::string& name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/eval/" + name; }

// A BEIR folder with train and test judgments, and two runs that disagree: run a is right on train,
// run b on test (as in tests/pipeline/fusion_test.cpp).
class PipelineCli : public ::testing::Test {
protected:
    void SetUp() override {
        std::filesystem::create_directories(dir_.file("data/qrels"));
        std::string corpus, queries, train = "query-id\tcorpus-id\tscore\n", test = train, a, b;
        for (const char* d : {"a", "z"}) corpus += std::string("{\"_id\":\"") + d + "\",\"text\":\"x\"}\n";
        for (const char* q : {"t1", "t2", "s1", "s2"}) {
            queries += std::string("{\"_id\":\"") + q + "\",\"text\":\"x\"}\n";
            const bool is_train = q[0] == 't';
            (is_train ? train : test) += std::string(q) + "\ta\t1\n";
            a += std::string(q) + " Q0 a 1 " + (is_train ? "2" : "1") + " a\n" + q + " Q0 z 2 " + (is_train ? "1" : "2") + " a\n";
            b += std::string(q) + " Q0 a 1 " + (is_train ? "1" : "2") + " b\n" + q + " Q0 z 2 " + (is_train ? "2" : "1") + " b\n";
        }
        testing::write_bytes(dir_.file("data/corpus.jsonl"), corpus);
        testing::write_bytes(dir_.file("data/queries.jsonl"), queries);
        std::filesystem::create_directories(dir_.file("data/qrels"));
        testing::write_bytes(dir_.file("data/qrels/train.tsv"), train);
        testing::write_bytes(dir_.file("data/qrels/test.tsv"), test);
        testing::write_bytes(dir_.file("a.trec"), a);
        testing::write_bytes(dir_.file("b.trec"), b);
    }
    std::string f(const std::string& name) const { return dir_.file(name); }
    testing::TempDir dir_;
};

TEST_F(PipelineCli, FuseSweepSavesAPipelineAndNeverTunesOnTheReportedSplit) {
    const std::string base = "eval --dataset " + f("data") + " --fuse " + f("a.trec") + "," + f("b.trec") +
                             " --metrics ndcg@10 --fusion convex --norm minmax";
    auto r = run(base + " --sweep weights=0:1:0.05 --tune-on train --split test --save-pipeline " + f("p.json"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("weights [0.55,0.45]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tuned on split train"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ndcg@10          0.6309"), std::string::npos) << r.out;  // "a" second on test
    const std::string saved = testing::read_bytes(f("p.json"));
    EXPECT_NE(saved.find("\"split\": \"train\""), std::string::npos) << saved;
    // The saved pipeline reproduces the figure.
    r = run("eval --dataset " + f("data") + " --fuse " + f("a.trec") + "," + f("b.trec") + " --metrics ndcg@10 --pipeline " +
            f("p.json"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("ndcg@10          0.6309"), std::string::npos) << r.out;
    // Tuning on the reported split is refused.
    r = run(base + " --sweep weights=0:1:0.05 --tune-on test --split test");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("is the reported split"), std::string::npos) << r.out;
    r = run(base + " --tune-on train");
    EXPECT_EQ(r.code, 2) << r.out;
    r = run(base + " --weights 1,2,3");
    EXPECT_EQ(r.code, 2) << r.out;
    r = run("eval --dataset " + f("data") + " --fuse " + f("a.trec") + " --metrics ndcg@10");
    EXPECT_EQ(r.code, 2) << r.out;
    // A calibrated cut-off never trains on the reported split.
    r = run("eval --dataset " + f("data") + " --run-file " + f("a.trec") + " --cutoff calibrated --calibration-split test");
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("is the reported split"), std::string::npos) << r.out;
    r = run("eval --dataset " + f("data") + " --run-file " + f("a.trec") + " --cutoff calibrated");
    EXPECT_EQ(r.code, 2) << r.out;
    // Hand-set RRF weights: k=60 ranks the same on both splits when run a weighs more.
    r = run("eval --dataset " + f("data") + " --fuse " + f("a.trec") + "," + f("b.trec") +
            " --metrics ndcg@10 --split train --fusion rrf --weights 2,1");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("ndcg@10          1.0000"), std::string::npos) << r.out;
}

TEST_F(PipelineCli, IngestEveryLayoutEvalReads) {
    for (const char* layout : {"terrier-trec", "smart", "beir-metadata"}) {
        auto r = run(std::string("ingest --data ") + f("store") + " --collection " + layout + " --input " + fixture(layout));
        ASSERT_EQ(r.code, 0) << layout << ": " << r.out;
        r = run(std::string("eval --dataset ") + fixture(layout) + " --quiet");
        ASSERT_EQ(r.code, 0) << layout << ": " << r.out;
    }
    auto q = run("query --data " + f("store") + " --collection terrier-trec --text microwave -k 1");
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_NE(q.out.find("3 "), std::string::npos) << q.out;
    // A schema naming a metadata member stores it.
    testing::write_bytes(f("schema.json"), R"({"fields": [{"name": "title", "type": "text"}, {"name": "text", "type": "text"},
        {"name": "url", "type": "keyword"}, {"name": "year", "type": "integer"}]})");
    auto r = run("ingest --data " + f("store") + " --collection meta --schema " + f("schema.json") + " --input " +
                 fixture("beir-metadata"));
    ASSERT_EQ(r.code, 0) << r.out;
    q = run("query --data " + f("store") + " --collection meta --text alpha -k 3 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_NE(q.out.find("https://example.org/a"), std::string::npos) << q.out;
    EXPECT_NE(q.out.find("2019"), std::string::npos) << q.out;
}

TEST_F(PipelineCli, LimitGenerateThenEvaluate) {
    std::string queries;
    for (int i = 0; i < 12; ++i) queries += "{\"_id\":\"q" + std::to_string(i) + "\",\"text\":\"Who likes Item" + std::to_string(i) + " Things?\"}\n";
    testing::write_bytes(f("attrs.jsonl"), queries);
    std::string vocab;
    for (int i = 0; i < 2100; ++i) {
        std::string w = "w";
        for (int x = i; x > 0; x /= 26) w += static_cast<char>('a' + x % 26);
        vocab += w + "zzz\n";
    }
    testing::write_bytes(f("vocab.txt"), vocab);
    auto r = run("limit generate --out " + f("limit") + " --attributes " + f("attrs.jsonl") + " --vocab " + f("vocab.txt") +
                 " --docs 200 --queries 10 --items 10 --seed 3");
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("eval --dataset " + f("limit") + " --metrics recall@2 --quiet");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("recall@2         1.0000"), std::string::npos) << r.out;  // BM25 solves LIMIT-style queries
    r = run("limit generate --out " + f("bad") + " --attributes " + f("attrs.jsonl") + " --vocab " + f("vocab.txt") +
            " --queries 20");
    EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
}  // namespace quiver
