// `quiver build --kind multivector` / `quiver search` end to end: MUVERA with every candidate answers
// exactly as the exact index; bad input is exit code 2, a damaged index exit code 1.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "mv_data.h"
#include "testing/testing.h"

namespace quiver::multivector {
namespace {

using testing::run_command;
using testing::TempDir;

std::string jsonl(const std::vector<Matrix<float>>& sets, const std::string& prefix) {
    std::string out;
    for (std::size_t i = 0; i < sets.size(); ++i) {
        out += fmt::format("{{\"id\": \"{}{}\", \"vectors\": [", prefix, i);
        for (std::size_t r = 0; r < sets[i].rows; ++r) {
            out += r > 0 ? ",[" : "[";
            for (std::size_t j = 0; j < sets[i].dim; ++j) out += fmt::format("{}{}", j > 0 ? "," : "", sets[i].row_ptr(r)[j]);
            out += "]";
        }
        out += "]}\n";
    }
    return out;
}

TEST(MultiVectorCli, BuildAndSearchMatchExact) {
    TempDir dir;
    auto vocab = testdata::vocabulary(300, 16, 10, 1);
    testing::write_bytes(dir.file("d.jsonl"), jsonl(testdata::sets(vocab, 10, 300, 1, 15, 2), "d"));
    testing::write_bytes(dir.file("q.jsonl"), jsonl(testdata::sets(vocab, 10, 8, 1, 6, 3), "q"));
    const std::string q = QUIVER_CLI_PATH;
    auto b1 = run_command(q + " build --kind multivector --input " + dir.file("d.jsonl") + " --index muvera --fde-index flat"
                          " --k-sim 3 --d-proj 8 --r-reps 4 --threads 1 --output " + dir.file("m.mvix") + " 2>&1");
    ASSERT_EQ(b1.code, 0) << b1.out;
    EXPECT_NE(b1.out.find("built muvera multi-vector index of 300 documents"), std::string::npos) << b1.out;
    auto b2 = run_command(q + " build --kind multivector --input " + dir.file("d.jsonl") + " --index exact --output " +
                          dir.file("x.mvix") + " --json 2>/dev/null");
    ASSERT_EQ(b2.code, 0) << b2.out;
    EXPECT_NE(b2.out.find("\"method\": \"exact\""), std::string::npos) << b2.out;
    auto s1 = run_command(q + " search --index-file " + dir.file("m.mvix") + " --queries " + dir.file("q.jsonl") +
                          " --k 5 --candidates 300 2>/dev/null");
    auto s2 = run_command(q + " search --index-file " + dir.file("x.mvix") + " --queries " + dir.file("q.jsonl") +
                          " --k 5 2>/dev/null");
    ASSERT_EQ(s1.code, 0);
    ASSERT_EQ(s2.code, 0);
    EXPECT_EQ(s1.out, s2.out);
    EXPECT_EQ(std::count(s2.out.begin(), s2.out.end(), '\n'), 1 + 8 * 5);
    EXPECT_EQ(s2.out.rfind("query\trank\tid\tscore\nq0\t1\td", 0), 0u) << s2.out;

    // Bad input: exit code 2 with the file and line named.
    testing::write_bytes(dir.file("bad.jsonl"), "{\"id\": \"a\", \"vectors\": [[1, 2]]}\n{\"id\": \"a\", \"vectors\": [[1, 2]]}\n");
    auto bad = run_command(q + " build --kind multivector --input " + dir.file("bad.jsonl") + " --output " +
                           dir.file("b.mvix") + " 2>&1");
    EXPECT_EQ(bad.code, 2) << bad.out;
    EXPECT_NE(bad.out.find("line 2: duplicate id"), std::string::npos) << bad.out;
    auto dim = run_command(q + " search --index-file " + dir.file("x.mvix") + " --queries " + dir.file("bad.jsonl") + " 2>&1");
    EXPECT_EQ(dim.code, 2) << dim.out;
    // A damaged index: exit code 1 (data loss).
    std::string bytes = testing::read_bytes(dir.file("x.mvix"));
    bytes[bytes.size() / 2] ^= 0x10;
    testing::write_bytes(dir.file("x.mvix"), bytes);
    auto dmg = run_command(q + " search --index-file " + dir.file("x.mvix") + " --queries " + dir.file("q.jsonl") + " 2>&1");
    EXPECT_EQ(dmg.code, 1) << dmg.out;
    EXPECT_NE(dmg.out.find("x.mvix"), std::string::npos) << dmg.out;
}

// int8 tokens and blocked FDEs from the CLI: with every document a candidate the blocked MUVERA index
// prints what the exact int8 index prints; the bytes per document of both files are reported.
TEST(MultiVectorCli, Int8TokensAndBlockedFdes) {
    TempDir dir;
    auto vocab = testdata::vocabulary(300, 16, 10, 4);
    testing::write_bytes(dir.file("d.jsonl"), jsonl(testdata::sets(vocab, 10, 250, 1, 15, 5), "d"));
    testing::write_bytes(dir.file("q.jsonl"), jsonl(testdata::sets(vocab, 10, 6, 1, 6, 6), "q"));
    const std::string q = QUIVER_CLI_PATH;
    auto b1 = run_command(q + " build --kind multivector --input " + dir.file("d.jsonl") +
                          " --index muvera --fde-index blocks --codec int8 --k-sim 3 --d-proj 8 --r-reps 4 --threads 2"
                          " --output " + dir.file("b.mvix") + " --json 2>/dev/null");
    ASSERT_EQ(b1.code, 0) << b1.out;
    EXPECT_NE(b1.out.find("\"codec\": \"int8\""), std::string::npos) << b1.out;
    EXPECT_NE(b1.out.find("\"fde_file_bytes\": 0"), std::string::npos) << b1.out;  // the blocks are inside the file
    auto b2 = run_command(q + " build --kind multivector --input " + dir.file("d.jsonl") + " --index exact --codec int8 --output " +
                          dir.file("x.mvix") + " 2>&1");
    ASSERT_EQ(b2.code, 0) << b2.out;
    auto s1 = run_command(q + " search --index-file " + dir.file("b.mvix") + " --queries " + dir.file("q.jsonl") +
                          " --k 5 --candidates 250 2>/dev/null");
    auto s2 = run_command(q + " search --index-file " + dir.file("x.mvix") + " --queries " + dir.file("q.jsonl") +
                          " --k 5 --in-memory 2>/dev/null");
    ASSERT_EQ(s1.code, 0);
    ASSERT_EQ(s2.code, 0);
    EXPECT_EQ(s1.out, s2.out);
    EXPECT_EQ(std::count(s1.out.begin(), s1.out.end(), '\n'), 1 + 6 * 5);
    // blocks need d_final 0: a usage error (exit 2).
    auto bad = run_command(q + " build --kind multivector --input " + dir.file("d.jsonl") +
                           " --index muvera --fde-index blocks --d-final 64 --output " + dir.file("c.mvix") + " 2>&1");
    EXPECT_EQ(bad.code, 2) << bad.out;
    EXPECT_NE(bad.out.find("d_final"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace quiver::multivector
