// quiver build --memory-budget, quiver info --verify / resident bytes, quiver search --verify: real
// processes, real files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver {
namespace {

using Run = testing::CommandResult;

Run run(const std::string& args) { return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1"); }

/// The number after `"key": ` in JSON text (-1 when absent).
double json_number(const std::string& text, const std::string& key) {
    const auto at = text.find("\"" + key + "\": ");
    if (at == std::string::npos) return -1;
    return std::strtod(text.c_str() + at + key.size() + 4, nullptr);
}

class BudgetCli : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(storage::write_fvecs(f("base.fvecs"), testing::clustered_matrix(2000, 16, 20, 1)).ok());
        ASSERT_TRUE(storage::write_fvecs(f("query.fvecs"), testing::clustered_matrix(20, 16, 20, 2)).ok());
    }
    std::string f(const std::string& name) const { return dir_.file(name); }
    testing::TempDir dir_;
};

TEST_F(BudgetCli, BuildFitsEachBudgetAsInfoReportsIt) {
    struct Case {
        const char* budget;
        double bytes;
        const char* extra;
        const char* index;  // expected choice
    };
    const Case cases[] = {{"1MiB", 1048576, "", "hnsw"},       {"600KiB", 614400, "", "hnsw"},
                          {"200KiB", 204800, "", "ivf"},       {"120000", 120000, "", "ivf"},
                          {"0.5MiB", 524288, "--index-type flat", "flat"}, {"90KiB", 92160, "--index-type flat", "flat"}};
    std::set<std::string> codecs;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.budget);
        const std::string idx = f("b.qvr");
        auto b = run("build --input " + f("base.fvecs") + " --output " + idx + " --metric l2 --memory-budget " +
                     c.budget + " " + c.extra + " --json");
        ASSERT_EQ(b.code, 0) << b.out;
        EXPECT_EQ(json_number(b.out, "budget_bytes"), c.bytes) << b.out;
        EXPECT_NE(b.out.find(std::string("\"index\": \"") + c.index + "\""), std::string::npos) << b.out;
        const double predicted = json_number(b.out, "predicted_resident_bytes");
        const double resident = json_number(b.out, "resident_bytes");
        EXPECT_GT(resident, 0) << b.out;
        EXPECT_LE(resident, predicted);
        EXPECT_LE(predicted, c.bytes);
        const bool on_disk = b.out.find("\"vectors_on_disk\": true") != std::string::npos;
        const auto codec_at = b.out.find("\"codec\": \"");
        ASSERT_NE(codec_at, std::string::npos);
        codecs.insert(b.out.substr(codec_at + 10, b.out.find('"', codec_at + 10) - codec_at - 10));
        // What `quiver info` reports for the file opened as it is served is the same figure.
        auto i = run("info " + idx + " --json --verify" + (on_disk ? " --vectors-on-disk" : ""));
        ASSERT_EQ(i.code, 0) << i.out;
        EXPECT_EQ(json_number(i.out, "resident_bytes"), resident) << i.out;
        EXPECT_LE(json_number(i.out, "resident_bytes"), c.bytes);
        // And it answers with the settings the build printed.
        auto s = run("search --index-file " + idx + " --queries " + f("query.fvecs") + " --k 5 --verify" +
                     (on_disk ? " --vectors-on-disk" : "") + " -o " + f("out.tsv"));
        ASSERT_EQ(s.code, 0) << s.out;
    }
    EXPECT_GE(codecs.size(), 4u);  // none, and several codecs
    // Text output names the choice and how to search it.
    auto t = run("build --input " + f("base.fvecs") + " --output " + f("t.qvr") + " --metric l2 --memory-budget 200KiB");
    ASSERT_EQ(t.code, 0) << t.out;
    EXPECT_NE(t.out.find("memory budget 0.2 MiB: ivf index on"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("--vectors-on-disk"), std::string::npos) << t.out;
}

TEST_F(BudgetCli, TooSmallOrMalformedBudgetsAreRefusedWithExit2) {
    auto small = run("build --input " + f("base.fvecs") + " --output " + f("s.qvr") + " --memory-budget 10KiB");
    EXPECT_EQ(small.code, 2) << small.out;
    EXPECT_NE(small.out.find("fits a memory budget of 10240 bytes"), std::string::npos) << small.out;
    EXPECT_FALSE(std::filesystem::exists(f("s.qvr")));
    for (const char* bad : {"12XB", "GiB", "1..5GiB", "0", "-3MiB"}) {
        auto r = run("build --input " + f("base.fvecs") + " --output " + f("s.qvr") + " --memory-budget " + bad);
        EXPECT_EQ(r.code, 2) << bad << ": " << r.out;
    }
    auto both = run("build --input " + f("base.fvecs") + " --output " + f("s.qvr") + " --memory-budget 1GiB --codec sq8");
    EXPECT_EQ(both.code, 2) << both.out;
}

TEST_F(BudgetCli, VerifyFindsADamagedLargeSectionThatALazyOpenDefers) {
    const std::string idx = f("h.qvr");
    ASSERT_EQ(run("build --input " + f("base.fvecs") + " --output " + idx + " --metric l2").code, 0);
    std::string bytes = testing::read_bytes(idx);
    bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 0x20);  // inside the level-0 records
    testing::write_bytes(idx, bytes);
    auto lazy = run("info " + idx);
    EXPECT_EQ(lazy.code, 0) << lazy.out;  // header and small sections are fine
    auto verified = run("info " + idx + " --verify");
    EXPECT_EQ(verified.code, 1) << verified.out;  // kDataLoss: a runtime failure
    EXPECT_NE(verified.out.find("section 'L0RC'"), std::string::npos) << verified.out;
    auto search = run("search --index-file " + idx + " --queries " + f("query.fvecs") + " --k 5");
    EXPECT_NE(search.code, 0) << search.out;
    EXPECT_NE(search.out.find("section 'L0RC'"), std::string::npos) << search.out;
}

}  // namespace
}  // namespace quiver
