// Fusion operators against hand-computed values, and the query operations over snapshots: pagination
// (offset, search_after), filter-only search, batch search, count, scroll under concurrent writes,
// delete by filter, partial update.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "engine_test_util.h"
#include "quiver/engine/collection.h"
#include "quiver/engine/fusion.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using testutil::make_doc;
using testutil::small_schema;

// A = [1: 3.0, 2: 2.0, 3: 1.0], B = [3: 0.9, 4: 0.5]; expected values computed by hand (and in Python).
const std::vector<std::vector<RankedItem>> kLists = {{{1, 3.0}, {2, 2.0}, {3, 1.0}}, {{3, 0.9}, {4, 0.5}}};

void expect_fused(const FusionSpec& spec, const std::vector<RankedItem>& want) {
    ASSERT_TRUE(validate_fusion(spec, kLists.size()));
    const auto got = fuse(kLists, spec);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].key, want[i].key) << "rank " << i;
        EXPECT_NEAR(got[i].score, want[i].score, 1e-12) << "rank " << i;
    }
}

TEST(Fusion, ReciprocalRank) {
    FusionSpec rrf;  // k = 60, weights 1
    // 3: 1/63 + 1/61; 1: 1/61; 2 and 4 tie at 1/62 and are ordered by key.
    expect_fused(rrf, {{3, 1.0 / 63 + 1.0 / 61}, {1, 1.0 / 61}, {2, 1.0 / 62}, {4, 1.0 / 62}});
    FusionSpec weighted;
    weighted.rrf_k = 1.0;
    weighted.weights = {2.0, 0.5};
    // 1: 2/2; 3: 2/4 + 0.5/2; 2: 2/3; 4: 0.5/3.
    expect_fused(weighted, {{1, 1.0}, {3, 0.75}, {2, 2.0 / 3}, {4, 0.5 / 3}});
}

TEST(Fusion, ConvexCombinations) {
    FusionSpec mm;
    mm.method = FusionMethod::kConvex;
    mm.normalization = ScoreNormalization::kMinMax;
    mm.weights = {0.7, 0.3};
    // A -> 1, 0.5, 0; B -> 1, 0.
    expect_fused(mm, {{1, 0.7}, {2, 0.35}, {3, 0.3}, {4, 0.0}});
    FusionSpec z = mm;
    z.normalization = ScoreNormalization::kZScore;
    z.weights = {};
    // A: mean 2, sd sqrt(2/3) -> +-1.2247448713915890; B: mean 0.7, sd 0.2 -> +-1.
    expect_fused(z, {{1, 1.224744871391589}, {2, 0.0}, {3, -0.22474487139158872}, {4, -1.0}});
    FusionSpec dbsf = z;
    dbsf.normalization = ScoreNormalization::kDbsf;
    // (s - (mean - 3 sd)) / (6 sd): A -> 0.70412, 0.5, 0.29588; B -> 2/3, 1/3.
    expect_fused(dbsf, {{3, 0.9625425214347352}, {1, 0.7041241452319316}, {2, 0.5}, {4, 1.0 / 3}});
}

TEST(Fusion, DegenerateListsAndBadSpecs) {
    std::vector<double> one = {5.0, 5.0};
    normalize_scores(one, ScoreNormalization::kMinMax);
    EXPECT_EQ(one, (std::vector<double>{1.0, 1.0}));
    one = {5.0, 5.0};
    normalize_scores(one, ScoreNormalization::kZScore);
    EXPECT_EQ(one, (std::vector<double>{0.0, 0.0}));
    one = {5.0};
    normalize_scores(one, ScoreNormalization::kDbsf);
    EXPECT_EQ(one, (std::vector<double>{0.5}));
    std::vector<double> wide = {100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};  // outlier clamps to 1
    normalize_scores(wide, ScoreNormalization::kDbsf);
    EXPECT_EQ(wide[0], 1.0);
    FusionSpec bad;
    bad.weights = {1.0};
    EXPECT_FALSE(validate_fusion(bad, 2));
    bad.weights = {1.0, -1.0};
    EXPECT_FALSE(validate_fusion(bad, 2));
    bad.weights = {};
    bad.rrf_k = -1.0;
    EXPECT_FALSE(validate_fusion(bad, 2));
    EXPECT_FALSE(parse_fusion_method("sum"));
    EXPECT_FALSE(parse_normalization("l2"));
    EXPECT_TRUE(fuse({}, FusionSpec{}).empty());
}

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    return o;
}

class Queries : public ::testing::Test {
protected:
    void SetUp() override {
        auto c = Collection::create(dir_.file("c"), small_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        c_ = *c;
        // 3 segments (two batches, one flushed), ids d0..d59.
        std::vector<Document> a, b;
        for (std::uint64_t i = 0; i < 60; ++i) (i < 35 ? a : b).push_back(make_doc(i, static_cast<std::int64_t>(i)));
        ASSERT_TRUE(c_->upsert(std::move(a)));
        ASSERT_TRUE(c_->flush());
        ASSERT_TRUE(c_->upsert(std::move(b)));
    }
    static Filter even() {
        Filter f;
        f.field = "tag";
        f.values.push_back(std::string("even"));
        return f;
    }
    testing::TempDir dir_;
    std::shared_ptr<Collection> c_;
};

TEST_F(Queries, OffsetAndSearchAfterWalkTheSameOrder) {
    SearchRequest all;
    all.clauses.push_back(QueryClause::of_text("body", "common words"));
    all.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(7)));
    all.clauses[1].weight = 2.0;
    all.k = 60;
    auto full = c_->search(all);
    ASSERT_TRUE(full) << full.error().to_string();
    ASSERT_EQ(full->size(), 60u);
    for (std::size_t i = 1; i < full->size(); ++i) {  // score desc, then id asc
        const auto& p = (*full)[i - 1];
        const auto& q = (*full)[i];
        EXPECT_TRUE(p.score > q.score || (p.score == q.score && p.id < q.id)) << i;
    }
    // Every hit is one of the clauses' hits: d7 (the query's own vector) is among them.
    EXPECT_TRUE(std::any_of(full->begin(), full->end(), [](const SearchHit& h) { return h.id == "d7"; }));
    std::vector<std::string> by_offset, by_cursor;
    SearchRequest page = all;
    page.k = 7;
    for (page.offset = 0; page.offset < 60; page.offset += 7) {
        auto hits = c_->search(page);
        ASSERT_TRUE(hits);
        for (const auto& h : *hits) by_offset.push_back(h.id);
    }
    page.offset = 0;
    for (;;) {
        auto hits = c_->search(page);
        ASSERT_TRUE(hits);
        for (const auto& h : *hits) by_cursor.push_back(h.id);
        if (hits->size() < page.k) break;
        page.search_after = SearchAfter{hits->back().score, hits->back().id};
    }
    std::vector<std::string> want;
    for (const auto& h : *full) want.push_back(h.id);
    EXPECT_EQ(by_offset, want);
    EXPECT_EQ(by_cursor, want);
    // score_threshold cuts the tail exactly.
    SearchRequest cut = all;
    cut.score_threshold = (*full)[9].score;
    auto top = c_->search(cut);
    ASSERT_TRUE(top);
    std::size_t n = 0;
    for (const auto& h : *full) n += h.score >= (*full)[9].score ? 1 : 0;
    EXPECT_EQ(top->size(), n);
    EXPECT_GE(n, 10u);
    SearchRequest deep = all;
    deep.offset = 9995;
    deep.k = 10;
    EXPECT_FALSE(c_->search(deep));
}

TEST_F(Queries, FilterOnlyCountScrollAndBatch) {
    SearchRequest f;
    f.filter = even();
    f.k = 4;
    f.offset = 2;
    auto hits = c_->search(f);
    ASSERT_TRUE(hits) << hits.error().to_string();
    // Even ids in bytewise order: d0 d10 d12 d14 d16 ...
    ASSERT_EQ(hits->size(), 4u);
    EXPECT_EQ((*hits)[0].id, "d12");
    EXPECT_EQ((*hits)[3].id, "d18");
    EXPECT_EQ((*hits)[0].score, 1.0);
    EXPECT_EQ(*c_->count(std::nullopt), 60u);
    EXPECT_EQ(*c_->count(even()), 30u);
    Filter bad;
    bad.field = "nope";
    bad.values.push_back(std::string("x"));
    EXPECT_FALSE(c_->count(bad));
    // Batch: same answers as one by one.
    std::vector<SearchRequest> batch(3);
    batch[0].clauses.push_back(QueryClause::of_text("body", "tok5"));
    batch[1] = f;
    batch[2].clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(40)));
    auto results = c_->search_batch(batch);
    ASSERT_TRUE(results);
    ASSERT_EQ(results->size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        auto one = c_->search(batch[i]);
        ASSERT_TRUE(one);
        ASSERT_EQ((*results)[i].size(), one->size());
        for (std::size_t j = 0; j < one->size(); ++j) EXPECT_EQ((*results)[i][j].id, (*one)[j].id);
    }
    EXPECT_EQ((*results)[0][0].id, "d5");
    EXPECT_EQ((*results)[2][0].id, "d40");
    batch[1].clauses.push_back(QueryClause::of_text("nope", "x"));
    auto failed = c_->search_batch(batch);
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().message().find("search 1"), std::string::npos);
}

TEST_F(Queries, ScrollVisitsEveryStableDocumentOnceWhileWritesGoOn) {
    std::atomic<bool> stop{false};
    // Writers: rewrite d0..d59 (new versions, same ids), add and delete n100.., merge in between.
    std::thread writer([&] {
        std::uint64_t next = 100;
        while (!stop.load()) {
            std::vector<Document> docs;
            for (std::uint64_t i = 0; i < 60; i += 7) docs.push_back(make_doc(i, static_cast<std::int64_t>(next)));
            docs.push_back(make_doc(next, 1));
            ASSERT_TRUE(c_->upsert(std::move(docs)));
            ASSERT_TRUE(c_->remove({"d" + std::to_string(next - 1)}));
            if (next % 5 == 0) ASSERT_TRUE(c_->flush());
            ++next;
        }
    });
    for (int round = 0; round < 5; ++round) {
        ScrollRequest s;
        s.limit = 9;
        s.return_fields = std::vector<std::string>{};
        std::multiset<std::string> seen;
        std::string last;
        for (;;) {
            auto page = c_->scroll(s);
            ASSERT_TRUE(page) << page.error().to_string();
            for (const auto& d : page->documents) {
                EXPECT_GT(d.id, last);  // strictly increasing across pages
                last = d.id;
                seen.insert(d.id);
                EXPECT_TRUE(d.fields.empty());
            }
            if (!page->next_after) break;
            s.after = *page->next_after;
        }
        for (std::uint64_t i = 0; i < 60; ++i) EXPECT_EQ(seen.count("d" + std::to_string(i)), 1u) << i;
    }
    stop = true;
    writer.join();
    ScrollRequest evens;
    evens.filter = even();
    evens.limit = 1000;
    auto page = c_->scroll(evens);
    ASSERT_TRUE(page);
    EXPECT_FALSE(page->next_after);
    for (const auto& d : page->documents) EXPECT_EQ(std::get<std::string>(d.fields.at("tag")), "even");
    EXPECT_EQ(page->documents.size(), *c_->count(even()));
}

TEST_F(Queries, DeleteByFilterAndPatch) {
    auto n = c_->remove_where(even());
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 30u);
    EXPECT_EQ(*c_->count(std::nullopt), 30u);
    EXPECT_EQ(*c_->count(even()), 0u);
    EXPECT_FALSE(c_->get("d2"));
    // Patch: merge one field, remove another, keep the rest.
    Document p;
    p.id = "d3";
    p.fields["ver"] = std::int64_t{999};
    p.fields["tag"] = std::monostate{};
    auto updated = c_->patch({p});
    ASSERT_TRUE(updated) << updated.error().to_string();
    EXPECT_EQ(*updated, 1u);
    auto d = c_->get("d3");
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), 999);
    EXPECT_EQ(d->fields.count("tag"), 0u);
    EXPECT_EQ(std::get<std::string>(d->fields.at("body")), "tok3 common words v3");
    EXPECT_EQ(std::get<std::vector<float>>(d->fields.at("emb")), testutil::vector_for(3));
    // A missing id fails the whole batch; nothing is written.
    Document q = p;
    q.id = "d5";
    q.fields = {{"ver", std::int64_t{5000}}};
    Document missing;
    missing.id = "d2";
    missing.fields = {{"ver", std::int64_t{1}}};
    auto failed = c_->patch({q, missing});
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::get<std::int64_t>(c_->get("d5")->fields.at("ver")), 5);
    Document wrong;
    wrong.id = "d5";
    wrong.fields = {{"emb", std::vector<float>{1.0f}}};
    EXPECT_FALSE(c_->patch({wrong}));
}

TEST(QueriesEncoded, PatchReembedsAVectorWhoseSourceChanged) {
    testing::TempDir dir;
    Schema s;
    FieldSpec body;
    body.name = "body";
    FieldSpec v;
    v.name = "v";
    v.type = FieldType::kVector;
    v.dim = 16;
    v.index = VectorIndexKind::kFlat;
    v.encoder = "hashing";
    v.sources = {"body"};
    FieldSpec year;
    year.name = "year";
    year.type = FieldType::kInteger;
    s.fields = {body, v, year};
    auto c = Collection::create(dir.file("c"), s, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    Document a;
    a.id = "a";
    a.fields["body"] = std::string("quiet river stones");
    ASSERT_TRUE((*c)->upsert({a}));
    const auto before = std::get<std::vector<float>>((*c)->get("a")->fields.at("v"));
    Document y;
    y.id = "a";
    y.fields["year"] = std::int64_t{2001};
    ASSERT_TRUE((*c)->patch({y}));
    EXPECT_EQ(std::get<std::vector<float>>((*c)->get("a")->fields.at("v")), before);  // untouched
    Document t;
    t.id = "a";
    t.fields["body"] = std::string("loud city trains");
    ASSERT_TRUE((*c)->patch({t}));
    const auto after = std::get<std::vector<float>>((*c)->get("a")->fields.at("v"));
    Document fresh;
    fresh.id = "b";
    fresh.fields["body"] = std::string("loud city trains");
    ASSERT_TRUE((*c)->upsert({fresh}));
    EXPECT_NE(after, before);
    EXPECT_EQ(after, std::get<std::vector<float>>((*c)->get("b")->fields.at("v")));
    EXPECT_EQ(std::get<std::int64_t>((*c)->get("a")->fields.at("year")), 2001);
}

}  // namespace
}  // namespace quiver::engine
