// `quiver tokenize` end to end: output format, truncation, special tokens, --json, vocab.txt folders,
// and the exit codes of docs/cli.md (2 for bad usage or input, with the offending line named).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "quiver/core/json.h"
#include "testing/testing.h"

namespace quiver {
namespace {

struct Proc {
    int code = -1;
    std::string out;
    std::string err;
};

class TokenizeCli : public ::testing::Test {
protected:
    Proc run(const std::string& args) {
        const std::string err_path = dir_.file("stderr.txt");
        const auto ran = testing::run_command(std::string(QUIVER_CLI_PATH) + " tokenize " + args + " 2>" + err_path);
        return {ran.code, ran.out, testing::read_bytes(err_path)};
    }
    std::string f(const std::string& name) const { return dir_.file(name); }
    static std::string model() { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/bert-mean"; }
    testing::TempDir dir_;
};

TEST_F(TokenizeCli, WritesIdsAndTokensPerRecord) {
    testing::write_bytes(f("in.jsonl"), "{\"_id\": \"d1\", \"title\": \"Hello\", \"text\": \"world [MASK]\"}\n"
                                        "\n"
                                        "{\"id\": 7, \"text\": \"the quick fox\"}\n"
                                        "{\"text\": \"\"}\n");
    auto r = run("--model " + model() + " --input " + f("in.jsonl") + " --output " + f("out.jsonl"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(testing::read_bytes(f("out.jsonl")),
              "{\"id\":\"d1\",\"ids\":[4,130,131,6,5],\"tokens\":[\"[CLS]\",\"hello\",\"world\",\"[MASK]\",\"[SEP]\"]}\n"
              "{\"id\":\"7\",\"ids\":[4,119,132,134,5],\"tokens\":[\"[CLS]\",\"the\",\"quick\",\"fox\",\"[SEP]\"]}\n"
              "{\"id\":\"2\",\"ids\":[4,5],\"tokens\":[\"[CLS]\",\"[SEP]\"]}\n");
    EXPECT_NE(r.err.find("3 texts"), std::string::npos) << r.err;

    auto t = run("--model " + model() + "/tokenizer.json --input " + f("in.jsonl") +
                 " --output - --max-length 3 --json");
    ASSERT_EQ(t.code, 0) << t.err;
    // Records first, then the summary line.
    EXPECT_EQ(t.out.rfind("{\"id\":\"d1\",\"ids\":[4,130,5],", 0), 0u) << t.out;
    const std::string last = t.out.substr(t.out.rfind('{'));
    auto summary = json::parse(last);
    ASSERT_TRUE(summary.ok()) << last;
    EXPECT_EQ(summary->find("texts")->as_int(), 3);
    EXPECT_EQ(summary->find("tokens")->as_int(), 8);

    auto n = run("--model " + model() + " --input " + f("in.jsonl") + " --output - --no-special-tokens");
    ASSERT_EQ(n.code, 0) << n.err;
    EXPECT_EQ(n.out.rfind("{\"id\":\"d1\",\"ids\":[130,131,6],", 0), 0u) << n.out;
}

TEST_F(TokenizeCli, VocabTxtFolder) {
    const std::string dir = f("vocabonly");
    std::filesystem::create_directories(dir);
    testing::write_bytes(dir + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n");
    testing::write_bytes(f("in.jsonl"), "{\"id\": \"a\", \"text\": \"Hello worlds [MASK] zz\"}\n");
    auto r = run("--model " + dir + " --input " + f("in.jsonl") + " --output -");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "{\"id\":\"a\",\"ids\":[2,5,6,7,4,1,3],\"tokens\":[\"[CLS]\",\"hello\",\"world\",\"##s\",\"[MASK]\",\"[UNK]\",\"[SEP]\"]}\n");
}

TEST_F(TokenizeCli, BadInputExitsTwoNamingTheProblem) {
    testing::write_bytes(f("ok.jsonl"), "{\"id\": \"a\", \"text\": \"x\"}\n");
    auto missing = run("--model " + model() + " --input " + f("none.jsonl") + " --output -");
    EXPECT_EQ(missing.code, 2) << missing.err;
    auto no_model = run("--model " + f("nomodel") + " --input " + f("ok.jsonl") + " --output -");
    EXPECT_EQ(no_model.code, 2);
    EXPECT_NE(no_model.err.find("does not exist"), std::string::npos) << no_model.err;
    std::filesystem::create_directories(f("empty"));
    auto empty = run("--model " + f("empty") + " --input " + f("ok.jsonl") + " --output -");
    EXPECT_EQ(empty.code, 2);
    EXPECT_NE(empty.err.find("neither tokenizer.json nor vocab.txt"), std::string::npos) << empty.err;

    testing::write_bytes(f("bad.jsonl"), "{\"id\": \"a\", \"text\": \"x\"}\n{not json\n");
    auto bad = run("--model " + model() + " --input " + f("bad.jsonl") + " --output -");
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
    testing::write_bytes(f("notext.jsonl"), "{\"id\": \"a\", \"body\": \"x\"}\n");
    auto notext = run("--model " + model() + " --input " + f("notext.jsonl") + " --output -");
    EXPECT_EQ(notext.code, 2);
    EXPECT_NE(notext.err.find("\"text\""), std::string::npos) << notext.err;
    testing::write_bytes(f("dup.jsonl"), "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"a\", \"text\": \"y\"}\n");
    auto dup = run("--model " + model() + " --input " + f("dup.jsonl") + " --output -");
    EXPECT_EQ(dup.code, 2);
    EXPECT_NE(dup.err.find("'a'"), std::string::npos) << dup.err;
    auto tight = run("--model " + model() + " --input " + f("ok.jsonl") + " --output - --max-length 1");
    EXPECT_EQ(tight.code, 2);
    EXPECT_NE(tight.err.find("special tokens"), std::string::npos) << tight.err;
    testing::write_bytes(f("broken.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}");
    auto broken = run("--model " + f("broken.json") + " --input " + f("ok.jsonl") + " --output -");
    EXPECT_EQ(broken.code, 2);
    EXPECT_NE(broken.err.find("broken.json"), std::string::npos) << broken.err;
    auto usage = run("--input " + f("ok.jsonl"));
    EXPECT_EQ(usage.code, 2);
    EXPECT_NE(usage.err.find("required"), std::string::npos) << usage.err;
    auto help = run("--help");
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("--max-length"), std::string::npos);
}

}  // namespace
}  // namespace quiver
