// JSON <-> engine values for multi_vector fields and encoder-backed sparse_vector fields (issue 15):
// schemas round-trip, documents and queries give token vectors or text, malformed ones are refused.
#include <gtest/gtest.h>

#include "quiver/core/json.h"
#include "quiver/server/json_codec.h"

namespace quiver::server {
namespace {

json::Value parse(std::string_view text) { return std::move(json::parse(text)).value(); }

const char* kSchema = R"({"fields": [
  {"name": "title", "type": "text"},
  {"name": "splade", "type": "sparse_vector", "encoder": "splade", "sources": ["title"]},
  {"name": "colbert", "type": "multi_vector", "dim": 2, "index": "muvera", "m": 8, "ef_construction": 40,
   "encoder": "colbert", "sources": ["title"]},
  {"name": "tv", "type": "multi_vector", "dim": 3, "index": "exact"},
  {"name": "terms", "type": "sparse_vector"}]})";

TEST(MultiVectorCodec, SchemaRoundTrip) {
    auto s = schema_from_json(parse(kSchema));
    ASSERT_TRUE(s) << s.error().to_string();
    const engine::FieldSpec* mv = s->find("colbert");
    ASSERT_NE(mv, nullptr);
    EXPECT_EQ(mv->type, engine::FieldType::kMultiVector);
    EXPECT_EQ(mv->dim, 2u);
    EXPECT_EQ(mv->mv_index, engine::MultiVectorIndexKind::kMuvera);
    EXPECT_EQ(mv->hnsw_m, 8u);
    EXPECT_EQ(mv->hnsw_ef_construction, 40u);
    EXPECT_EQ(mv->encoder, "colbert");
    EXPECT_EQ(s->find("tv")->mv_index, engine::MultiVectorIndexKind::kExact);
    EXPECT_EQ(s->find("splade")->encoder, "splade");
    EXPECT_EQ(s->find("splade")->sources, std::vector<std::string>{"title"});
    const std::string dumped = json::dump(schema_to_json(*s));
    auto again = schema_from_json(parse(dumped));
    ASSERT_TRUE(again) << again.error().to_string() << "\n" << dumped;
    EXPECT_EQ(json::dump(schema_to_json(*again)), dumped);
    EXPECT_NE(dumped.find(R"("index":"exact")"), std::string::npos) << dumped;
    // Refused: a bad index kind, no dim, unknown keys, an encoder on a keyword field.
    for (const char* bad : {R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "index": "hnsw"}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector"}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "metric": "l2"}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 5000}]})",
                            R"({"fields": [{"name": "t", "type": "sparse_vector", "encoder": "x", "index": true}]})",
                            R"({"fields": [{"name": "t", "type": "keyword", "encoder": "x"}]})"}) {
        auto r = schema_from_json(parse(bad));
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
        }
    }
}

// MUVERA options of a multi_vector field: defaults (blocked FDEs, k_sim 6, d_proj 8, r_reps 8, 3,200
// candidates), given values, the legacy HNSW layout, and what is refused.
TEST(MultiVectorCodec, MuveraOptions) {
    auto s = schema_from_json(parse(R"({"fields": [{"name": "a", "type": "multi_vector", "dim": 4},
        {"name": "b", "type": "multi_vector", "dim": 4, "index": "muvera", "fde": "blocks", "k_sim": 5, "d_proj": 0,
         "r_reps": 3, "candidates": 500, "token_codec": "int8"},
        {"name": "c", "type": "multi_vector", "dim": 4, "fde": "hnsw", "k_sim": 4, "d_proj": 16, "r_reps": 10,
         "candidates": 0, "m": 12}]})"));
    ASSERT_TRUE(s) << s.error().to_string();
    EXPECT_EQ(s->find("a")->muvera, engine::MuveraFieldParams{});
    const engine::MuveraFieldParams& b = s->find("b")->muvera;
    EXPECT_EQ(b.fde, engine::MuveraFdeKind::kBlocks);
    EXPECT_EQ(b.k_sim, 5u);
    EXPECT_EQ(b.d_proj, 0u);
    EXPECT_EQ(b.r_reps, 3u);
    EXPECT_EQ(b.candidates, 500u);
    EXPECT_EQ(s->find("b")->token_codec, multivector::TokenCodec::kInt8);
    EXPECT_EQ(s->find("c")->muvera, engine::MuveraFieldParams::legacy());
    EXPECT_EQ(s->find("c")->hnsw_m, 12u);
    const std::string dumped = json::dump(schema_to_json(*s));
    EXPECT_NE(dumped.find(R"("fde":"blocks","k_sim":6,"d_proj":8,"r_reps":8,"candidates":3200)"), std::string::npos) << dumped;
    EXPECT_NE(dumped.find(R"("fde":"hnsw","k_sim":4,"d_proj":16,"r_reps":10,"candidates":0,"m":12)"), std::string::npos)
        << dumped;
    auto again = schema_from_json(parse(dumped));
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(json::dump(schema_to_json(*again)), dumped);
    for (const char* bad : {R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "fde": "ivf"}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "fde": 1}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "k_sim": 11}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "k_sim": 0}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "r_reps": 65}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "d_proj": -1}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "candidates": 100001}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "k_sim": 10, "d_proj": 16}]})",
                            R"({"fields": [{"name": "t", "type": "multi_vector", "dim": 2, "index": "exact", "k_sim": 6}]})",
                            R"({"fields": [{"name": "t", "type": "vector", "dim": 2, "k_sim": 6}]})"}) {
        auto r = schema_from_json(parse(bad));
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
        }
    }
}

TEST(MultiVectorCodec, DocumentsAndQueries) {
    auto s = schema_from_json(parse(kSchema));
    ASSERT_TRUE(s);
    auto d = document_from_json(*s, parse(R"({"id": "a", "title": "x", "tv": [[1, 2, 3], [4, 5, 6.5]],
                                            "colbert": "some text", "splade": "more text", "terms": {"x": 1}})"));
    ASSERT_TRUE(d) << d.error().to_string();
    const auto& tv = std::get<engine::TokenVectors>(d->fields.at("tv"));
    EXPECT_EQ(tv.dim, 3u);
    EXPECT_EQ(tv.values, (std::vector<float>{1, 2, 3, 4, 5, 6.5f}));
    EXPECT_EQ(std::get<std::string>(d->fields.at("colbert")), "some text");  // encoded by the collection
    EXPECT_EQ(std::get<std::string>(d->fields.at("splade")), "more text");
    const json::Value out = document_to_json(*s, *d);
    ASSERT_NE(out.find("tv"), nullptr);
    EXPECT_EQ(json::dump(*out.find("tv")), "[[1,2,3],[4,5,6.5]]");
    for (const char* bad : {R"({"id": "a", "tv": [[1, 2, 3], [4, 5]]})", R"({"id": "a", "tv": [[]]})",
                            R"({"id": "a", "tv": [1, 2, 3]})", R"({"id": "a", "tv": "text without encoder"})",
                            R"({"id": "a", "terms": "text without encoder"})"}) {
        auto r = document_from_json(*s, parse(bad));
        EXPECT_FALSE(r) << bad;
    }
    auto q = search_from_json(parse(R"({"field": "tv", "vectors": [[1, 0, 0]], "limit": 3})"), 1000, *s);
    ASSERT_TRUE(q) << q.error().to_string();
    ASSERT_EQ(q->clauses.size(), 1u);
    EXPECT_EQ(q->clauses[0].tokens.rows(), 1u);
    q = search_from_json(parse(R"({"queries": [{"field": "colbert", "text": "t"}, {"field": "tv", "vectors": [[0, 1, 0]],
                                   "weight": 2}, {"field": "splade", "text": "t"}], "fusion": {"method": "rrf"}})"),
                         1000, *s);
    ASSERT_TRUE(q) << q.error().to_string();
    EXPECT_EQ(q->clauses.size(), 3u);
    EXPECT_EQ(q->clauses[1].weight, 2.0);
    for (const char* bad : {R"({"field": "tv", "vectors": [[1, 0, 0]], "vector": [1, 0, 0]})",
                            R"({"field": "tv", "vectors": []})", R"({"field": "tv", "vectors": [[1], [1, 2]]})"}) {
        auto r = search_from_json(parse(bad), 1000, *s);
        EXPECT_FALSE(r) << bad;
    }
    // with_vectors covers multi_vector fields; the default leaves them out.
    auto fields = resolve_return_fields(*s, std::nullopt, false);
    ASSERT_TRUE(fields);
    EXPECT_EQ(*fields, std::vector<std::string>{"title"});
}

}  // namespace
}  // namespace quiver::server
