// Long documents in collections (issue 13): a chunked text field declared in a schema file or with
// `quiver ingest --chunking`, searched with `quiver query` (the best chunk beside each hit), and on
// SciFact (real data; skipped without it) the collection's nDCG@10 equals `quiver eval --chunking`'s.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "quiver/core/json.h"
#include "quiver/engine/store.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/server/json_codec.h"
#include "testing/testing.h"

namespace quiver {
namespace {

testing::CommandResult run(const std::string& args) {
    return testing::run_command(std::string(QUIVER_CLI_PATH) + " " + args + " 2>&1");
}

std::string fixture(const std::string& name) { return std::string(QUIVER_SOURCE_DIR) + "/tests/data/eval/" + name; }

TEST(ChunkingSchema, JsonRoundTripAndErrors) {
    auto v = json::parse(R"({"fields": [{"name": "title", "type": "text", "indexed": false},
        {"name": "text", "type": "text", "indexed": false},
        {"name": "body", "type": "text", "sources": ["title", "text"],
         "chunking": {"unit": "sentences", "size": 4, "overlap": 1, "situated": true, "context": 2, "aggregation": "sump"}},
        {"name": "flat", "type": "text", "sources": ["text"], "chunking": "tokens:size=64,overlap=16"}]})");
    ASSERT_TRUE(v);
    auto s = server::schema_from_json(*v);
    ASSERT_TRUE(s) << s.error().to_string();
    const auto& body = *s->find("body")->chunking;
    EXPECT_EQ(body.unit, pipeline::ChunkUnit::kSentences);
    EXPECT_EQ(body.size, 4u);
    EXPECT_EQ(body.overlap, 1u);
    EXPECT_TRUE(body.situated);
    EXPECT_EQ(body.context, 2u);
    EXPECT_EQ(body.aggregation, pipeline::ChunkAggregation::kSumP);
    const auto& flat = *s->find("flat")->chunking;
    EXPECT_EQ(flat.size, 64u);
    EXPECT_EQ(flat.overlap, 16u);
    EXPECT_EQ(flat.aggregation, pipeline::ChunkAggregation::kMaxP);
    // Written as objects, read back equal.
    auto again = server::schema_from_json(server::schema_to_json(*s));
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(*again->find("body")->chunking, body);
    EXPECT_EQ(*again->find("flat")->chunking, flat);
    // An object with only some keys takes the defaults of the unit.
    v = json::parse(R"({"fields": [{"name": "b", "type": "text", "chunking": {"unit": "sentences"}}]})");
    s = server::schema_from_json(*v);
    ASSERT_TRUE(s) << s.error().to_string();
    EXPECT_EQ(s->find("b")->chunking->size, 3u);
    EXPECT_EQ(s->find("b")->chunking->overlap, 1u);
    for (const char* bad : {
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"size": 8, "overlap": 8}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"unit": "words"}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"stride": 3}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"size": -1}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"situated": 1}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": {"aggregation": "avgp"}}]})",
             R"({"fields": [{"name": "b", "type": "text", "chunking": 5}]})",
             R"({"fields": [{"name": "b", "type": "text", "indexed": false, "chunking": {}}]})",
             R"({"fields": [{"name": "k", "type": "keyword", "chunking": {}}]})",
         }) {
        auto bv = json::parse(bad);
        ASSERT_TRUE(bv) << bad;
        auto bs = server::schema_from_json(*bv);
        ASSERT_FALSE(bs) << bad;
        EXPECT_EQ(bs.error().code(), ErrorCode::kInvalidArgument) << bad;
    }
}

TEST(ChunkingCli, IngestAndQueryChunkedCollections) {
    testing::TempDir dir;
    // A BEIR folder of one long and two short documents.
    std::filesystem::create_directories(dir.file("beir/qrels"));
    std::string longtext;
    for (int i = 0; i < 40; ++i) longtext += "filler" + std::to_string(i) + " ";
    longtext += "rare zebra sighting";
    testing::write_bytes(dir.file("beir/corpus.jsonl"),
                         "{\"_id\":\"long\",\"title\":\"Long\",\"text\":\"" + longtext + "\"}\n"
                         "{\"_id\":\"s1\",\"title\":\"Short\",\"text\":\"a zebra\"}\n"
                         "{\"_id\":\"s2\",\"title\":\"Other\",\"text\":\"nothing here\"}\n");
    testing::write_bytes(dir.file("beir/queries.jsonl"), "{\"_id\":\"q1\",\"text\":\"rare zebra\"}\n");
    testing::write_bytes(dir.file("beir/qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\tlong\t1\n");
    auto r = run("ingest --data " + dir.file("store") + " --collection c --input " + dir.file("beir") +
                 " --chunking tokens:size=10,overlap=2");
    ASSERT_EQ(r.code, 0) << r.out;
    auto q = run("query --data " + dir.file("store") + " --collection c --text \"rare zebra\" -k 2 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    auto hits = json::parse(q.out);
    ASSERT_TRUE(hits) << q.out;
    ASSERT_EQ(hits->as_array().size(), 2u) << q.out;
    // "long" is 43 units in windows of 10, stride 8: both terms sit in chunks 4 (units 32..41) and 5
    // (units 40..42); the shorter chunk 5 scores higher.
    EXPECT_EQ(hits->as_array()[0].find("id")->as_string(), "long") << q.out;
    EXPECT_EQ(hits->as_array()[0].find("chunk")->as_number(), 5.0) << q.out;
    EXPECT_EQ(hits->as_array()[1].find("id")->as_string(), "s1") << q.out;
    EXPECT_EQ(hits->as_array()[1].find("chunk")->as_number(), 0.0) << q.out;
    q = run("query --data " + dir.file("store") + " --collection c --text \"rare zebra\" -k 1");
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_NE(q.out.find("[chunk 5]"), std::string::npos) << q.out;
    // A schema file with a chunking object.
    testing::write_bytes(dir.file("schema.json"), R"({"fields": [{"name": "title", "type": "text", "indexed": false},
        {"name": "text", "type": "text", "indexed": false},
        {"name": "contents", "type": "text", "sources": ["title", "text"],
         "chunking": {"unit": "tokens", "size": 10, "overlap": 2, "aggregation": "firstp"}}]})");
    r = run("ingest --data " + dir.file("store") + " --collection f --schema " + dir.file("schema.json") + " --input " +
            dir.file("beir"));
    ASSERT_EQ(r.code, 0) << r.out;
    q = run("query --data " + dir.file("store") + " --collection f --text \"rare zebra\" -k 2 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    hits = json::parse(q.out);
    ASSERT_TRUE(hits) << q.out;
    // firstp: only first chunks count, so the long document's zebra (chunk 4) is not found.
    ASSERT_EQ(hits->as_array().size(), 1u) << q.out;
    EXPECT_EQ(hits->as_array()[0].find("id")->as_string(), "s1") << q.out;
    // Usage errors.
    r = run("ingest --data " + dir.file("store") + " --collection g --input " + dir.file("beir") + " --chunking words:size=3");
    EXPECT_EQ(r.code, 2) << r.out;
    r = run("ingest --data " + dir.file("store") + " --collection g --schema " + dir.file("schema.json") + " --input " +
            dir.file("beir") + " --chunking tokens");
    EXPECT_EQ(r.code, 2) << r.out;
}

// Item 7: each layout `quiver eval` reads is ingested as the same documents (count and a document).
TEST(ChunkingCli, IngestLoadsWhatEvalLoads) {
    testing::TempDir dir;
    for (const char* layout : {"terrier-trec", "smart", "beir-metadata"}) {
        auto r = run(std::string("ingest --data ") + dir.file("store") + " --collection " + layout + " --input " +
                     fixture(layout) + " --chunking tokens:size=6,overlap=2");
        ASSERT_EQ(r.code, 0) << layout << ": " << r.out;
        auto corpus = eval::load_corpus(fixture(layout));
        ASSERT_TRUE(corpus) << corpus.error().to_string();
        engine::CollectionOptions copts;
        copts.read_only = true;
        copts.background_merge = false;
        auto c = engine::Collection::open(dir.file("store") + "/" + layout, copts);
        ASSERT_TRUE(c) << c.error().to_string();
        auto n = (*c)->count(std::nullopt);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, corpus->documents.size()) << layout;
        const auto& first = corpus->documents.front();
        auto got = (*c)->get(first.id);
        ASSERT_TRUE(got) << layout << ": " << got.error().to_string();
        EXPECT_EQ(std::get<std::string>(got->fields.at("text")), first.text) << layout;
    }
}

// Runs every judged query through the collection: k + 1 hits, the query's own id dropped, cut at k.
eval::Run collection_run(engine::Collection& c, const eval::Dataset& ds, std::size_t k) {
    eval::Run out;
    for (const auto& q : ds.queries) {
        engine::SearchRequest r;
        r.clauses.push_back(engine::QueryClause::of_text("contents", q.text));
        r.k = k + 1;
        r.return_fields = std::vector<std::string>{};
        auto hits = c.search(r);
        EXPECT_TRUE(hits) << hits.error().to_string();
        if (!hits) continue;
        auto& list = out[q.id];
        for (const auto& h : *hits) {
            if (h.id == q.id || list.size() == k) continue;
            list.push_back({h.id, h.score});
        }
    }
    return out;
}

json::Value eval_json(const std::string& args) {
    auto r = testing::run_command(std::string(QUIVER_CLI_PATH) + " eval " + args + " --json --quiet 2>/dev/null");
    EXPECT_EQ(r.code, 0) << r.out;
    auto v = json::parse(r.out);
    EXPECT_TRUE(v) << r.out;
    return v ? *v : json::Value::object();
}

TEST(ChunkingCli, SciFactChunkedCollectionMatchesEval) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    testing::TempDir dir;
    const std::string spec = "tokens:size=128,overlap=32";
    auto r = run("ingest --data " + dir.file("store") + " --collection sf --input " + data + " --chunking " + spec);
    ASSERT_EQ(r.code, 0) << r.out;
    // eval's run is 1000 documents from 3000 chunks: its top 10 are exact MaxP.
    const json::Value rep = eval_json("--dataset " + data + " --metrics ndcg@10 --chunking " + spec);
    const double want = rep.find("metrics")->find("ndcg@10")->as_number();

    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    engine::CollectionOptions copts;
    copts.background_merge = false;
    auto store = engine::Store::open(dir.file("store"), copts);
    ASSERT_TRUE(store) << store.error().to_string();
    auto c = (*store)->get("sf");
    ASSERT_TRUE(c) << c.error().to_string();
    auto metrics = eval::parse_metrics("ndcg@10");
    ASSERT_TRUE(metrics);
    auto got_rep = eval::evaluate(ds->qrels, collection_run(**c, *ds, 10), *metrics, {});
    ASSERT_TRUE(got_rep) << got_rep.error().to_string();
    const double got = got_rep->metrics[0].mean;
    std::printf("[ measure ] SciFact test nDCG@10, BM25 over chunks (%s, maxp): eval --chunking %.6f, collection %.6f\n",
                spec.c_str(), want, got);
    EXPECT_NEAR(got, want, 1e-4);
    EXPECT_NEAR(got, 0.6572, 1e-4);  // measured; whole-document BM25 is 0.6789
}

}  // namespace
}  // namespace quiver

namespace quiver {
namespace {

// Chunked vector fields (an encoder-backed field with "chunking"): the schema file, ingest and query
// (the hit carries its best chunk), and the refusal of chunking without an encoder.
TEST(ChunkingCli, ChunkedVectorFieldIngestAndQuery) {
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("beir/qrels"));
    std::string longtext;
    for (int i = 0; i < 40; ++i) longtext += "filler" + std::to_string(i) + " ";
    longtext += "rare zebra sighting";
    testing::write_bytes(dir.file("beir/corpus.jsonl"),
                         "{\"_id\":\"long\",\"title\":\"Long\",\"text\":\"" + longtext + "\"}\n"
                         "{\"_id\":\"s1\",\"title\":\"Short\",\"text\":\"a zebra\"}\n"
                         "{\"_id\":\"s2\",\"title\":\"Other\",\"text\":\"nothing here\"}\n");
    testing::write_bytes(dir.file("beir/queries.jsonl"), "{\"_id\":\"q1\",\"text\":\"rare zebra\"}\n");
    testing::write_bytes(dir.file("beir/qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\tlong\t1\n");
    testing::write_bytes(dir.file("schema.json"), R"({"fields": [{"name": "title", "type": "text", "indexed": false},
        {"name": "text", "type": "text", "indexed": false},
        {"name": "dense", "type": "vector", "dim": 64, "metric": "cosine", "index": "flat", "encoder": "hashing",
         "sources": ["title", "text"], "chunking": "tokens:size=10,overlap=2"}]})");
    auto r = run("ingest --data " + dir.file("store") + " --collection v --schema " + dir.file("schema.json") +
                 " --input " + dir.file("beir"));
    ASSERT_EQ(r.code, 0) << r.out;
    auto q = run("query --data " + dir.file("store") + " --collection v --field dense --text \"rare zebra\" -k 2 --json");
    ASSERT_EQ(q.code, 0) << q.out;
    auto hits = json::parse(q.out);
    ASSERT_TRUE(hits) << q.out;
    ASSERT_EQ(hits->as_array().size(), 2u) << q.out;
    // "long" is 43 units in windows of 10, stride 8: chunk 5 ("rare zebra sighting") is its nearest.
    EXPECT_EQ(hits->as_array()[0].find("id")->as_string(), "long") << q.out;
    EXPECT_EQ(hits->as_array()[0].find("chunk")->as_number(), 5.0) << q.out;
    EXPECT_EQ(hits->as_array()[1].find("id")->as_string(), "s1") << q.out;
    EXPECT_EQ(hits->as_array()[1].find("chunk")->as_number(), 0.0) << q.out;
    // The schema round-trips through JSON with its chunking.
    auto v = json::parse(testing::read_bytes(dir.file("schema.json")));
    ASSERT_TRUE(v);
    auto s = server::schema_from_json(*v);
    ASSERT_TRUE(s) << s.error().to_string();
    auto again = server::schema_from_json(server::schema_to_json(*s));
    ASSERT_TRUE(again) << again.error().to_string();
    ASSERT_TRUE(again->find("dense")->chunking.has_value());
    EXPECT_EQ(*again->find("dense")->chunking, *s->find("dense")->chunking);
    // Chunking needs an encoder: vectors given directly are not chunked.
    for (const char* bad : {
             R"({"fields": [{"name": "v", "type": "vector", "dim": 4, "chunking": "tokens:size=8,overlap=2"}]})",
             R"({"fields": [{"name": "t", "type": "text"}, {"name": "s", "type": "sparse_vector", "encoder": "m",
                 "sources": ["t"], "chunking": "tokens"}]})",
         }) {
        auto bv = json::parse(bad);
        ASSERT_TRUE(bv) << bad;
        auto bs = server::schema_from_json(*bv);
        ASSERT_FALSE(bs) << bad;
        EXPECT_EQ(bs.error().code(), ErrorCode::kInvalidArgument) << bad;
    }
}

// Real data (skipped without SciFact and GloVe): SciFact with a chunked GloVe field (128-token chunks,
// 32 overlap, maxp) gives the nDCG@10 of `quiver eval --retriever dense --chunking` on the same model.
TEST(ChunkingCli, SciFactChunkedDenseCollectionMatchesEval) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    QUIVER_REQUIRE_DATA(glove, "glove-6b-100d");
    testing::TempDir dir;
    const std::string spec = "tokens:size=128,overlap=32";
    testing::write_bytes(dir.file("schema.json"),
                         R"({"fields": [{"name": "title", "type": "text", "indexed": false},
        {"name": "text", "type": "text", "indexed": false},
        {"name": "dense", "type": "vector", "dim": 100, "metric": "cosine", "index": "flat", "encoder": ")" +
                             glove + R"(", "sources": ["title", "text"], "chunking": ")" + spec + R"("}]})");
    auto r = run("ingest --data " + dir.file("store") + " --collection sf --schema " + dir.file("schema.json") +
                 " --input " + data);
    ASSERT_EQ(r.code, 0) << r.out;
    // eval's run is 1000 documents from 3000 chunks: its top 10 are exact MaxP.
    const json::Value rep = eval_json("--dataset " + data + " --retriever dense --model " + glove +
                                      " --metrics ndcg@10 --chunking " + spec);
    const double want = rep.find("metrics")->find("ndcg@10")->as_number();

    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    engine::CollectionOptions copts;
    copts.background_merge = false;
    auto store = engine::Store::open(dir.file("store"), copts);
    ASSERT_TRUE(store) << store.error().to_string();
    auto c = (*store)->get("sf");
    ASSERT_TRUE(c) << c.error().to_string();
    eval::Run run_out;
    for (const auto& q : ds->queries) {
        engine::SearchRequest sr;
        sr.clauses.push_back(engine::QueryClause::of_text("dense", q.text));
        sr.k = 11;
        sr.return_fields = std::vector<std::string>{};
        auto hits = (*c)->search(sr);
        ASSERT_TRUE(hits) << hits.error().to_string();
        auto& list = run_out[q.id];
        for (const auto& h : *hits) {
            if (h.id == q.id || list.size() == 10) continue;
            list.push_back({h.id, h.score});
        }
    }
    auto metrics = eval::parse_metrics("ndcg@10");
    ASSERT_TRUE(metrics);
    auto got_rep = eval::evaluate(ds->qrels, run_out, *metrics, {});
    ASSERT_TRUE(got_rep) << got_rep.error().to_string();
    const double got = got_rep->metrics[0].mean;
    std::printf("[ measure ] SciFact test nDCG@10, GloVe 100d over chunks (%s, maxp): eval --chunking %.6f, "
                "collection %.6f\n",
                spec.c_str(), want, got);
    EXPECT_NEAR(got, want, 1e-4);
    EXPECT_NEAR(got, 0.1683, 1e-4);  // measured; whole-document GloVe is 0.1820 (docs/pipeline.md)
}

}  // namespace
}  // namespace quiver
