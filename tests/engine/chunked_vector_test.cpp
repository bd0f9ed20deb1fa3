// Chunked vector fields (issue 13, long documents, for encoder-backed fields): a collection's chunk
// aggregation equals brute force — every chunk of every live document (pipeline::chunk_document)
// embedded with the field's encoder, every non-zero chunk vector scored exhaustively by similarity,
// cut at the search's chunk depth, aggregated by pipeline::aggregate_chunks — through the memtable,
// persisted segments, reopen, deletes, patches, upserts, filters, pagination and optimize, for maxp,
// firstp and sump. Also: schema rules, the refusal of vectors given directly, chunk vectors given
// directly, the chunk map's damage checks (kDataLoss), and an HNSW field on quantized codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "quiver/encode/encoder.h"
#include "quiver/engine/collection.h"
#include "quiver/index/flat_index.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/simd/kernels.h"
#include "chunked_test_util.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using pipeline::ChunkAggregation;
using pipeline::ChunkingSpec;
using chunked_test::make;
using chunked_test::random_text;
using chunked_test::Stored;

constexpr std::size_t kDim = 16;

struct Expected {
    std::string id;
    double score;
    std::vector<std::uint32_t> best_chunks;  // chunks scoring within kTolerance of the one aggregated
};

// The memtable and the segments' flat index compute the same distances with kernels that may round
// the last bit differently; identical chunks then tie only to within an ulp. Scores are compared to
// this tolerance, and hits whose scores tie within it may come in either order.
constexpr double kTolerance = 1e-5;
bool near(double a, double b) { return chunked_test::near(a, b, kTolerance); }

FieldSpec dense_field(const ChunkingSpec& spec) {
    FieldSpec v;
    v.name = "dense";
    v.type = FieldType::kVector;
    v.dim = kDim;
    v.metric = simd::Metric::kCosine;
    v.index = VectorIndexKind::kFlat;
    v.encoder = "hashing";
    v.sources = {"title", "text"};
    v.chunking = spec;
    return v;
}

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
    s.fields = {title, text, tag, dense_field(spec)};
    return s;
}

// The field's encoder (the collection loads the same one for "hashing"): one text's unit vector, or
// an empty vector when it embeds to zero.
std::vector<float> embed(const std::string& text, encode::EncodeRole role) {
    encode::HashingEncoder enc(kDim);
    std::string_view views[1] = {text};
    encode::EncodeOptions o;
    o.role = role;
    auto e = enc.encode(views, o);
    EXPECT_TRUE(e) << e.error().to_string();
    std::vector<float> v(e->dense.view().row(0).begin(), e->dense.view().row(0).end());
    if (!simd::normalize(v.data(), v.size())) return {};
    return v;
}

// The brute-force reference: every non-zero chunk vector of every live (filtered) document scored by
// cosine similarity (1 - distance, in float), ordered by (score desc, id asc, chunk asc), cut at the
// search's depth rule (3 x wanted chunks, sump at least 3,000, 4x deeper while fewer than `wanted`
// documents come out), aggregated, ordered by (score desc, id asc).
std::vector<Expected> brute_force(const std::map<std::string, Stored>& live, const ChunkingSpec& spec,
                                  const std::string& query, std::size_t wanted, const std::string* tag_filter) {
    const std::vector<float> q = embed(query, encode::EncodeRole::kQuery);
    EXPECT_FALSE(q.empty());
    const simd::DistanceFn dist = simd::distance_fn(simd::Metric::kCosine);
    std::vector<std::string> parent_ids;
    struct ChunkScore {
        std::uint32_t parent, chunk;
        double score;
    };
    std::vector<ChunkScore> all;
    for (const auto& [id, s] : live) {
        const auto parent = static_cast<std::uint32_t>(parent_ids.size());
        parent_ids.push_back(id);
        if (tag_filter != nullptr && s.tag != *tag_filter) continue;
        const auto chunks = pipeline::chunk_document(s.title, s.text, spec);
        for (std::uint32_t j = 0; j < chunks.size(); ++j) {
            const std::vector<float> v = embed(chunks[j], encode::EncodeRole::kDocument);
            if (v.empty()) continue;  // a chunk with nothing to embed is not indexed
            all.push_back({parent, j, static_cast<double>(1.0f - dist(q.data(), v.data(), kDim))});
        }
    }
    std::sort(all.begin(), all.end(), [&](const ChunkScore& x, const ChunkScore& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.parent != y.parent) return parent_ids[x.parent] < parent_ids[y.parent];
        return x.chunk < y.chunk;
    });
    std::vector<pipeline::DocScore> docs;
    const std::size_t first_depth =
        spec.aggregation == ChunkAggregation::kSumP ? std::max<std::size_t>(3 * wanted, 3000) : 3 * wanted;
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
        Expected e{parent_ids[docs[i].doc], docs[i].score, {}};
        double best = -2.0;
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

Filter tag_is(const std::string& tag) {
    Filter f;
    f.op = Filter::Op::kEq;
    f.field = "tag";
    f.values = {tag};
    return f;
}

class ChunkedVectorTest : public ::testing::TestWithParam<ChunkAggregation> {
protected:
    void SetUp() override {
        spec_.unit = pipeline::ChunkUnit::kTokens;
        spec_.size = 10;
        spec_.overlap = 3;
        spec_.aggregation = GetParam();
        spec_.situated = GetParam() == ChunkAggregation::kSumP;  // one aggregation also with situated chunks
        spec_.context = 2;
        options_.background_merge = false;
        options_.memtable_docs = 64;
        std::mt19937 rng(4321 + static_cast<int>(GetParam()));
        for (int i = 0; i < 90; ++i) {
            Stored s;
            s.title = random_text(rng, 1, 3);
            s.text = random_text(rng, 0, i % 7 == 0 ? 90 : 30);  // some empty, some long documents
            s.tag = i % 3 == 0 ? "a" : "b";
            docs_.emplace("doc" + std::to_string(i), s);
        }
        std::mt19937 qrng(77);
        for (int q = 0; q < 10; ++q) queries_.push_back(random_text(qrng, 1, 3));
    }

    static void expect_ranks(const std::vector<SearchHit>& hits, std::size_t offset, const std::vector<Expected>& want,
                             const std::string& what) {
        chunked_test::expect_ranks(hits, offset, want, what, kTolerance);
    }

    // Every query at several page sizes, with and without the filter, against brute force; pages.
    void check(Collection& c, const std::string& stage) {
        SCOPED_TRACE(stage);
        const std::string a = "a";
        for (const std::string& q : queries_) {
            for (const bool filtered : {false, true}) {
                const auto want = brute_force(docs_, spec_, q, 1000, filtered ? &a : nullptr);
                ASSERT_FALSE(want.empty());
                for (std::size_t k : {1u, 5u, 20u}) {
                    SearchRequest r;
                    r.clauses.push_back(QueryClause::of_text("dense", q));
                    r.k = k;
                    r.return_fields = std::vector<std::string>{};
                    if (filtered) r.filter = tag_is("a");
                    auto hits = c.search(r);
                    ASSERT_TRUE(hits) << hits.error().to_string();
                    const std::string what = "query '" + q + "' k " + std::to_string(k) + (filtered ? " filtered" : "");
                    ASSERT_EQ(hits->size(), std::min<std::size_t>(k, want.size())) << what;
                    expect_ranks(*hits, 0, want, what);
                    for (const auto& h : *hits) {
                        if (filtered) {
                            EXPECT_EQ(docs_.at(h.id).tag, "a") << what;
                        }
                    }
                }
                // Pages of 4 are ranks 0..15, no document twice.
                SearchRequest r;
                r.clauses.push_back(QueryClause::of_text("dense", q));
                r.return_fields = std::vector<std::string>{};
                if (filtered) r.filter = tag_is("a");
                std::set<std::string> seen;
                std::size_t total = 0;
                for (std::size_t offset = 0; offset < 16; offset += 4) {
                    r.k = 4;
                    r.offset = offset;
                    auto page = c.search(r);
                    ASSERT_TRUE(page) << page.error().to_string();
                    ASSERT_EQ(page->size(), std::min<std::size_t>(4, want.size() - std::min(want.size(), offset)));
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
        auto st = c.upsert(std::move(batch));
        ASSERT_TRUE(st) << st.error().to_string();
    }

    ChunkingSpec spec_;
    CollectionOptions options_;
    std::map<std::string, Stored> docs_;
    std::vector<std::string> queries_;
};

TEST_P(ChunkedVectorTest, EqualsBruteForceThroughTheLifecycle) {
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
    // The stored document holds the chunk vectors, one row per chunk.
    {
        auto got = (*c)->get("doc7");
        ASSERT_TRUE(got) << got.error().to_string();
        const Stored& s = docs_.at("doc7");
        const auto* tv = std::get_if<TokenVectors>(&got->fields.at("dense"));
        ASSERT_NE(tv, nullptr);
        EXPECT_EQ(tv->dim, kDim);
        EXPECT_EQ(tv->rows(), pipeline::chunk_document(s.title, s.text, spec_).size());
    }
    // Deletes, a patch of a chunked document's text, an upsert replacing another: all chunks replaced.
    auto removed = (*c)->remove({"doc3", "doc10", "doc42", "doc77"});
    ASSERT_TRUE(removed);
    EXPECT_EQ(*removed, 4u);
    for (const char* id : {"doc3", "doc10", "doc42", "doc77"}) docs_.erase(id);
    std::mt19937 rng(7);
    Stored& patched = docs_.at("doc14");
    patched.text = random_text(rng, 60, 80);
    Document partial;
    partial.id = "doc14";
    partial.fields["text"] = patched.text;
    ASSERT_TRUE((*c)->patch({partial}));
    Document tag_only;  // a patch of another field keeps the stored chunk vectors
    tag_only.id = "doc15";
    tag_only.fields["tag"] = std::string("a");
    docs_.at("doc15").tag = "a";
    ASSERT_TRUE((*c)->patch({tag_only}));
    Stored& replaced = docs_.at("doc0");  // a long document becomes a short one
    replaced.text = random_text(rng, 3, 5);
    replaced.tag = "a";
    upsert(**c, {"doc0"});
    check(**c, "after deletes, patches and an upsert");
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
    const auto* tv = std::get_if<TokenVectors>(&got->fields.at("dense"));
    ASSERT_NE(tv, nullptr);
    EXPECT_EQ(tv->rows(), pipeline::chunk_document(patched.title, patched.text, spec_).size());
}

INSTANTIATE_TEST_SUITE_P(Aggregations, ChunkedVectorTest,
                         ::testing::Values(ChunkAggregation::kMaxP, ChunkAggregation::kFirstP, ChunkAggregation::kSumP),
                         [](const auto& param_info) { return std::string(pipeline::to_string(param_info.param)); });

TEST(ChunkedVector, SchemaRules) {
    ChunkingSpec spec;
    Schema s = chunked_schema(spec);
    EXPECT_TRUE(s.validate());
    s.fields[3].encoder.clear();  // vectors given directly cannot be chunked
    auto st = s.validate();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message().find("encoder"), std::string::npos) << st.error().message();
    s = chunked_schema(spec);
    s.fields[3].chunking->overlap = spec.size;
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
    for (FieldType t : {FieldType::kSparse, FieldType::kMultiVector}) {  // SPLADE and ColBERT fields: not chunked
        s = chunked_schema(spec);
        FieldSpec f;
        f.name = "other";
        f.type = t;
        f.dim = t == FieldType::kMultiVector ? 8 : 0;
        f.encoder = "/models/x";
        f.sources = {"text"};
        f.chunking = spec;
        s.fields.push_back(f);
        st = s.validate();
        ASSERT_FALSE(st) << to_string(t);
        EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(st.error().message().find("not chunked"), std::string::npos) << st.error().message();
    }
}

// The schema survives the MANIFEST, written as version 4 (older builds refuse it).
TEST(ChunkedVector, SchemaPersistsAsManifestVersion4) {
    testing::TempDir dir;
    ChunkingSpec spec;
    spec.unit = pipeline::ChunkUnit::kSentences;
    spec.size = 2;
    spec.overlap = 1;
    spec.aggregation = ChunkAggregation::kFirstP;
    CollectionOptions options;
    options.background_merge = false;
    {
        auto c = Collection::create(dir.file("c"), chunked_schema(spec), options);
        ASSERT_TRUE(c) << c.error().to_string();
    }
    auto c = Collection::open(dir.file("c"), options);
    ASSERT_TRUE(c) << c.error().to_string();
    const FieldSpec* dense = (*c)->schema().find("dense");
    ASSERT_NE(dense, nullptr);
    ASSERT_TRUE(dense->chunking.has_value());
    EXPECT_EQ(*dense->chunking, spec);
    std::string bytes = testing::read_bytes(dir.file("c") + "/MANIFEST");
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    EXPECT_EQ(version, 4u);
}

// A chunked field takes text (or chunk vectors); a single vector is refused with a clear error.
// Chunk vectors given directly are indexed as they are (zero rows skipped), and `get` returns them.
TEST(ChunkedVector, ValuesGivenDirectly) {
    testing::TempDir dir;
    ChunkingSpec spec;
    spec.size = 4;
    spec.overlap = 1;
    CollectionOptions options;
    options.background_merge = false;
    auto c = Collection::create(dir.file("c"), chunked_schema(spec), options);
    ASSERT_TRUE(c) << c.error().to_string();
    Document d;
    d.id = "v";
    d.fields["dense"] = std::vector<float>(kDim, 0.5f);
    auto st = (*c)->upsert({d});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message().find("chunked"), std::string::npos) << st.error().message();
    // Rows 0 and 2 given, row 1 zero (not indexed); a query near row 2 returns chunk 2.
    TokenVectors tv;
    tv.dim = kDim;
    tv.values.assign(3 * kDim, 0.0f);
    tv.values[0] = 1.0f;
    tv.values[2 * kDim + 1] = 1.0f;
    d.fields["dense"] = tv;
    ASSERT_TRUE((*c)->upsert({d}));
    for (const bool flushed : {false, true}) {
        if (flushed) {
            ASSERT_TRUE((*c)->flush());
        }
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector("dense", [] {
            std::vector<float> q(kDim, 0.0f);
            q[1] = 1.0f;
            q[0] = 0.1f;
            return q;
        }()));
        r.k = 5;
        auto hits = (*c)->search(r);
        ASSERT_TRUE(hits) << hits.error().to_string();
        ASSERT_EQ(hits->size(), 1u);
        EXPECT_EQ((*hits)[0].id, "v");
        ASSERT_TRUE((*hits)[0].chunk.has_value());
        EXPECT_EQ(*(*hits)[0].chunk, 2u) << (flushed ? "segment" : "memtable");
        EXPECT_NEAR((*hits)[0].score, 1.0 / std::sqrt(1.01), 1e-6);  // the cosine of the best chunk
        auto got = (*c)->get("v");
        ASSERT_TRUE(got);
        EXPECT_EQ(std::get<TokenVectors>(got->fields.at("dense")), tv);
    }
    // Pseudo-relevance feedback needs one vector per document: refused on a chunked field.
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("dense", "river stone"));
    r.clauses.back().prf = pipeline::PrfSpec{};
    r.clauses.back().prf->method = pipeline::PrfMethod::kRocchio;
    auto hits = (*c)->search(r);
    ASSERT_FALSE(hits);
    EXPECT_EQ(hits.error().code(), ErrorCode::kInvalidArgument);
}

// The chunk map is the vector index's entry ids: out-of-order or foreign ids refuse the open with
// kDataLoss, as do damaged bytes.
TEST(ChunkedVector, DamagedChunkMapIsDataLoss) {
    ChunkingSpec spec;
    spec.size = 4;
    spec.overlap = 1;
    CollectionOptions options;
    options.background_merge = false;
    std::mt19937 rng(3);
    std::vector<Document> docs;
    for (int i = 0; i < 12; ++i) {
        docs.push_back(make("d" + std::to_string(i), {random_text(rng, 1, 2), random_text(rng, 5, 12), "a"}));
    }
    auto vec_file = [](const std::string& path) -> std::string {
        for (const auto& e : std::filesystem::recursive_directory_iterator(path)) {
            if (e.path().filename() == "vec_dense.qvr") return e.path().string();
        }
        return {};
    };
    // Rewrites the segment's index with the same vectors under the given entry ids.
    auto rewrite = [&](const std::string& file, const std::vector<std::string>& ids) {
        auto idx = index::FlatIndex::create(kDim, simd::Metric::kCosine);
        ASSERT_TRUE(idx);
        std::vector<float> rows(ids.size() * kDim, 0.0f);
        for (std::size_t i = 0; i < ids.size(); ++i) rows[i * kDim + i % kDim] = 1.0f;
        ASSERT_TRUE((*idx)->add(MatrixView<float>{rows.data(), ids.size(), kDim}, index::sequential_labels(ids.size())));
        (*idx)->set_external_ids(ids);
        ASSERT_TRUE((*idx)->save(file));
    };
    for (int damage = 0; damage < 4; ++damage) {
        SCOPED_TRACE(damage);
        testing::TempDir dir;
        const std::string path = dir.file("c");
        {
            auto c = Collection::create(path, chunked_schema(spec), options);
            ASSERT_TRUE(c) << c.error().to_string();
            ASSERT_TRUE((*c)->upsert(docs));
            ASSERT_TRUE((*c)->flush());
        }
        const std::string file = vec_file(path);
        ASSERT_FALSE(file.empty());
        if (damage == 0) {
            rewrite(file, {"0:0", "0:1", "1:0", "3:0", "2:0"});  // slots out of order
        } else if (damage == 1) {
            rewrite(file, {"0:0", "0:2", "0:1"});  // chunks out of order
        } else if (damage == 2) {
            rewrite(file, {"0:0", "99:0"});  // a slot beyond the segment
        } else {
            std::string bytes = testing::read_bytes(file);  // flipped bytes in the file
            bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
            testing::write_bytes(file, bytes);
        }
        auto c = Collection::open(path, options);
        ASSERT_FALSE(c);
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss) << c.error().to_string();
    }
    // A well-formed map that skips slots (documents without chunks) opens.
    testing::TempDir dir;
    {
        auto c = Collection::create(dir.file("c"), chunked_schema(spec), options);
        ASSERT_TRUE(c) << c.error().to_string();
        ASSERT_TRUE((*c)->upsert(docs));
        ASSERT_TRUE((*c)->flush());
    }
    rewrite(vec_file(dir.file("c")), {"1:0", "1:3", "5:0"});
    auto c = Collection::open(dir.file("c"), options);
    ASSERT_TRUE(c) << c.error().to_string();
    SearchRequest r;
    std::vector<float> q(kDim, 0.0f);
    q[1] = 1.0f;  // entry 1 = chunk 3 of slot 1
    r.clauses.push_back(QueryClause::of_vector("dense", q));
    r.k = 1;
    auto hits = (*c)->search(r);
    ASSERT_TRUE(hits) << hits.error().to_string();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, "d1");
    EXPECT_EQ((*hits)[0].chunk, std::optional<std::uint32_t>(3u));
}

// An HNSW field over sq8 codes (the persisted segments' graph walks codes, rescored in float32):
// every hit's score is the similarity of the chunk it names, and the page is ordered.
TEST(ChunkedVector, HnswOnCodesNamesItsChunks) {
    testing::TempDir dir;
    ChunkingSpec spec;
    spec.size = 6;
    spec.overlap = 2;
    Schema s = chunked_schema(spec);
    s.fields[3].index = VectorIndexKind::kHnsw;
    auto codec = index::CodecSpec::parse("sq8");
    ASSERT_TRUE(codec);
    s.fields[3].quantization.codec = *codec;
    CollectionOptions options;
    options.background_merge = false;
    auto c = Collection::create(dir.file("c"), s, options);
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(11);
    std::map<std::string, Stored> docs;
    std::vector<Document> batch;
    for (int i = 0; i < 300; ++i) {
        Stored st{random_text(rng, 1, 2), random_text(rng, 4, 40), i % 2 == 0 ? "a" : "b"};
        docs.emplace("h" + std::to_string(i), st);
        batch.push_back(make("h" + std::to_string(i), st));
    }
    ASSERT_TRUE((*c)->upsert(batch));
    ASSERT_TRUE((*c)->optimize());
    const simd::DistanceFn dist = simd::distance_fn(simd::Metric::kCosine);
    for (const char* query : {"river maple", "signal copper orbit", "willow"}) {
        for (const bool filtered : {false, true}) {
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_text("dense", query));
            r.k = 10;
            r.return_fields = std::vector<std::string>{};
            if (filtered) r.filter = tag_is("b");
            auto hits = (*c)->search(r);
            ASSERT_TRUE(hits) << hits.error().to_string();
            ASSERT_EQ(hits->size(), 10u);
            const std::vector<float> q = embed(query, encode::EncodeRole::kQuery);
            for (std::size_t i = 0; i < hits->size(); ++i) {
                const SearchHit& h = (*hits)[i];
                if (i > 0) {
                    EXPECT_GE((*hits)[i - 1].score, h.score);
                }
                const Stored& st = docs.at(h.id);
                if (filtered) {
                    EXPECT_EQ(st.tag, "b");
                }
                ASSERT_TRUE(h.chunk.has_value());
                const auto chunks = pipeline::chunk_document(st.title, st.text, spec);
                ASSERT_LT(*h.chunk, chunks.size());
                const std::vector<float> v = embed(chunks[*h.chunk], encode::EncodeRole::kDocument);
                ASSERT_FALSE(v.empty());
                EXPECT_NEAR(h.score, 1.0 - dist(q.data(), v.data(), kDim), 1e-5) << h.id << " chunk " << *h.chunk;
            }
        }
    }
}

}  // namespace
}  // namespace quiver::engine
