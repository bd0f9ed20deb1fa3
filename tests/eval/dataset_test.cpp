#include "quiver/eval/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "testing/testing.h"

namespace quiver::eval {
namespace {

bool has_warning(const Dataset& ds, const std::string& needle) {
    for (const auto& w : ds.warnings) {
        if (w.find(needle) != std::string::npos) return true;
    }
    return false;
}

void write_beir(const testing::TempDir& dir, const std::string& corpus, const std::string& queries,
                const std::string& qrels) {
    testing::write_bytes(dir.file("corpus.jsonl"), corpus);
    testing::write_bytes(dir.file("queries.jsonl"), queries);
    std::filesystem::create_directories(dir.file("qrels"));
    testing::write_bytes(dir.file("qrels/test.tsv"), qrels);
}

TEST(BeirLoader, LoadsAndWarns) {
    testing::TempDir dir;
    write_beir(dir,
               "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"alpha\"}\n"
               "{\"_id\": 2, \"text\": \"beta\", \"metadata\": {}}\n\n",
               "{\"_id\": \"q1\", \"text\": \"alpha?\"}\n{\"_id\": \"q2\", \"text\": \"  \"}\n"
               "{\"_id\": \"q3\", \"text\": \"unjudged\"}\n",
               "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tghost\t1\nq2\t2\t1\nq7\td1\t1\n");
    ASSERT_EQ(*detect_layout(dir.path()), Layout::kBeir);
    auto ds = load_dataset(dir.path());
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    EXPECT_EQ(ds->documents.size(), 2u);
    EXPECT_EQ(ds->documents[1].id, "2");
    EXPECT_EQ(ds->documents[0].title, "T");
    ASSERT_EQ(ds->queries.size(), 2u);  // q3 has no judgments in this split
    EXPECT_EQ(ds->qrels.size(), 2u);    // q7 has no query text
    EXPECT_TRUE(has_warning(*ds, "not in the corpus"));
    EXPECT_TRUE(has_warning(*ds, "empty text"));
    EXPECT_TRUE(has_warning(*ds, "no query text"));
}

TEST(BeirLoader, ReportsFileAndLine) {
    testing::TempDir dir;
    write_beir(dir, "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d2\", \"text\": \"a\"\n", "{\"_id\":\"q\",\"text\":\"a\"}\n",
               "q\td1\t1\n");
    auto ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(ds.error().message().find("corpus.jsonl:2"), std::string::npos) << ds.error().message();

    write_beir(dir, "{\"_id\": \"d1\", \"title\": \"a\"}\n", "{\"_id\":\"q\",\"text\":\"a\"}\n", "q\td1\t1\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("corpus.jsonl:1: missing string field \"text\""), std::string::npos)
        << ds.error().message();

    write_beir(dir, "{\"_id\": \"d1\", \"text\": \"a\"}\n", "{\"_id\":\"q\",\"text\":\"a\"}\n", "query-id\tcorpus-id\tscore\nq\td1\tx\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("test.tsv:2"), std::string::npos) << ds.error().message();

    write_beir(dir, "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n",
               "{\"_id\":\"q\",\"text\":\"a\"}\n", "q\td1\t1\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("more than once"), std::string::npos);
}

TEST(BeirLoader, MissingPieces) {
    auto ds = load_dataset("/nonexistent/quiver/dataset");
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.error().code(), ErrorCode::kNotFound);
    testing::TempDir dir;
    testing::write_bytes(dir.file("corpus.jsonl"), "{\"_id\":\"d\",\"text\":\"x\"}\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("qrels"), std::string::npos);
    testing::TempDir empty;
    EXPECT_FALSE(load_dataset(empty.path()).ok());
}

TEST(BeirLoader, LimitJsonlQrels) {
    testing::TempDir dir;
    testing::write_bytes(dir.file("corpus.jsonl"), "{\"_id\":\"Ann\",\"title\":\"\",\"text\":\"Ann likes tea\"}\n");
    testing::write_bytes(dir.file("queries.jsonl"), "{\"_id\":\"query_0\",\"text\":\"Who likes tea?\"}\n");
    testing::write_bytes(dir.file("qrels.jsonl"), "{\"query-id\": \"query_0\", \"corpus-id\": \"Ann\", \"score\": 1}\n");
    auto ds = load_dataset(dir.path());
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    EXPECT_EQ(ds->qrels.at("query_0").at("Ann"), 1);
    testing::write_bytes(dir.file("qrels.jsonl"), "{\"query-id\": \"query_0\", \"corpus-id\": \"Ann\"}\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("qrels.jsonl:1"), std::string::npos);
}

TEST(TrecLoader, DocumentsTopicsQrels) {
    testing::TempDir dir;
    testing::write_bytes(dir.file("docs.txt"),
                         "<DOC>\n<DOCNO> FT-1 </DOCNO>\n<TEXT>Oil prices rose.</TEXT>\n</DOC>\n"
                         "<DOC>\n<DOCNO>FT-2</DOCNO>\n<HEADLINE>Rain</HEADLINE><TEXT>Wet</TEXT>\n</DOC>\n");
    testing::write_bytes(dir.file("topics.301"),
                         "<top>\n<num> Number: 301\n<title> oil prices\n<desc> Description:\nx\n</top>\n");
    testing::write_bytes(dir.file("qrels.301"), "301 0 FT-1 1\n301 0 FT-2 0\n");
    ASSERT_EQ(*detect_layout(dir.path()), Layout::kTrec);
    auto ds = load_dataset(dir.path());
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 2u);
    EXPECT_EQ(ds->documents[0].id, "FT-1");
    EXPECT_NE(ds->documents[1].text.find("Rain"), std::string::npos);
    ASSERT_EQ(ds->queries.size(), 1u);
    EXPECT_EQ(ds->queries[0].id, "301");
    EXPECT_EQ(ds->queries[0].text, "oil prices");
    EXPECT_EQ(ds->qrels.at("301").at("FT-2"), 0);

    testing::write_bytes(dir.file("docs.txt"), "<DOC>\n<TEXT>no number</TEXT>\n</DOC>\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("docs.txt:1"), std::string::npos) << ds.error().message();
}

TEST(SmartLoader, CranfieldOrdinalQueryNumbers) {
    testing::TempDir dir;
    testing::write_bytes(dir.file("cran.all.3"),
                         ".I 1\n.T\nwing flow\n.A\nx\n.B\ny\n.W\nwing flow .\n.I 2\n.T\n.W\n.I 3\n.T\nheat\n.W\nheat\n");
    testing::write_bytes(dir.file("cran.qry"), ".I 001\n.W\nwing ?\n.I 004\n.W\nheat\n");
    testing::write_bytes(dir.file("cranqrel"), "1 1 2\n2 3 1\n2 2 -1\n");
    ASSERT_EQ(*detect_layout(dir.path()), Layout::kSmart);
    auto ds = load_dataset(dir.path());
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 3u);
    EXPECT_EQ(ds->documents[0].title, "wing flow");
    EXPECT_EQ(ds->documents[1].text, "");
    ASSERT_EQ(ds->queries.size(), 2u);
    EXPECT_EQ(ds->queries[1].id, "2");  // .I 004 is the second query
    EXPECT_EQ(ds->queries[1].text, "heat");
    EXPECT_EQ(ds->qrels.at("1").at("1"), 3);   // grade 2 -> gain 3
    EXPECT_EQ(ds->qrels.at("2").at("3"), 4);   // grade 1 (complete answer) -> gain 4
    EXPECT_EQ(ds->qrels.at("2").at("2"), -1);  // not relevant
    EXPECT_TRUE(has_warning(*ds, "by position"));

    testing::write_bytes(dir.file("cran.qry"), ".W\nwing\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("cran.qry:1"), std::string::npos) << ds.error().message();
}

std::string fixture(const std::string& name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/eval/" + name; }

// Terrier's TREC layout as shipped (Vaswani, NPL): doc-text.trec, query-text.trec, qrels; no file
// name says "topic", so only the contents identify the parts.
TEST(LayoutByContent, TerrierTrecFolder) {
    ASSERT_EQ(*detect_layout(fixture("terrier-trec")), Layout::kTrec);
    auto ds = load_dataset(fixture("terrier-trec"));
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 3u);
    EXPECT_EQ(ds->documents[2].id, "3");
    ASSERT_EQ(ds->queries.size(), 2u);
    EXPECT_EQ(ds->queries[0].id, "1");
    EXPECT_EQ(ds->queries[0].text, "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES");
    EXPECT_EQ(ds->qrels.at("1").at("3"), 1);
    EXPECT_EQ(ds->qrels.at("1").at("1"), 0);
    EXPECT_EQ(ds->qrels.at("2").at("2"), 1);
    auto corpus = load_corpus(fixture("terrier-trec"));
    ASSERT_TRUE(corpus.ok());
    EXPECT_EQ(corpus->documents.size(), 3u);
    EXPECT_TRUE(corpus->queries.empty());
}

// SMART with names that say nothing: documents have .T/.A fields, queries only .W, qrels 3 integers.
TEST(LayoutByContent, SmartWithoutTellingNames) {
    ASSERT_EQ(*detect_layout(fixture("smart")), Layout::kSmart);
    auto ds = load_dataset(fixture("smart"));
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 2u);
    EXPECT_EQ(ds->documents[1].title, "simple shear flow past a flat plate in an incompressible fluid .");
    ASSERT_EQ(ds->queries.size(), 2u);
    EXPECT_EQ(ds->queries[1].id, "2");  // ordinal numbering (.I 004 is the second query)
    EXPECT_EQ(ds->qrels.at("1").at("1"), 3);
    EXPECT_EQ(ds->qrels.at("2").at("2"), 4);
    auto corpus = load_corpus(fixture("smart"));
    ASSERT_TRUE(corpus.ok());
    EXPECT_EQ(corpus->documents.size(), 2u);
}

TEST(LayoutByContent, BeirMetadataKept) {
    auto ds = load_dataset(fixture("beir-metadata"));
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    ASSERT_EQ(ds->documents.size(), 3u);
    ASSERT_TRUE(ds->documents[0].metadata.is_object());
    EXPECT_EQ(ds->documents[0].metadata.find("url")->as_string(), "https://example.org/a");
    EXPECT_EQ(ds->documents[0].metadata.find("year")->as_int(), 2019);
    EXPECT_TRUE(ds->documents[2].metadata.is_null());
    EXPECT_EQ(ds->queries.size(), 2u);

    testing::TempDir dir;
    write_beir(dir, "{\"_id\": \"d1\", \"text\": \"a\", \"metadata\": 3}\n", "{\"_id\":\"q\",\"text\":\"a\"}\n",
               "q\td1\t1\n");
    auto bad = load_dataset(dir.path());
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("corpus.jsonl:1: \"metadata\" must be an object"), std::string::npos)
        << bad.error().message();
}

TEST(LayoutByContent, AmbiguousAndMissingParts) {
    testing::TempDir dir;
    testing::write_bytes(dir.file("a.trec"), "<DOC>\n<DOCNO>1</DOCNO>\nx\n</DOC>\n");
    testing::write_bytes(dir.file("b.trec"), "<top>\n<num>1</num><title>x</title>\n</top>\n");
    auto ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.error().code(), ErrorCode::kNotFound);
    EXPECT_NE(ds.error().message().find("no qrels file"), std::string::npos) << ds.error().message();
    EXPECT_TRUE(load_corpus(dir.path()).ok());  // serving needs no judgments
    testing::write_bytes(dir.file("q1"), "1 0 1 1\n");
    testing::write_bytes(dir.file("q2"), "1 0 1 1\n");
    ds = load_dataset(dir.path());
    ASSERT_FALSE(ds.ok());
    EXPECT_NE(ds.error().message().find("more than one qrels file"), std::string::npos) << ds.error().message();
    testing::TempDir empty;
    testing::write_bytes(empty.file("notes.txt"), "hello\n");
    auto none = detect_layout(empty.path());
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
}

TEST(RealData, Cranfield) {
    QUIVER_REQUIRE_DATA(dir, "cranfield");
    auto ds = load_dataset(dir);
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    EXPECT_EQ(ds->layout, Layout::kSmart);
    EXPECT_EQ(ds->documents.size(), 1400u);
    EXPECT_EQ(ds->queries.size(), 225u);
    EXPECT_EQ(ds->qrels.size(), 225u);
}

TEST(RealData, LimitSmallAndSciFact) {
    QUIVER_REQUIRE_DATA(limit, "limit-small");
    auto ds = load_dataset(limit);
    ASSERT_TRUE(ds.ok()) << ds.error().to_string();
    EXPECT_EQ(ds->documents.size(), 46u);
    EXPECT_EQ(ds->queries.size(), 1000u);
    QUIVER_REQUIRE_DATA(scifact, "scifact");
    auto sf = load_dataset(scifact, {"test", false});
    ASSERT_TRUE(sf.ok());
    EXPECT_EQ(sf->queries.size(), 300u);
    EXPECT_TRUE(sf->documents.empty());
}

}  // namespace
}  // namespace quiver::eval
