// Chunked text fields (issue 13, long documents): a collection's chunk aggregation equals brute force —
// every chunk of every live document (pipeline::chunk_document) scored exhaustively by one BM25 index
// over the live chunks, cut at the search's chunk depth, aggregated by pipeline::aggregate_chunks —
// through the memtable, persisted segments, reopen, deletes, patches, upserts, filters, pagination and
// optimize, for maxp, firstp and sump.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quiver/engine/collection.h"
#include "quiver/engine/fusion.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/text/analyzer.h"
#include "chunked_test_util.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using pipeline::ChunkAggregation;
using pipeline::ChunkingSpec;
using chunked_test::make;
using chunked_test::random_text;
using chunked_test::Stored;

struct Expected {
    std::string id;
    double score;
    std::uint32_t chunk;
    std::vector<std::uint32_t> best_chunks;  // chunks scoring within kTolerance of the best one
};

// Segments score BM25 in float with MaxScore, whose summation order (and so the last bit of a score)
// may depend on k; identical chunks then tie only to within an ulp. Scores are compared to this
// relative tolerance, and hits whose scores tie within it may come in either order.
constexpr double kTolerance = 1e-6;
bool near(double a, double b) { return chunked_test::near(a, b, kTolerance); }

Schema chunked_schema(const ChunkingSpec& spec) {
    Schema s;
    FieldSpec title;
    title.name = "title";
    title.indexed = false;
    FieldSpec text;
    text.name = "text";
    text.indexed = false;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    tag.payload_index = true;
    FieldSpec body;
    body.name = "body";
    body.sources = {"title", "text"};
    body.chunking = spec;
    FieldSpec whole;  // the same text, not chunked (fusion)
    whole.name = "whole";
    whole.sources = {"title", "text"};
    s.fields = {title, text, tag, body, whole};
    return s;
}

// The brute-force reference of a search on the chunked field: the live documents' chunks in one BM25
// index (its statistics are then the collection's: live chunks), every chunk scored, cut at the
// search's depth rule (3 x wanted chunks, 4x deeper while fewer than `wanted` documents come out),
// aggregated, ordered by (score desc, id asc).
std::vector<Expected> brute_force(const std::map<std::string, Stored>& live, const ChunkingSpec& spec, float k1, float b,
                                  const std::string& query, std::size_t wanted, const std::string* tag_filter) {
    std::vector<std::string> parent_ids;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> chunk_of;
    std::vector<std::string> names;
    std::vector<std::string> texts;
    for (const auto& [id, s] : live) {
        const auto chunks = pipeline::chunk_document(s.title, s.text, spec);
        for (std::uint32_t j = 0; j < chunks.size(); ++j) {
            names.push_back("c" + std::to_string(texts.size()));
            texts.push_back(chunks[j]);
            chunk_of.emplace_back(static_cast<std::uint32_t>(parent_ids.size()), j);
        }
        parent_ids.push_back(id);
    }
    std::vector<sparse::Bm25Document> views(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) views[i] = {names[i], "", texts[i]};
    sparse::Bm25Index::BuildOptions bo;
    bo.params = {k1, b};
    bo.threads = 1;
    auto index = sparse::Bm25Index::build(views, bo);
    EXPECT_TRUE(index) << index.error().to_string();
    auto analyzer = text::Analyzer::create(text::AnalyzerConfig{});
    EXPECT_TRUE(analyzer);
    const std::vector<std::string> terms = analyzer->analyze(query);
    struct ChunkScore {
        std::uint32_t parent, chunk;
        double score;
    };
    std::vector<ChunkScore> all;
    for (const auto& h : index->search_terms_exhaustive(terms, texts.size())) {
        const auto [parent, chunk] = chunk_of[h.doc];
        if (tag_filter != nullptr && live.at(parent_ids[parent]).tag != *tag_filter) continue;
        all.push_back({parent, chunk, static_cast<double>(h.score)});
    }
    std::sort(all.begin(), all.end(), [&](const ChunkScore& x, const ChunkScore& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.parent != y.parent) return parent_ids[x.parent] < parent_ids[y.parent];
        return x.chunk < y.chunk;
    });
    std::vector<pipeline::DocScore> docs;
    const std::size_t first_depth = spec.aggregation == ChunkAggregation::kSumP ? std::max<std::size_t>(3 * wanted, 3000)
                                                                               : 3 * wanted;
    for (std::size_t depth = first_depth;; depth *= 4) {
        std::vector<pipeline::ChunkHit> hits;
        for (std::size_t i = 0; i < std::min(depth, all.size()); ++i) hits.push_back({all[i].parent, all[i].chunk, all[i].score});
        docs = pipeline::aggregate_chunks(hits, spec.aggregation);
        if (docs.size() >= wanted || depth >= all.size()) break;
    }
    std::sort(docs.begin(), docs.end(), [&](const pipeline::DocScore& x, const pipeline::DocScore& y) {
        if (x.score != y.score) return x.score > y.score;
        return parent_ids[x.doc] < parent_ids[y.doc];
    });
    std::vector<Expected> out;
    for (std::size_t i = 0; i < docs.size() && i < wanted; ++i) {
        Expected e{parent_ids[docs[i].doc], docs[i].score, docs[i].chunk, {}};
        double best = -1.0;
        for (const ChunkScore& cs : all) {
            if (cs.parent == docs[i].doc && cs.chunk == docs[i].chunk) best = cs.score;
        }
        for (const ChunkScore& cs : all) {
            if (cs.parent != docs[i].doc) continue;
            if (spec.aggregation == ChunkAggregation::kFirstP ? cs.chunk == 0 : near(cs.score, best)) {
                e.best_chunks.push_back(cs.chunk);
            }
        }
        out.push_back(std::move(e));
    }
    return out;
}

class ChunkedFieldTest : public ::testing::TestWithParam<ChunkAggregation> {
protected:
    void SetUp() override {
        spec_.unit = pipeline::ChunkUnit::kTokens;
        spec_.size = 12;
        spec_.overlap = 4;
        spec_.aggregation = GetParam();
        spec_.situated = GetParam() == ChunkAggregation::kSumP;  // one aggregation also with situated chunks
        spec_.context = 3;
        options_.background_merge = false;
        options_.memtable_docs = 64;
        std::mt19937 rng(1234 + static_cast<int>(GetParam()));
        for (int i = 0; i < 90; ++i) {
            Stored s;
            s.title = random_text(rng, 1, 4);
            s.text = random_text(rng, 0, i % 7 == 0 ? 120 : 40);  // some empty, some long documents
            s.tag = i % 3 == 0 ? "a" : "b";
            docs_.emplace("doc" + std::to_string(i), s);
        }
        std::mt19937 qrng(99);
        for (int q = 0; q < 12; ++q) queries_.push_back(random_text(qrng, 1, 3));
    }

    static void expect_ranks(const std::vector<SearchHit>& hits, std::size_t offset, const std::vector<Expected>& want,
                             const std::string& what) {
        chunked_test::expect_ranks(hits, offset, want, what, kTolerance);
    }

    // Every query at several page sizes, with and without the filter, against brute force; pages.
    void check(Collection& c, const std::string& stage) {
        SCOPED_TRACE(stage);
        const Schema& s = c.schema();
        const std::string a = "a";
        for (const std::string& q : queries_) {
            for (const bool filtered : {false, true}) {
                // The whole order (maxp and firstp are exact at any depth; sump sums at least 3,000 chunks,
                // here every chunk, for any page up to 1,000 documents).
                const auto want = brute_force(docs_, spec_, s.bm25_k1, s.bm25_b, q, 1000, filtered ? &a : nullptr);
                for (std::size_t k : {1u, 5u, 20u}) {
                    SearchRequest r;
                    r.clauses.push_back(QueryClause::of_text("body", q));
                    r.k = k;
                    r.return_fields = std::vector<std::string>{};
                    if (filtered) {
                        Filter f;
                        f.op = Filter::Op::kEq;
                        f.field = "tag";
                        f.values = {std::string("a")};
                        r.filter = f;
                    }
                    auto hits = c.search(r);
                    ASSERT_TRUE(hits) << hits.error().to_string();
                    const std::string what = "query '" + q + "' k " + std::to_string(k) + (filtered ? " filtered" : "");
                    ASSERT_EQ(hits->size(), std::min<std::size_t>(k, want.size())) << what;
                    expect_ranks(*hits, 0, want, what);
                    if (!filtered) continue;
                    for (const auto& h : *hits) EXPECT_EQ(docs_.at(h.id).tag, "a") << what;
                }
                // Pages of 3 are ranks 0..11 (pagination over aggregated documents), no document twice.
                SearchRequest r;
                r.clauses.push_back(QueryClause::of_text("body", q));
                r.return_fields = std::vector<std::string>{};
                if (filtered) {
                    Filter f;
                    f.op = Filter::Op::kEq;
                    f.field = "tag";
                    f.values = {std::string("a")};
                    r.filter = f;
                }
                std::set<std::string> seen;
                std::size_t total = 0;
                for (std::size_t offset = 0; offset < 12; offset += 3) {
                    r.k = 3;
                    r.offset = offset;
                    auto page = c.search(r);
                    ASSERT_TRUE(page);
                    ASSERT_EQ(page->size(), std::min<std::size_t>(3, want.size() - std::min(want.size(), offset)));
                    expect_ranks(*page, offset, want, "query '" + q + "' page at " + std::to_string(offset));
                    for (const auto& h : *page) seen.insert(h.id);
                    total += page->size();
                }
                EXPECT_EQ(seen.size(), total) << "query '" << q << "': a document on two pages";
            }
        }
    }

    void upsert(Collection& c, const std::vector<std::string>& ids) {
        std::vector<Document> batch;
        for (const auto& id : ids) batch.push_back(make(id, docs_.at(id)));
        ASSERT_TRUE(c.upsert(std::move(batch)));
    }

    ChunkingSpec spec_;
    CollectionOptions options_;
    std::map<std::string, Stored> docs_;
    std::vector<std::string> queries_;
};

TEST_P(ChunkedFieldTest, EqualsBruteForceThroughTheLifecycle) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, chunked_schema(spec_), options_);
        ASSERT_TRUE(c) << c.error().to_string();
        // Small batches: the memtable (64 slots, so part of it freezes into in-memory segments).
        std::vector<std::string> ids;
        for (const auto& [id, s] : docs_) ids.push_back(id);
        for (std::size_t i = 0; i < ids.size(); i += 7) {
            upsert(**c, std::vector<std::string>(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                                 ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + 7))));
        }
        check(**c, "memtable and in-memory segments");
        ASSERT_TRUE((*c)->flush());
        check(**c, "persisted segments");
    }
    auto c = Collection::open(path, options_);
    ASSERT_TRUE(c) << c.error().to_string();
    check(**c, "reopened");
    // Deletes, a patch of a chunked document's text, an upsert replacing another: all chunks replaced.
    auto removed = (*c)->remove({"doc3", "doc10", "doc42", "doc77"});
    ASSERT_TRUE(removed);
    EXPECT_EQ(*removed, 4u);
    for (const char* id : {"doc3", "doc10", "doc42", "doc77"}) docs_.erase(id);
    std::mt19937 rng(7);
    Stored& patched = docs_.at("doc14");
    patched.text = random_text(rng, 60, 90);
    Document partial;
    partial.id = "doc14";
    partial.fields["text"] = patched.text;
    ASSERT_TRUE((*c)->patch({partial}));
    Stored& replaced = docs_.at("doc0");  // a long document becomes a short one
    replaced.text = random_text(rng, 3, 5);
    replaced.tag = "a";
    upsert(**c, {"doc0"});
    check(**c, "after deletes, a patch and an upsert");
    ASSERT_TRUE((*c)->flush());
    check(**c, "after deletes, flushed");
    ASSERT_TRUE((*c)->optimize());
    check(**c, "optimized");
    c->reset();
    auto again = Collection::open(path, options_);
    ASSERT_TRUE(again) << again.error().to_string();
    check(**again, "optimized and reopened");
    auto got = (*again)->get("doc14");
    ASSERT_TRUE(got);
    EXPECT_EQ(std::get<std::string>(got->fields.at("text")), patched.text);
}

INSTANTIATE_TEST_SUITE_P(Aggregations, ChunkedFieldTest,
                         ::testing::Values(ChunkAggregation::kMaxP, ChunkAggregation::kFirstP, ChunkAggregation::kSumP),
                         [](const auto& info) { return std::string(pipeline::to_string(info.param)); });

// A fused search (chunked BM25 + whole-document BM25) fuses aggregated document scores: it equals the
// pipeline fusion of the two clauses' own lists, and its hits carry the chunked clause's best chunk.
TEST(ChunkedField, FusionUsesAggregatedDocuments) {
    testing::TempDir dir;
    ChunkingSpec spec;
    spec.size = 8;
    spec.overlap = 2;
    CollectionOptions options;
    options.background_merge = false;
    auto c = Collection::create(dir.file("c"), chunked_schema(spec), options);
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(5);
    std::vector<Document> docs;
    for (int i = 0; i < 60; ++i) docs.push_back(make("d" + std::to_string(i), {random_text(rng, 1, 3), random_text(rng, 5, 60), "a"}));
    ASSERT_TRUE((*c)->upsert(docs));
    const std::string q = "river maple signal";
    auto search = [&](std::vector<QueryClause> clauses, std::size_t k) {
        SearchRequest r;
        r.clauses = std::move(clauses);
        r.k = k;
        r.return_fields = std::vector<std::string>{};
        auto hits = (*c)->search(r);
        EXPECT_TRUE(hits) << hits.error().to_string();
        return hits ? *hits : std::vector<SearchHit>{};
    };
    // Each clause's list at the fusion depth (100), fused by weighted RRF like the engine.
    const auto chunked = search({QueryClause::of_text("body", q)}, 100);
    const auto whole = search({QueryClause::of_text("whole", q)}, 100);
    ASSERT_FALSE(chunked.empty());
    std::vector<std::vector<RankedItem>> ranked(2);
    std::vector<std::string> ids;
    std::map<std::string, std::uint32_t> chunk_of;
    auto key_of = [&](const std::string& id) {
        const auto it = std::find(ids.begin(), ids.end(), id);
        if (it != ids.end()) return static_cast<std::uint64_t>(it - ids.begin());
        ids.push_back(id);
        return static_cast<std::uint64_t>(ids.size() - 1);
    };
    for (const auto& h : chunked) {
        ranked[0].push_back({key_of(h.id), h.score});
        ASSERT_TRUE(h.chunk.has_value());
        chunk_of[h.id] = *h.chunk;
    }
    for (const auto& h : whole) {
        ranked[1].push_back({key_of(h.id), h.score});
        EXPECT_FALSE(h.chunk.has_value());
    }
    FusionSpec fusion;
    fusion.weights = {1.0, 1.0};
    std::vector<std::pair<double, std::string>> want;
    for (const RankedItem& r : fuse(ranked, fusion)) want.emplace_back(r.score, ids[r.key]);
    std::sort(want.begin(), want.end(), [](const auto& x, const auto& y) {
        return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    const auto fused = search({QueryClause::of_text("body", q), QueryClause::of_text("whole", q)}, 10);
    ASSERT_EQ(fused.size(), 10u);
    for (std::size_t i = 0; i < fused.size(); ++i) {
        EXPECT_EQ(fused[i].id, want[i].second) << i;
        EXPECT_NEAR(fused[i].score, want[i].first, 1e-12) << i;
        const auto it = chunk_of.find(fused[i].id);
        if (it == chunk_of.end()) {
            EXPECT_FALSE(fused[i].chunk.has_value());
        } else {
            ASSERT_TRUE(fused[i].chunk.has_value());
            EXPECT_EQ(*fused[i].chunk, it->second);
        }
    }
}

TEST(ChunkedField, SchemaRules) {
    ChunkingSpec spec;
    Schema s = chunked_schema(spec);
    EXPECT_TRUE(s.validate());
    s.fields[3].chunking->overlap = spec.size;  // overlap must be below size
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
    s = chunked_schema(spec);
    s.fields[3].indexed = false;  // only indexed text fields
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
    s = chunked_schema(spec);
    s.fields[2].chunking = spec;  // a keyword field
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
    s = chunked_schema(spec);
    FieldSpec v;
    v.name = "v";
    v.type = FieldType::kVector;
    v.dim = 8;
    v.encoder = "hashing";
    v.sources = {"text"};
    v.chunking = spec;  // a vector field with an encoder is chunked (chunked_vector_test.cpp)
    s.fields.push_back(v);
    EXPECT_TRUE(s.validate());
    s.fields.back().encoder.clear();  // without one (vectors given directly): refused, not ignored
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
}

// The schema with its chunking survives the MANIFEST (version 3) across a reopen.
TEST(ChunkedField, SchemaPersists) {
    testing::TempDir dir;
    ChunkingSpec spec;
    spec.unit = pipeline::ChunkUnit::kSentences;
    spec.size = 3;
    spec.overlap = 1;
    spec.situated = true;
    spec.context = 2;
    spec.aggregation = ChunkAggregation::kSumP;
    CollectionOptions options;
    options.background_merge = false;
    {
        auto c = Collection::create(dir.file("c"), chunked_schema(spec), options);
        ASSERT_TRUE(c) << c.error().to_string();
    }
    auto c = Collection::open(dir.file("c"), options);
    ASSERT_TRUE(c) << c.error().to_string();
    const FieldSpec* body = (*c)->schema().find("body");
    ASSERT_NE(body, nullptr);
    ASSERT_TRUE(body->chunking.has_value());
    EXPECT_EQ(*body->chunking, spec);
    EXPECT_FALSE((*c)->schema().find("whole")->chunking.has_value());
    // MANIFEST version 3 (container header: magic, kind, version), which older builds refuse.
    std::string bytes = testing::read_bytes(dir.file("c") + "/MANIFEST");
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    EXPECT_EQ(version, 3u);
}

}  // namespace
}  // namespace quiver::engine
