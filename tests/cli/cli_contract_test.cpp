// The command-line contract (docs/cli.md): exit codes for every subcommand, --json as a flag, ids
// that survive encode -> build -> search, duplicate ids refused, truth files checked before any
// result is printed, TREC runs, eval's warnings, progress lines when stderr is not a terminal.
// Every case runs the quiver binary as a subprocess, with stdout and stderr captured apart.
#include <fstream>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "quiver/core/json.h"
#include "quiver/storage/vector_io.h"
#include "testing/testing.h"

namespace quiver {
namespace {

struct Proc {
    int code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
};

std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

class CliContract : public ::testing::Test {
protected:
    // `env` is prepended to the command line ("QUIVER_PROGRESS_INTERVAL=0").
    Proc run(const std::string& args, const std::string& env = "") {
        const std::string err_path = dir_.file("stderr.txt");
        const std::string cmd = env + " " + std::string(QUIVER_CLI_PATH) + " " + args + " 2>" + err_path;
        const auto ran = testing::run_command(cmd);
        Proc r;
        r.code = ran.code;
        r.out = ran.out;
        r.err = testing::read_bytes(err_path);
        return r;
    }
    std::string f(const std::string& name) const { return dir_.file(name); }

    // A tiny BEIR collection: 6 documents, 2 judged queries.
    void write_beir(const std::string& dir) {
        std::filesystem::create_directories(dir + "/qrels");
        testing::write_bytes(dir + "/corpus.jsonl",
                             "{\"_id\": \"d1\", \"title\": \"Vitamin D\", \"text\": \"vitamin d deficiency and bone health\"}\n"
                             "{\"_id\": \"d2\", \"title\": \"Cats\", \"text\": \"cats sleep most of the day\"}\n"
                             "{\"_id\": \"d3\", \"title\": \"Bones\", \"text\": \"bone density in older adults\"}\n"
                             "{\"_id\": \"d4\", \"title\": \"Dogs\", \"text\": \"dogs chase cats in the garden\"}\n"
                             "{\"_id\": \"d5\", \"title\": \"Sun\", \"text\": \"sunlight makes vitamin d in the skin\"}\n"
                             "{\"_id\": \"d6\", \"title\": \"Fish\", \"text\": \"fish swim in the sea\"}\n");
        testing::write_bytes(dir + "/queries.jsonl", "{\"_id\": \"q1\", \"text\": \"vitamin d bone\"}\n"
                                                     "{\"_id\": \"q2\", \"text\": \"cats and dogs\"}\n");
        testing::write_bytes(dir + "/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td5\t1\nq2\td4\t1\n");
    }

    testing::TempDir dir_;
};

// ---- exit codes --------------------------------------------------------------------------------------

struct CommandCase {
    const char* command;   // subcommand (with `bench ann` for the benchmark driver)
    const char* required;  // every required option, with placeholder values
    const char* bad_value; // an option with a value of the wrong type or outside its set
};

const CommandCase kCommands[] = {
    {"gen", "--output /tmp/x", "--rows many"},
    {"build", "--input a.fvecs --output a.qvr", "--m lots"},
    {"search", "--index-file a.qvr --queries q.fvecs", "--k ten"},
    {"gt", "--base a.fvecs --queries q.fvecs --output gt.ivecs", "--k ten"},
    {"info", "a.qvr", "--json=maybe"},
    {"eval", "--dataset d", "--k many"},
    {"encode", "--model m --input i.jsonl --output o.npy", "--batch big"},
    {"tokenize", "--model m --input i.jsonl --output o.jsonl", "--max-length long"},
    {"sparse-gen", "--output-docs d.jsonl", "--docs many"},
    {"sparse-build", "--input d.jsonl --output d.seis", "--index-type nope"},
    {"sparse-search", "--index-file d.seis --queries q.jsonl", "--k ten"},
    {"serve", "--data d", "--port high"},
    {"ingest", "--data d --collection c --input i.jsonl", "--batch lots"},
    {"query", "--data d --collection c --text t", "-k lots"},
    {"bench ann", "--base a.fvecs --queries q.fvecs", "--k ten"},
};

TEST_F(CliContract, UsageErrorsExitTwoForEverySubcommand) {
    const bool have_bench = run("bench ann --help").code == 0;
    for (const CommandCase& c : kCommands) {
        const std::string cmd = c.command;
        if (cmd.rfind("bench", 0) == 0 && !have_bench) continue;  // the driver is built with QUIVER_BUILD_BENCH
        const std::string req = c.required;
        auto bad_flag = run(cmd + " " + req + " --no-such-flag");
        EXPECT_EQ(bad_flag.code, 2) << cmd << ": " << bad_flag.err;
        EXPECT_NE(bad_flag.err.find("no-such-flag"), std::string::npos) << cmd << ": " << bad_flag.err;
        auto missing = run(cmd);
        EXPECT_EQ(missing.code, 2) << cmd << ": " << missing.err;
        EXPECT_NE(missing.err.find("required"), std::string::npos) << cmd << ": " << missing.err;
        auto bad_value = run(cmd + " " + req + " " + c.bad_value);
        EXPECT_EQ(bad_value.code, 2) << cmd << " " << c.bad_value << ": " << bad_value.err;
        EXPECT_FALSE(bad_value.err.empty()) << cmd;
        auto help = run(cmd + " --help");
        EXPECT_EQ(help.code, 0) << cmd;
        EXPECT_NE(help.out.find("Usage"), std::string::npos) << cmd;
    }
    EXPECT_EQ(run("").code, 2);            // no subcommand
    EXPECT_EQ(run("frobnicate").code, 2);  // unknown subcommand
    EXPECT_EQ(run("--version").code, 0);
    if (have_bench) {
        EXPECT_EQ(run("bench nosuch").code, 2);
        EXPECT_EQ(run("bench --help").code, 0);
    }
}

TEST_F(CliContract, RuntimeAndInputErrorsExitOneAndTwo) {
    auto base = testing::clustered_matrix(200, 8, 4, 1);
    ASSERT_TRUE(storage::write_fvecs(f("base.fvecs"), base).ok());
    // Bad input (a missing file, a bad metric): 2.
    EXPECT_EQ(run("build --input " + f("none.fvecs") + " --output " + f("x.qvr")).code, 2);
    EXPECT_EQ(run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --metric hamming").code, 2);
    EXPECT_EQ(run("build --input " + f("base.fvecs") + " --output " + f("x.qvr") + " --index-type annoy").code, 2);
    // Corrupt data: 1.
    ASSERT_EQ(run("build --input " + f("base.fvecs") + " --output " + f("b.qvr") + " --index-type flat").code, 0);
    std::string bytes = testing::read_bytes(f("b.qvr"));
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x40);
    testing::write_bytes(f("bad.qvr"), bytes);
    auto r = run("info " + f("bad.qvr") + " --verify");  // the vectors' section is checked with --verify
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("quiver info: error:"), std::string::npos) << r.err;
    auto s = run("search --index-file " + f("bad.qvr") + " --queries " + f("base.fvecs") + " --k 1");  // or on first use
    EXPECT_EQ(s.code, 1) << s.err;
    EXPECT_NE(s.err.find("section 'VECS'"), std::string::npos) << s.err;
}

// ---- flag names ----------------------------------------------------------------------------------------

TEST_F(CliContract, OldFlagSpellingsStillWorkWithAWarning) {
    auto base = testing::clustered_matrix(300, 8, 4, 3);
    ASSERT_TRUE(storage::write_fvecs(f("base.fvecs"), base).ok());
    auto b = run("build --input " + f("base.fvecs") + " --output " + f("h.qvr") + " --index hnsw --M 8");
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_NE(b.err.find("--M is deprecated; use --m"), std::string::npos) << b.err;
    EXPECT_NE(b.err.find("--index is deprecated; use --index-type"), std::string::npos) << b.err;
    auto s = run("search --index=" + f("h.qvr") + " --queries " + f("base.fvecs") + " --k 1 --max-queries 2");
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_NE(s.err.find("use --index-file"), std::string::npos) << s.err;
    EXPECT_EQ(count_lines(s.out), 3u) << s.out;
    auto i = run("info --index-file " + f("h.qvr") + " --json");
    ASSERT_EQ(i.code, 0) << i.err;
    auto j = json::parse(i.out);
    ASSERT_TRUE(j.ok()) << i.out;
    EXPECT_EQ(j->find("vectors")->as_number(), 300);
}

// ---- ids: encode -> build -> search ------------------------------------------------------------------

TEST_F(CliContract, EncodeBuildSearchReportsDocumentIds) {
    const std::string model = std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/bert-mean";
    write_beir(f("beir"));
    auto e = run("encode --model " + model + " --input " + f("beir/corpus.jsonl") + " --output " + f("corpus.npy"));
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_EQ(testing::read_bytes(f("corpus.ids")), "d1\nd2\nd3\nd4\nd5\nd6\n");
    e = run("encode --model " + model + " --input " + f("beir/queries.jsonl") + " --output " + f("queries.npy"));
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_EQ(testing::read_bytes(f("queries.ids")), "q1\nq2\n");
    auto b = run("build --input " + f("corpus.npy") + " --output " + f("corpus.qvr") + " --index-type flat --json");
    ASSERT_EQ(b.code, 0) << b.err;
    auto bj = json::parse(b.out);
    ASSERT_TRUE(bj.ok()) << b.out;
    EXPECT_EQ(bj->find("ids")->as_string(), f("corpus.ids"));
    auto s = run("search --index-file " + f("corpus.qvr") + " --queries " + f("queries.npy") + " --k 6 --trec " +
                 f("run.trec"));
    ASSERT_EQ(s.code, 0) << s.err;
    // Every hit names a document id and every row a query id: no row numbers.
    std::istringstream lines(s.out);
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(line, "query\trank\tid\tdistance");
    std::size_t hits = 0;
    while (std::getline(lines, line)) {
        ++hits;
        EXPECT_TRUE(line.rfind("q1\t", 0) == 0 || line.rfind("q2\t", 0) == 0) << line;
        const auto id_at = line.find('\t', line.find('\t') + 1) + 1;
        EXPECT_EQ(line[id_at], 'd') << line;
    }
    EXPECT_EQ(hits, 12u);
    EXPECT_NE(s.err.find("2 queries in "), std::string::npos) << s.err;
    EXPECT_NE(s.err.find(" QPS"), std::string::npos) << s.err;
    // --latency: one query per call, the same hits, per-query percentiles in the summary.
    auto sl = run("search --index-file " + f("corpus.qvr") + " --queries " + f("queries.npy") + " --k 6 --latency");
    ASSERT_EQ(sl.code, 0) << sl.err;
    EXPECT_EQ(sl.out, s.out);
    EXPECT_NE(sl.err.find("threads=1); latency p50 "), std::string::npos) << sl.err;
    EXPECT_NE(sl.err.find(" ms, p99 "), std::string::npos) << sl.err;
    // The TREC run: 6 columns, ranks 1..6, scores descending, and eval reads it.
    const std::string trec = testing::read_bytes(f("run.trec"));
    EXPECT_EQ(count_lines(trec), 12u) << trec;
    EXPECT_EQ(trec.rfind("q1 Q0 d", 0), 0u) << trec;
    EXPECT_NE(trec.find(" 6 "), std::string::npos) << trec;
    EXPECT_NE(trec.find(" quiver\n"), std::string::npos) << trec;
    auto ev = run("eval --dataset " + f("beir") + " --run-file " + f("run.trec") + " --metrics recall@6 --json");
    ASSERT_EQ(ev.code, 0) << ev.err;
    auto j = json::parse(ev.out);
    ASSERT_TRUE(j.ok()) << ev.out;
    // Six of six documents retrieved: every judged document is in the run.
    EXPECT_DOUBLE_EQ(j->find("metrics")->find("recall@6")->as_number(), 1.0);
    EXPECT_EQ(ev.err.find("warning"), std::string::npos) << ev.err;
}

TEST_F(CliContract, DuplicateIdsAreErrors) {
    testing::write_bytes(f("v.jsonl"), "{\"id\": \"a\", \"vector\": [1, 0]}\n{\"id\": \"b\", \"vector\": [0, 1]}\n"
                                       "{\"id\": \"a\", \"vector\": [1, 1]}\n");
    auto b = run("build --input " + f("v.jsonl") + " --output " + f("v.qvr") + " --index-type flat");
    EXPECT_EQ(b.code, 2);
    EXPECT_NE(b.err.find("duplicate id 'a' at rows 1 and 3"), std::string::npos) << b.err;
    EXPECT_FALSE(std::filesystem::exists(f("v.qvr")));
    // The ids file beside .npy/.fvecs: duplicates, and a count that is not the row count.
    auto m = testing::clustered_matrix(3, 2, 1, 5);
    ASSERT_TRUE(storage::write_fvecs(f("w.fvecs"), m).ok());
    testing::write_bytes(f("w.ids"), "x\ny\nx\n");
    b = run("build --input " + f("w.fvecs") + " --output " + f("w.qvr") + " --index-type flat");
    EXPECT_EQ(b.code, 2);
    EXPECT_NE(b.err.find("duplicate id 'x' at lines 1 and 3"), std::string::npos) << b.err;
    testing::write_bytes(f("w.ids"), "x\ny\n");
    b = run("build --input " + f("w.fvecs") + " --output " + f("w.qvr") + " --index-type flat");
    EXPECT_EQ(b.code, 2);
    EXPECT_NE(b.err.find("has 2 ids but"), std::string::npos) << b.err;
    // Duplicate query ids (a TREC run could not tell them apart).
    testing::write_bytes(f("w.ids"), "x\ny\nz\n");
    ASSERT_EQ(run("build --input " + f("w.fvecs") + " --output " + f("w.qvr") + " --index-type flat").code, 0);
    testing::write_bytes(f("q.jsonl"), "{\"id\": \"q\", \"vector\": [1, 0]}\n{\"id\": \"q\", \"vector\": [0, 1]}\n");
    auto s = run("search --index-file " + f("w.qvr") + " --queries " + f("q.jsonl"));
    EXPECT_EQ(s.code, 2);
    EXPECT_TRUE(s.out.empty()) << s.out;
    // encode: duplicate record ids.
    testing::write_bytes(f("c.jsonl"), "{\"_id\": \"1\", \"text\": \"one\"}\n{\"_id\": \"1\", \"text\": \"uno\"}\n");
    auto e = run("encode --model " + std::string(QUIVER_SOURCE_DIR) + "/tests/data/encode/bert-mean --input " +
                 f("c.jsonl") + " --output " + f("c.npy"));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(e.err.find("duplicate id '1' at records 1 and 2"), std::string::npos) << e.err;
    // eval: a document twice in the corpus.
    write_beir(f("beir"));
    testing::write_bytes(f("beir/corpus.jsonl"), testing::read_bytes(f("beir/corpus.jsonl")) +
                                                     "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"again\"}\n");
    auto ev = run("eval --dataset " + f("beir") + " --retriever bm25 --quiet");
    EXPECT_EQ(ev.code, 2);
    EXPECT_NE(ev.err.find("document id 'd2' appears more than once"), std::string::npos) << ev.err;
}

TEST_F(CliContract, ZeroQueriesUnderCosineGetNoHitsAndShiftNothing) {
    testing::write_bytes(f("v.jsonl"), "{\"id\": \"a\", \"vector\": [1, 0, 0]}\n{\"id\": \"b\", \"vector\": [0, 1, 0]}\n"
                                       "{\"id\": \"c\", \"vector\": [0, 0, 1]}\n");
    std::string queries;
    for (int i = 0; i < 40; ++i) {  // 40 queries: the batched (BLAS) path of the flat index
        const char* v = i == 3 ? "[0, 0, 0]" : (i % 3 == 0 ? "[1, 0.1, 0]" : (i % 3 == 1 ? "[0, 1, 0.1]" : "[0.1, 0, 1]"));
        queries += "{\"id\": \"q" + std::to_string(i) + "\", \"vector\": " + v + "}\n";
    }
    testing::write_bytes(f("q.jsonl"), queries);
    ASSERT_EQ(run("build --input " + f("v.jsonl") + " --output " + f("v.qvr") + " --index-type flat").code, 0);
    auto s = run("search --index-file " + f("v.qvr") + " --queries " + f("q.jsonl") + " --k 1");
    ASSERT_EQ(s.code, 0) << s.err;
    EXPECT_NE(s.err.find("1 of 40 queries are zero vectors"), std::string::npos) << s.err;
    EXPECT_NE(s.err.find("the first is query 'q3'"), std::string::npos) << s.err;
    EXPECT_EQ(count_lines(s.out), 1u + 39);
    EXPECT_EQ(s.out.find("q3\t"), std::string::npos) << s.out;
    for (int i = 0; i < 40; ++i) {
        if (i == 3) continue;
        const std::string want = "q" + std::to_string(i) + "\t1\t" + std::string(1, "abc"[i % 3]) + "\t";
        EXPECT_NE(s.out.find(want), std::string::npos) << want << "\n" << s.out;
    }
}

TEST_F(CliContract, SparseCommandsFollowTheSameRules) {
    auto g = run("sparse-gen --docs 300 --queries 4 --vocab 2000 --topics 20 --output-docs " + f("d.jsonl") +
                 " --output-queries " + f("q.jsonl"));
    ASSERT_EQ(g.code, 0) << g.err;
    for (const char* type : {"exact", "seismic"}) {
        const std::string idx = f(std::string("s.") + type);
        auto b = run("build --kind sparse --input " + f("d.jsonl") + " --index-type " + type + " --output " + idx);
        ASSERT_EQ(b.code, 0) << b.err;
        auto s = run("search --index-file " + idx + " --queries " + f("q.jsonl") + " --k 5 --json --trec " +
                     f("s.trec") + " --tag sp");
        ASSERT_EQ(s.code, 0) << s.err;
        auto j = json::parse(s.out);
        ASSERT_TRUE(j.ok()) << s.out;
        ASSERT_EQ(j->as_array().size(), 4u);
        EXPECT_EQ(j->as_array()[0].find("hits")->as_array().size(), 5u);
        EXPECT_NE(s.err.find("4 queries in "), std::string::npos) << s.err;
        const std::string trec = testing::read_bytes(f("s.trec"));
        EXPECT_EQ(count_lines(trec), 20u) << trec;
        EXPECT_NE(trec.find(" 5 "), std::string::npos);
        EXPECT_NE(trec.find(" sp\n"), std::string::npos);
    }
    // A query id twice: refused.
    const std::string q = testing::read_bytes(f("q.jsonl"));
    testing::write_bytes(f("q2.jsonl"), q + q.substr(0, q.find('\n') + 1));
    auto dup = run("sparse-search --index-file " + f("s.exact") + " --queries " + f("q2.jsonl"));
    EXPECT_EQ(dup.code, 2);
    EXPECT_NE(dup.err.find("duplicate id"), std::string::npos) << dup.err;
    EXPECT_TRUE(dup.out.empty());
    // Old spellings still work.
    auto old = run("sparse-gen --docs 50 --queries 1 --vocab 2000 --topics 5 --out-docs " + f("o.jsonl"));
    EXPECT_EQ(old.code, 0) << old.err;
    EXPECT_NE(old.err.find("--out-docs is deprecated; use --output-docs"), std::string::npos) << old.err;
}

// ---- search --truth ----------------------------------------------------------------------------------

TEST_F(CliContract, TruthIsCheckedBeforeAnyResultIsPrinted) {
    // Rows of very different norms: l2 and inner-product neighbours disagree.
    auto base = testing::random_matrix(1000, 12, 11);
    for (std::size_t r = 0; r < base.rows; ++r) {
        for (std::size_t j = 0; j < base.dim; ++j) base.row_ptr(r)[j] *= static_cast<float>(1 + r % 9);
    }
    auto queries = testing::random_matrix(50, 12, 12);
    ASSERT_TRUE(storage::write_fvecs(f("base.fvecs"), base).ok());
    ASSERT_TRUE(storage::write_fvecs(f("query.fvecs"), queries).ok());
    const std::string q = " --queries " + f("query.fvecs");
    ASSERT_EQ(run("gt --base " + f("base.fvecs") + q + " --k 10 --metric l2 --output " + f("gt-l2.ivecs")).code, 0);
    ASSERT_EQ(run("gt --base " + f("base.fvecs") + q + " --k 10 --metric ip --output " + f("gt-ip.ivecs")).code, 0);
    for (const char* type : {"flat", "hnsw"}) {
        const std::string idx = f(std::string("l2-") + type + ".qvr");
        ASSERT_EQ(run("build --input " + f("base.fvecs") + " --output " + idx + " --metric l2 --index-type " + type).code, 0);
        // The right truth: accepted, recall printed.
        auto ok = run("search --index-file " + idx + q + " --k 10 --ef 200 --truth " + f("gt-l2.ivecs"));
        ASSERT_EQ(ok.code, 0) << type << ": " << ok.err;
        EXPECT_NE(ok.err.find("recall@10 = "), std::string::npos) << ok.err;
        EXPECT_EQ(count_lines(ok.out), 1u + 50 * 10);
        // Another metric's truth: refused before a single result line.
        auto wrong = run("search --index-file " + idx + q + " --k 10 --truth " + f("gt-ip.ivecs"));
        EXPECT_EQ(wrong.code, 2) << type << ": " << wrong.err;
        EXPECT_TRUE(wrong.out.empty()) << wrong.out;
        EXPECT_NE(wrong.err.find("under the index's metric (l2)"), std::string::npos) << wrong.err;
    }
    const std::string idx = f("l2-flat.qvr");
    // Too few rows, too few columns.
    auto few = testing::clustered_matrix(10, 12, 2, 1);
    ASSERT_TRUE(storage::write_fvecs(f("few.fvecs"), few).ok());
    ASSERT_EQ(run("gt --base " + f("base.fvecs") + " --queries " + f("few.fvecs") + " --k 10 --metric l2 --output " +
                  f("gt-few.ivecs")).code, 0);
    auto small = run("search --index-file " + idx + q + " --k 10 --truth " + f("gt-few.ivecs"));
    EXPECT_EQ(small.code, 2);
    EXPECT_TRUE(small.out.empty()) << small.out;
    EXPECT_NE(small.err.find("has 10 rows of 10 ids"), std::string::npos) << small.err;
    auto deep = run("search --index-file " + idx + q + " --k 20 --truth " + f("gt-l2.ivecs"));
    EXPECT_EQ(deep.code, 2);
    EXPECT_TRUE(deep.out.empty());
    // Truth for a larger base: ids beyond the index.
    auto big = testing::random_matrix(3000, 12, 13);
    ASSERT_TRUE(storage::write_fvecs(f("big.fvecs"), big).ok());
    ASSERT_EQ(run("gt --base " + f("big.fvecs") + q + " --k 10 --metric l2 --output " + f("gt-big.ivecs")).code, 0);
    auto other = run("search --index-file " + idx + q + " --k 10 --truth " + f("gt-big.ivecs"));
    EXPECT_EQ(other.code, 2);
    EXPECT_TRUE(other.out.empty());
    EXPECT_NE(other.err.find("holds 1000 vectors"), std::string::npos) << other.err;
}

// ---- eval ------------------------------------------------------------------------------------------------

TEST_F(CliContract, EvalJsonFlagOutputFileAndDisjointRunWarnings) {
    write_beir(f("beir"));
    auto ev = run("eval --dataset " + f("beir") + " --retriever bm25 --metrics ndcg@10 --json --output " +
                  f("report.json") + " --trec " + f("bm25.trec"));
    ASSERT_EQ(ev.code, 0) << ev.err;
    auto j = json::parse(ev.out);
    ASSERT_TRUE(j.ok()) << ev.out;  // stdout is the JSON report alone
    EXPECT_EQ(testing::read_bytes(f("report.json")), ev.out);
    EXPECT_GT(j->find("metrics")->find("ndcg@10")->as_number(), 0.5);
    EXPECT_GT(count_lines(testing::read_bytes(f("bm25.trec"))), 2u);
    // Without --json: the table on stdout.
    auto table = run("eval --dataset " + f("beir") + " --run-file " + f("bm25.trec") + " --metrics ndcg@10");
    ASSERT_EQ(table.code, 0);
    EXPECT_NE(table.out.find("ndcg@10"), std::string::npos);
    EXPECT_FALSE(json::parse(table.out).ok());
    // A run of another collection: no shared query ids, no shared document ids -> warnings, rc 0.
    testing::write_bytes(f("other.trec"), "Q7 Q0 X1 1 2.0 t\nQ7 Q0 X2 2 1.0 t\n");
    auto other = run("eval --dataset " + f("beir") + " --run-file " + f("other.trec") + " --metrics ndcg@10");
    EXPECT_EQ(other.code, 0);
    EXPECT_NE(other.err.find("shares no query id"), std::string::npos) << other.err;
    EXPECT_NE(other.err.find("shares no document id"), std::string::npos) << other.err;
    // Right queries, wrong documents.
    testing::write_bytes(f("docs.trec"), "q1 Q0 X1 1 2.0 t\nq2 Q0 X2 1 1.0 t\n");
    auto docs = run("eval --dataset " + f("beir") + " --run-file " + f("docs.trec") + " --metrics ndcg@10");
    EXPECT_EQ(docs.code, 0);
    EXPECT_EQ(docs.err.find("shares no query id"), std::string::npos) << docs.err;
    EXPECT_NE(docs.err.find("shares no document id"), std::string::npos) << docs.err;
    // --json no longer takes a file name.
    EXPECT_EQ(run("eval --dataset " + f("beir") + " --run-file " + f("bm25.trec") + " --json " + f("x.json")).code, 2);
}

// ---- progress ----------------------------------------------------------------------------------------

TEST_F(CliContract, ProgressLinesWhenStderrIsNotATerminal) {
    auto base = testing::clustered_matrix(3000, 8, 10, 21);
    ASSERT_TRUE(storage::write_fvecs(f("base.fvecs"), base).ok());
    const std::string gt = "gt --base " + f("base.fvecs") + " --queries " + f("base.fvecs") + " --k 5 --metric l2 --output " +
                           f("gt.ivecs");
    // Interval 0: a line per step (1024 queries), then a final line.
    auto lines = run(gt, "QUIVER_PROGRESS_INTERVAL=0");
    ASSERT_EQ(lines.code, 0) << lines.err;
    EXPECT_NE(lines.err.find("ground truth: 1024/3000 queries"), std::string::npos) << lines.err;
    EXPECT_NE(lines.err.find("ground truth: 3000/3000 queries (100.0%)"), std::string::npos) << lines.err;
    EXPECT_NE(lines.err.find(", done\n"), std::string::npos) << lines.err;
    EXPECT_EQ(lines.err.find('\r'), std::string::npos) << "no carriage returns in a log";
    // The default interval (5 s): short work prints nothing; QUIVER_PROGRESS=0 prints nothing.
    auto quiet = run(gt);
    ASSERT_EQ(quiet.code, 0);
    EXPECT_EQ(quiet.err.find("ground truth:"), std::string::npos) << quiet.err;
    auto off = run(gt, "QUIVER_PROGRESS=0 QUIVER_PROGRESS_INTERVAL=0");
    EXPECT_EQ(off.err.find("ground truth:"), std::string::npos) << off.err;
    // search and build report too.
    auto b = run("build --input " + f("base.fvecs") + " --output " + f("b.qvr") + " --metric l2 --m 8",
                 "QUIVER_PROGRESS_INTERVAL=0");
    ASSERT_EQ(b.code, 0);
    EXPECT_NE(b.err.find("building hnsw: 3000/3000 vectors"), std::string::npos) << b.err.substr(0, 400);
    auto s = run("search --index-file " + f("b.qvr") + " --queries " + f("base.fvecs") + " --output /dev/null",
                 "QUIVER_PROGRESS_INTERVAL=0");
    ASSERT_EQ(s.code, 0);
    EXPECT_NE(s.err.find("searching: 2048/3000 queries"), std::string::npos) << s.err;
    EXPECT_NE(s.err.find("3000 queries in "), std::string::npos) << s.err;
    // The benchmark driver: the build and every pass of the ef sweep.
    if (run("bench ann --help").code == 0) {
        auto bench = run("bench ann --base " + f("base.fvecs") + " --queries " + f("base.fvecs") +
                             " --max-queries 50 --metric l2 --peers none --codecs none --seeds 1 --ef 10,20"
                             " --repeat 2 --no-flat --json " + f("bench.json"),
                         "QUIVER_PROGRESS_INTERVAL=0");
        ASSERT_EQ(bench.code, 0) << bench.err;
        EXPECT_NE(bench.err.find("quiver-hnsw build: 3000/3000 vectors"), std::string::npos) << bench.err;
        EXPECT_NE(bench.err.find("ef sweep, seed 100: 1/4 passes"), std::string::npos) << bench.err;
        EXPECT_NE(bench.err.find("ef sweep, seed 100: 4/4 passes (100.0%)"), std::string::npos) << bench.err;
        // Both cache states are timed and reported: a warm and a cold QPS for every point.
        EXPECT_NE(bench.out.find("QPS @ target warm    cold"), std::string::npos) << bench.out;
        std::ifstream in(f("bench.json"));
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto j = json::parse(text);
        ASSERT_TRUE(j.ok()) << text.substr(0, 400);
        const json::Value* points = j->find("points");
        ASSERT_TRUE(points != nullptr && points->is_array());
        ASSERT_EQ(points->as_array().size(), 2u);
        for (const auto& p : points->as_array()) {
            ASSERT_TRUE(p.find("qps") != nullptr && p.find("qps_cold") != nullptr);
            EXPECT_GT(p.find("qps")->as_number(), 0.0);
            EXPECT_GT(p.find("qps_cold")->as_number(), 0.0);
        }
        const json::Value* summary = j->find("summary");
        ASSERT_TRUE(summary != nullptr && summary->is_array() && !summary->as_array().empty());
        const json::Value* cold = summary->as_array()[0].find("cold_qps_at_target_per_seed");
        ASSERT_TRUE(cold != nullptr && cold->is_array());
        EXPECT_EQ(cold->as_array().size(), 1u);
        // An output it cannot write is refused at once (exit 2, naming it), not after the sweep.
        auto bad = run("bench ann --base " + f("base.fvecs") + " --queries " + f("base.fvecs") +
                       " --peers none --codecs none --seeds 1 --ef 10 --no-flat --json " + f("no/such/dir/b.json"));
        EXPECT_EQ(bad.code, 2) << bad.err;
        EXPECT_NE(bad.err.find("cannot write " + f("no/such/dir/b.json")), std::string::npos) << bad.err;
        EXPECT_EQ(bad.err.find("build:"), std::string::npos) << bad.err;
    }
}

}  // namespace
}  // namespace quiver
