#include "quiver/sparse/sparse_vector.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "quiver/sparse/sparse_vector_text.h"
#include "testing/testing.h"

namespace quiver::sparse {
namespace {

SparseVector vec(std::vector<TermId> t, std::vector<float> w) { return SparseVector{std::move(t), std::move(w)}; }

TEST(SparseVector, CanonicalizeSortsAndDropsZeros) {
    SparseVector v = vec({7, 2, 5}, {1.0f, 0.0f, 2.5f});
    ASSERT_TRUE(canonicalize(v, "v"));
    EXPECT_EQ(v.terms, (std::vector<TermId>{5, 7}));
    EXPECT_EQ(v.weights, (std::vector<float>{2.5f, 1.0f}));
}

TEST(SparseVector, CanonicalizeRejectsMalformedWeights) {
    for (float bad : {-0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        SparseVector v = vec({1, 2}, {1.0f, bad});
        const Status st = canonicalize(v, "document 'x'");
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(st.error().message().find("document 'x'"), std::string::npos) << st.error().message();
    }
}

TEST(SparseVector, CanonicalizeRejectsDuplicateTerms) {
    SparseVector v = vec({3, 1, 3}, {1.0f, 1.0f, 2.0f});
    const Status st = canonicalize(v, "v");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("appears twice"), std::string::npos);
}

TEST(SparseVector, DotIsMergeInnerProduct) {
    SparseVector a = vec({1, 4, 9}, {1.0f, 2.0f, 3.0f}), b = vec({4, 9, 12}, {0.5f, 2.0f, 7.0f});
    EXPECT_FLOAT_EQ(dot(a.view(), b.view()), 1.0f + 6.0f);
}

TEST(SparseVector, ParsesJsonVectorCollection) {
    const std::string text =
        "{\"id\": \"d1\", \"contents\": \"hello\", \"vector\": {\"hello\": 1.5, \"world\": 0.25}}\n"
        "\n"
        "{\"id\": 7, \"contents\": \"\", \"vector\": {\"world\": 2, \"zero\": 0}}\n"
        "{\"id\": \"empty\", \"contents\": \"\", \"vector\": {}}\n";
    auto c = parse_collection_jsonl(text, "docs.jsonl", Vocabulary());
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_EQ(c->size(), 3u);
    EXPECT_EQ(c->ids[1], "7");
    EXPECT_EQ(c->row(0).size(), 2u);
    EXPECT_EQ(c->row(1).size(), 1u);  // the zero weight is dropped
    EXPECT_EQ(c->row(2).size(), 0u);  // an empty vector is a valid (never retrievable) document
    EXPECT_EQ(c->dim(), 3u);          // "zero" is still in the vocabulary
}

TEST(SparseVector, RejectsMalformedJsonlWithLineNumbers) {
    struct Case {
        const char* line;
        const char* expect;
    };
    for (const Case& k : {Case{"{\"id\":\"a\",\"vector\":{\"x\":-1}}", "invalid weight"},
                          Case{"{\"id\":\"a\",\"vector\":{\"x\":1,\"x\":2}}", "appears twice"},
                          Case{"{\"id\":\"a\",\"vector\":{\"x\":NaN}}", "docs.jsonl:2"},
                          Case{"{\"id\":\"a\",\"vector\":{\"x\":\"1\"}}", "must be a number"},
                          Case{"{\"id\":\"a\"}", "missing \"vector\""},
                          Case{"{\"vector\":{\"x\":1}}", "missing \"id\""},
                          Case{"{\"id\":\"d0\",\"vector\":{\"x\":1}}", "duplicate document id"}}) {
        const std::string text = std::string("{\"id\":\"d0\",\"vector\":{\"y\":1}}\n") + k.line + "\n";
        auto c = parse_collection_jsonl(text, "docs.jsonl", Vocabulary());
        ASSERT_FALSE(c) << k.line;
        EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(c.error().message().find(k.expect), std::string::npos) << c.error().message();
        EXPECT_NE(c.error().message().find("docs.jsonl:2"), std::string::npos) << c.error().message();
    }
}

TEST(SparseVector, IntegerTermMode) {
    auto c = parse_collection_jsonl("{\"id\":\"a\",\"vector\":{\"10\":1,\"3\":2}}\n", "d", Vocabulary(TermMode::kInteger));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->dim(), 11u);
    EXPECT_EQ(c->row(0).terms[0], 3u);
    auto bad = parse_collection_jsonl("{\"id\":\"a\",\"vector\":{\"ten\":1}}\n", "d", Vocabulary(TermMode::kInteger));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("not an integer"), std::string::npos);
}

TEST(SparseVector, QueriesDropUnknownTermsAndCountThem) {
    auto c = parse_collection_jsonl("{\"id\":\"a\",\"vector\":{\"x\":1,\"y\":2}}\n", "d", Vocabulary());
    ASSERT_TRUE(c);
    auto q = parse_queries("{\"id\":\"q1\",\"vector\":{\"x\":0.5,\"nope\":3}}\n{\"id\":\"q2\",\"vector\":{\"nope\":1}}\n",
                           "q", c->vocab);
    ASSERT_TRUE(q) << q.error().to_string();
    ASSERT_EQ(q->size(), 2u);
    EXPECT_EQ(q->unknown_terms, 2u);
    EXPECT_EQ(q->vectors[0].size(), 1u);
    EXPECT_EQ(q->vectors[1].size(), 0u);  // searches with it return nothing
}

TEST(SparseVector, TsvQueries) {
    auto c = parse_collection_jsonl("{\"id\":\"a\",\"vector\":{\"x\":1,\"y\":2,\"z\":3}}\n", "d", Vocabulary());
    ASSERT_TRUE(c);
    auto q = parse_queries("q1\tx:0.5 y:2\nq2\tz z y unknown\n", "q.tsv", c->vocab);
    ASSERT_TRUE(q) << q.error().to_string();
    ASSERT_EQ(q->size(), 2u);
    EXPECT_EQ(q->ids[1], "q2");
    EXPECT_EQ(q->vectors[1].size(), 2u);
    EXPECT_FLOAT_EQ(q->vectors[1].weights[1], 2.0f);  // z repeated twice
    EXPECT_EQ(q->unknown_terms, 1u);
    auto bad = parse_queries("q1\tx:-2\n", "q.tsv", c->vocab);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("q.tsv:1"), std::string::npos);
    auto dup = parse_queries("q1\tx:1 x:2\n", "q.tsv", c->vocab);
    ASSERT_FALSE(dup);
}

TEST(SparseVector, JsonlRoundTrip) {
    testing::TempDir dir;
    auto c = parse_collection_jsonl("{\"id\":\"a\",\"vector\":{\"x\":1.25,\"y\":2}}\n{\"id\":\"b\",\"vector\":{\"y\":0.1}}\n",
                                    "d", Vocabulary());
    ASSERT_TRUE(c);
    ASSERT_TRUE(write_collection_jsonl(dir.file("c.jsonl"), *c));
    auto back = read_collection_jsonl(dir.file("c.jsonl"), Vocabulary());
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back->ids, c->ids);
    EXPECT_EQ(back->terms, c->terms);
    EXPECT_EQ(back->weights, c->weights);
}

TEST(SparseVectorText, TokenizeAndImpacts) {
    EXPECT_EQ(simple_tokenize("The BRCA1 gene, in a cell-line!"),
              (std::vector<std::string>{"brca1", "gene", "cell", "line"}));
    std::vector<TextRecord> docs = {{"d1", "protein folding in yeast cells"},
                                    {"d2", "yeast genome sequencing"},
                                    {"d3", "the and of"}};
    auto c = bm25_impacts(docs, ImpactParams{});
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(c->size(), 3u);
    EXPECT_EQ(c->row(2).size(), 0u);
    for (float w : c->weights) EXPECT_GT(w, 0.0f);
    auto q = expanded_queries(*c, {{"q1", "yeast protein"}, {"q2", "unrelated words"}}, ImpactParams{});
    ASSERT_TRUE(q) << q.error().to_string();
    ASSERT_EQ(q->size(), 2u);
    EXPECT_GT(q->vectors[0].size(), 2u);  // expanded with feedback terms
    EXPECT_EQ(q->vectors[1].size(), 0u);
}

// `sparse-gen --extra-text` inputs: JSONL, TSV, gzip TSV and SMART records, detected from the content.
TEST(SparseVectorText, ReadsExtraTextFormats) {
    testing::TempDir dir;
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir.file(name), std::ios::binary) << text;
        return dir.file(name);
    };
    const std::string jsonl = write("c.jsonl", "{\"_id\": \"x1\", \"title\": \"Yeast\", \"text\": \"cells\"}\n\n{\"id\": 4, \"text\": \"genome\"}\n");
    auto j = read_text_records(jsonl, "c/");
    ASSERT_TRUE(j) << j.error().to_string();
    ASSERT_EQ(j->size(), 2u);
    EXPECT_EQ((*j)[0].id, "c/x1");
    EXPECT_EQ((*j)[0].text, "Yeast cells");
    EXPECT_EQ((*j)[1].id, "c/4");

    const std::string tsv_text = "1\tprotein folding in yeast\n\n22\t what is a genome? \r\n";
    const std::string tsv = write("topics.x.test.tsv", tsv_text);
    const std::string gz = dir.file("topics.x.test.tsv.gz");
    gzFile f = gzopen(gz.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, tsv_text.data(), static_cast<unsigned>(tsv_text.size())), static_cast<int>(tsv_text.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
    for (const std::string& path : {tsv, gz}) {
        auto t = read_text_records(path, text_id_prefix(path));
        ASSERT_TRUE(t) << t.error().to_string();
        ASSERT_EQ(t->size(), 2u) << path;
        EXPECT_EQ((*t)[0].id, "topics.x.test/1");
        EXPECT_EQ((*t)[0].text, "protein folding in yeast");
        EXPECT_EQ((*t)[1].id, "topics.x.test/22");
        EXPECT_EQ((*t)[1].text, "what is a genome?");
    }

    const std::string smart = write("cran.all", ".I 1\n.T\nwing slipstream .\n.A\nbrenckman,m.\n.B\nj. ae. 25.\n.W\nan experimental\nstudy .\n.I 2\n.T\nboundary layer\n");
    auto s = read_text_records(smart, text_id_prefix(smart));
    ASSERT_TRUE(s) << s.error().to_string();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].id, "cran.all/1");
    EXPECT_EQ((*s)[0].text, "wing slipstream . an experimental study .");  // .A and .B are not text
    EXPECT_EQ((*s)[1].text, "boundary layer");

    auto bad = read_text_records(write("bad.tsv", "1\tok\nno tab here\n"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.error().message().find("bad.tsv:2"), std::string::npos) << bad.error().message();
    auto empty = read_text_records(write("empty.tsv", "\n \n"));
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
    std::ifstream whole(gz, std::ios::binary);
    const std::string packed((std::istreambuf_iterator<char>(whole)), std::istreambuf_iterator<char>());
    auto truncated = read_text_records(write("cut.tsv.gz", packed.substr(0, packed.size() / 2)));
    ASSERT_FALSE(truncated);  // a damaged gzip stream is an error, not a silently shorter file
    EXPECT_NE(truncated.error().message().find("cannot decompress"), std::string::npos) << truncated.error().message();
    auto missing = read_text_records(dir.file("missing.tsv"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(text_id_prefix("/a/b/topics.beir-v1.0.0-nq.test.tsv.gz"), "topics.beir-v1.0.0-nq.test/");
}

}  // namespace
}  // namespace quiver::sparse
