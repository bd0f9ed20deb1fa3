// Runs the quiver binary as a user would and checks outputs, exit codes and error messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <cstdio>
#include <string>

#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver {
namespace {

using Run = testing::CommandResult;  // out: stdout and stderr together

Run run(const std::string& args) { return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1"); }

class Cli : public ::testing::Test {
protected:
    void SetUp() override {
        auto base = testing::clustered_matrix(2000, 16, 20, 1);
        auto queries = testing::clustered_matrix(20, 16, 20, 2);
        ASSERT_TRUE(storage::write_fvecs(dir_.file("base.fvecs"), base).ok());
        ASSERT_TRUE(storage::write_fvecs(dir_.file("query.fvecs"), queries).ok());
    }
    std::string f(const std::string& name) const { return dir_.file(name); }
    testing::TempDir dir_;
};

TEST_F(Cli, BuildSearchGtInfoRoundTrip) {
    auto gt = run("gt --base " + f("base.fvecs") + " --queries " + f("query.fvecs") + " --k 10 --metric l2 -o " +
                  f("gt.ivecs"));
    ASSERT_EQ(gt.code, 0) << gt.out;
    for (const char* kind : {"hnsw", "flat"}) {
        const std::string idx = f(std::string(kind) + ".qvr");
        auto b = run(std::string("build --input ") + f("base.fvecs") + " --output " + idx + " --metric l2 --index-type " +
                     kind + " --json");
        ASSERT_EQ(b.code, 0) << b.out;
        EXPECT_NE(b.out.find("\"vectors\": 2000"), std::string::npos) << b.out;
        auto s = run("search --index-file " + idx + " --queries " + f("query.fvecs") + " --k 10 --ef 100 --truth " +
                     f("gt.ivecs") + " -o " + f("out.tsv"));
        ASSERT_EQ(s.code, 0) << s.out;
        const auto at = s.out.find("recall@10 = ");
        ASSERT_NE(at, std::string::npos) << s.out;
        const double recall = std::stod(s.out.substr(at + 12, 6));
        // Flat is exact; a multi-threaded HNSW build is not deterministic, so a floor.
        EXPECT_GE(recall, std::string(kind) == "flat" ? 1.0 : 0.99) << kind << ": " << s.out;
        const std::string tsv = testing::read_bytes(f("out.tsv"));
        EXPECT_EQ(tsv.rfind("query\trank\tid\tdistance\n", 0), 0u);
        EXPECT_EQ(std::count(tsv.begin(), tsv.end(), '\n'), 1 + 20 * 10);
        auto j = run("search --index-file " + idx + " --queries " + f("query.fvecs") + " --k 3 --json --max-queries 2");
        ASSERT_EQ(j.code, 0) << j.out;
        EXPECT_NE(j.out.find("\"hits\""), std::string::npos);
        auto i = run("info " + idx);
        ASSERT_EQ(i.code, 0);
        EXPECT_NE(i.out.find(std::string(kind) + " index, 2000 vectors x 16 dims"), std::string::npos) << i.out;
    }
}

// Compressed indexes: build with a codec (flat and IVF), search with nprobe/rescore, info's footprint.
TEST_F(Cli, CodecIndexesBuildSearchAndInfo) {
    auto gt = run("gt --base " + f("base.fvecs") + " --queries " + f("query.fvecs") + " --k 10 --metric l2 -o " +
                  f("gt.ivecs"));
    ASSERT_EQ(gt.code, 0) << gt.out;
    struct Case {
        const char* args;
        const char* search;
        double floor;
    };
    const Case cases[] = {{"--index-type flat --codec sq8", "--rescore 50", 1.0},
                          {"--index-type ivf --codec sq4 --nlist 16", "--nprobe 16 --rescore 100", 1.0},
                          {"--index-type ivf --codec rabitq1 --nlist 8", "--nprobe 8", 0.99},
                          {"--index-type flat --codec pq8x4", "--rescore 200", 0.99},
                          {"--index-type ivf --codec none --nlist 4", "--nprobe 4", 1.0},
                          {"--index-type flat --codec binary2", "--rescore 400", 0.97}};
    for (const Case& c : cases) {
        const std::string idx = f("codes.qvr");
        auto b = run("build --input " + f("base.fvecs") + " --output " + idx + " --metric l2 " + c.args + " --json");
        ASSERT_EQ(b.code, 0) << c.args << ": " << b.out;
        EXPECT_NE(b.out.find("\"resident_bytes_per_vector\""), std::string::npos) << b.out;
        auto s = run("search --index-file " + idx + " --queries " + f("query.fvecs") + " --k 10 " + c.search +
                     " --truth " + f("gt.ivecs") + " -o " + f("out.tsv"));
        ASSERT_EQ(s.code, 0) << c.args << ": " << s.out;
        const auto at = s.out.find("recall@10 = ");
        ASSERT_NE(at, std::string::npos) << s.out;
        EXPECT_GE(std::stod(s.out.substr(at + 12, 6)), c.floor) << c.args << ": " << s.out;
        auto i = run("info " + idx);
        ASSERT_EQ(i.code, 0) << i.out;
        EXPECT_NE(i.out.find("bytes per vector resident"), std::string::npos) << i.out;
    }
    // Bad codec names and combinations are usage errors (exit 2) with a clear message.
    auto bad = run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --index-type flat --codec pq3x5");
    EXPECT_EQ(bad.code, 2) << bad.out;
    EXPECT_NE(bad.out.find("PQ bits must be 4 or 8"), std::string::npos) << bad.out;
    // HNSW walks SQ8 codes (HnswParams::codec) with a float32 re-score.
    auto hnsw = run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --index-type hnsw --codec sq8");
    EXPECT_EQ(hnsw.code, 0) << hnsw.out;
    auto nlist = run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --index-type flat --nlist 4");
    EXPECT_EQ(nlist.code, 2) << nlist.out;
    auto indivisible = run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --index-type flat --codec pq5x8");
    EXPECT_EQ(indivisible.code, 2) << indivisible.out;
    // A damaged code index is a runtime failure (exit 1) naming the file.
    std::string bytes = testing::read_bytes(f("codes.qvr"));
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x20);
    testing::write_bytes(f("codes.qvr"), bytes);
    // The middle lies in the float vectors' section: `info` defers it, `info --verify` checks it.
    auto damaged = run("info " + f("codes.qvr") + " --verify");
    EXPECT_EQ(damaged.code, 1) << damaged.out;
    EXPECT_NE(damaged.out.find("codes.qvr"), std::string::npos) << damaged.out;
    EXPECT_NE(damaged.out.find("section 'VECS'"), std::string::npos) << damaged.out;
}

TEST_F(Cli, JsonlIdsAreKept) {
    testing::write_bytes(f("v.jsonl"), "{\"id\": \"alpha\", \"vector\": [1, 0, 0]}\n"
                                       "{\"id\": \"beta\", \"vector\": [0, 1, 0]}\n"
                                       "{\"id\": \"gamma\", \"vector\": [0, 0, 1]}\n");
    testing::write_bytes(f("q.jsonl"), "{\"id\": \"q1\", \"vector\": [0.1, 0.9, 0]}\n");
    ASSERT_EQ(run("build -i " + f("v.jsonl") + " -o " + f("v.qvr") + " --index-type flat").code, 0);
    auto s = run("search --index-file " + f("v.qvr") + " -q " + f("q.jsonl") + " -k 1");
    ASSERT_EQ(s.code, 0) << s.out;
    EXPECT_NE(s.out.find("q1\t1\tbeta\t"), std::string::npos) << s.out;
}

TEST_F(Cli, FilteredBuildAndSearch) {
    // Attribute "g" = row % 10, "even" = row % 2 == 0; the filter g == 3 leaves rows 3, 13, 23, ...
    std::string attrs;
    for (int i = 0; i < 2000; ++i) {
        attrs += "{\"g\": " + std::to_string(i % 10) + ", \"even\": " + (i % 2 == 0 ? "true" : "false") + "}\n";
    }
    testing::write_bytes(f("attrs.jsonl"), attrs);
    auto b = run("build --input " + f("base.fvecs") + " --output " + f("a.qvr") + " --metric l2 --attributes " +
                 f("attrs.jsonl") + " --json");
    ASSERT_EQ(b.code, 0) << b.out;
    EXPECT_NE(b.out.find("a.qvr.attrs"), std::string::npos) << b.out;
    // Filtered ground truth by brute force over rows with g == 3.
    auto base = storage::read_vectors(f("base.fvecs"));
    auto queries = storage::read_vectors(f("query.fvecs"));
    ASSERT_TRUE(base && queries);
    for (const char* strategy : {"auto", "exact", "acorn", "post_filter"}) {
        auto s = run("search --index-file " + f("a.qvr") + " --queries " + f("query.fvecs") +
                     " --k 5 --ef 200 --filter '{\"field\": \"g\", \"eq\": 3}' --filter-strategy " + strategy +
                     " -o " + f("out.tsv"));
        ASSERT_EQ(s.code, 0) << s.out;
        const std::string tsv = testing::read_bytes(f("out.tsv"));
        std::size_t lines = 0, right = 0;
        for (std::size_t q = 0; q < 20; ++q) {
            std::vector<std::pair<double, std::size_t>> all;
            for (std::size_t i = 3; i < 2000; i += 10) {
                double d = 0;
                for (std::size_t j = 0; j < 16; ++j) {
                    const double x = base->vectors.row_ptr(i)[j] - queries->vectors.row_ptr(q)[j];
                    d += x * x;
                }
                all.emplace_back(d, i);
            }
            std::sort(all.begin(), all.end());
            for (std::size_t r = 0; r < 5; ++r) {
                const std::string want = std::to_string(q) + "\t" + std::to_string(r + 1) + "\t" + std::to_string(all[r].second) + "\t";
                right += tsv.find(want) != std::string::npos ? 1 : 0;
            }
        }
        for (char c : tsv) lines += c == '\n';
        EXPECT_EQ(lines, 1u + 20 * 5) << strategy;                            // always k results
        EXPECT_GE(right, std::string(strategy) == "exact" ? 100u : 95u) << strategy << "\n" << s.out;  // recall
    }
    auto j = run("search --index-file " + f("a.qvr") + " --queries " + f("query.fvecs") +
                 " --k 3 --max-queries 1 --json --filter '{\"field\": \"even\", \"eq\": true}'");
    ASSERT_EQ(j.code, 0) << j.out;
    EXPECT_NE(j.out.find("\"strategy\": \"exact\""), std::string::npos) << j.out;
    EXPECT_NE(j.out.find("\"matches\": 1000"), std::string::npos) << j.out;
    // Errors: an unknown field, a type mismatch, no attributes beside the index, a bad attributes file.
    EXPECT_EQ(run("search --index-file " + f("a.qvr") + " --queries " + f("query.fvecs") +
                  " --filter '{\"field\": \"zz\", \"eq\": 1}'").code, 2);
    EXPECT_EQ(run("search --index-file " + f("a.qvr") + " --queries " + f("query.fvecs") +
                  " --filter '{\"field\": \"g\", \"eq\": \"x\"}'").code, 2);
    ASSERT_EQ(run("build --input " + f("base.fvecs") + " --output " + f("plain.qvr") + " --metric l2").code, 0);
    auto no = run("search --index-file " + f("plain.qvr") + " --queries " + f("query.fvecs") +
                  " --filter '{\"field\": \"g\", \"eq\": 1}'");
    EXPECT_EQ(no.code, 2);
    EXPECT_NE(no.out.find("--attributes"), std::string::npos) << no.out;
    testing::write_bytes(f("short.jsonl"), "{\"g\": 1}\n");
    auto bad = run("build --input " + f("base.fvecs") + " --output " + f("s.qvr") + " --attributes " + f("short.jsonl"));
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.out.find("has 1 rows"), std::string::npos) << bad.out;
}

TEST_F(Cli, BadInputGivesClearErrorsNotCrashes) {
    // Missing file.
    auto r = run("build -i " + f("missing.fvecs") + " -o " + f("x.qvr"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("No such file"), std::string::npos) << r.out;
    // Empty file.
    testing::write_bytes(f("empty.fvecs"), "");
    r = run("build -i " + f("empty.fvecs") + " -o " + f("x.qvr"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("empty"), std::string::npos) << r.out;
    // Wrong format.
    testing::write_bytes(f("text.fvecs"), "hello world, not vectors at all\n");
    r = run("build -i " + f("text.fvecs") + " -o " + f("x.qvr"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
    // NaN.
    testing::write_bytes(f("nan.jsonl"), "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": [1e999, 2]}\n");
    r = run("build -i " + f("nan.jsonl") + " -o " + f("x.qvr"));
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
    // Dimension mismatch between index and queries.
    ASSERT_EQ(run("build -i " + f("base.fvecs") + " -o " + f("b.qvr")).code, 0);
    testing::write_bytes(f("q3.jsonl"), "{\"id\": 1, \"vector\": [1, 2, 3]}\n");
    r = run("search --index-file " + f("b.qvr") + " -q " + f("q3.jsonl"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("dimension 3"), std::string::npos) << r.out;
    // Corrupted and truncated index files.
    const std::string good = testing::read_bytes(f("b.qvr"));
    std::string bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x10);
    testing::write_bytes(f("bad.qvr"), bad);
    r = run("search --index-file " + f("bad.qvr") + " -q " + f("query.fvecs"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("corrupt"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bad.qvr"), std::string::npos) << r.out;
    testing::write_bytes(f("short.qvr"), good.substr(0, good.size() / 2));
    r = run("info " + f("short.qvr"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
    // Unknown metric / index kind / subcommand.
    r = run("build -i " + f("base.fvecs") + " -o " + f("x.qvr") + " --metric hamming");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("unknown metric"), std::string::npos) << r.out;
    EXPECT_NE(run("frobnicate").code, 0);
}

TEST_F(Cli, SparseKindRoutesToSparseCommands) {
    testing::write_bytes(f("d.jsonl"), "{\"id\": \"a\", \"vector\": {\"cat\": 1.5, \"dog\": 0.5}}\n"
                                       "{\"id\": \"b\", \"vector\": {\"dog\": 2.0, \"fish\": 1.0}}\n");
    testing::write_bytes(f("q.jsonl"), "{\"id\": \"q1\", \"vector\": {\"dog\": 1.0}}\n");
    for (const char* index : {"exact", "seismic"}) {
        const std::string out = f(std::string("s.") + index);
        auto b = run("build --kind sparse --input " + f("d.jsonl") + " --index-type " + index + " --output " + out);
        ASSERT_EQ(b.code, 0) << b.out;
        auto s = run("search --index-file " + out + " --queries " + f("q.jsonl") + " --k 2");
        ASSERT_EQ(s.code, 0) << s.out;
        EXPECT_NE(s.out.find("q1\t1\tb\t"), std::string::npos) << index << ": " << s.out;
    }
    EXPECT_EQ(run("build --kind hybrid -i " + f("base.fvecs") + " -o " + f("x.qvr")).code, 2);
}

TEST_F(Cli, IngestAndQueryTheEmbeddedStore) {
    // A BEIR directory gets the default schema (title + text searched together with BM25).
    std::filesystem::create_directories(f("beir"));
    testing::write_bytes(f("beir/corpus.jsonl"),
                         "{\"_id\": \"d1\", \"title\": \"Vitamin D\", \"text\": \"deficiency and bone health\"}\n"
                         "{\"_id\": \"d2\", \"title\": \"Cats\", \"text\": \"cats sleep most of the day\"}\n");
    auto ing = run("ingest --data " + f("store") + " --collection c --input " + f("beir"));
    ASSERT_EQ(ing.code, 0) << ing.out;
    auto q = run("query --data " + f("store") + " --collection c --text \"vitamin bone\" -k 2 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_NE(q.out.find("\"id\": \"d1\""), std::string::npos) << q.out;
    EXPECT_EQ(q.out.find("\"id\": \"d2\""), std::string::npos) << q.out;
    // Re-ingesting the same ids replaces them (upsert), the count stays 2.
    ing = run("ingest --data " + f("store") + " --collection c --input " + f("beir"));
    ASSERT_EQ(ing.code, 0) << ing.out;
    EXPECT_NE(ing.out.find("2 documents"), std::string::npos) << ing.out;
    // Clear errors: unknown collection, JSONL without a schema, malformed JSON.
    auto missing = run("query --data " + f("store") + " --collection nope --text x");
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.out.find("not found"), std::string::npos) << missing.out;
    testing::write_bytes(f("docs.jsonl"), "{\"id\": \"x\", \"text\": \"hello\"}\n");
    auto no_schema = run("ingest --data " + f("store") + " --collection fresh --input " + f("docs.jsonl"));
    EXPECT_EQ(no_schema.code, 2);
    EXPECT_NE(no_schema.out.find("--schema"), std::string::npos) << no_schema.out;
    testing::write_bytes(f("beir/corpus.jsonl"), "{\"_id\": \"d3\", \"title\": \n");
    auto bad = run("ingest --data " + f("store") + " --collection c --input " + f("beir"));
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.out.find("error"), std::string::npos) << bad.out;
}

TEST_F(Cli, HelpAndVersion) {
    auto v = run("--version");
    EXPECT_EQ(v.code, 0);
    EXPECT_NE(v.out.find("simd:"), std::string::npos);
    // The allocator the build linked (jemalloc when libjemalloc-dev is installed): the binary must
    // run on it, not merely name it (the name comes from jemalloc's own mallctl).
    EXPECT_NE(v.out.find("allocator: " QUIVER_ALLOCATOR), std::string::npos) << v.out;
    // jemalloc runs with the executable's own options (malloc_conf in main.cpp): purging on its
    // background thread.
    if (std::string(QUIVER_ALLOCATOR) == "jemalloc") {
        EXPECT_NE(v.out.find(", background_thread)"), std::string::npos) << v.out;
    }
    for (const char* cmd : {"build", "search", "gt", "info", "gen", "eval", "encode", "sparse-gen", "sparse-build",
                            "sparse-search", "serve", "ingest", "query"}) {
        auto h = run(std::string(cmd) + " --help");
        EXPECT_EQ(h.code, 0) << cmd;
        EXPECT_NE(h.out.find("Usage"), std::string::npos) << cmd;
    }
}

}  // namespace
}  // namespace quiver
