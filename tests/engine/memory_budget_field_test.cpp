// Vector fields with a `memory_budget` (docs/collections.md "Memory budget on vector fields"): after
// ingest + optimize the field's persisted segments hold at most the budget, in the configuration
// index/memory_budget.h's rule predicts; a budget too small for the collection refuses the upsert;
// reopening keeps each segment's choice; the JSON schema codec and the schema rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "quiver/engine/collection.h"
#include "quiver/index/memory_budget.h"
#include "quiver/server/json_codec.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

constexpr std::size_t kDim = 32;
constexpr std::size_t kDocs = 3000;

FieldSpec budget_field(const std::string& name, VectorIndexKind kind, simd::Metric metric, std::uint64_t budget) {
    FieldSpec f;
    f.name = name;
    f.type = FieldType::kVector;
    f.dim = kDim;
    f.metric = metric;
    f.index = kind;
    f.hnsw_m = 12;
    f.hnsw_ef_construction = 64;
    f.memory_budget = budget;
    return f;
}

// The rule's candidates for `docs` documents of a field like `f`, in the order tried.
std::vector<index::BudgetChoice> candidates(const FieldSpec& f, std::size_t docs) {
    index::BudgetRequest r;
    r.rows = docs;
    r.dim = f.dim;
    r.metric = f.metric;
    r.index_type = f.index == VectorIndexKind::kFlat ? "flat" : "hnsw";
    r.M = f.hnsw_m;
    auto c = index::budget_candidates(r);
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : std::vector<index::BudgetChoice>{};
}

// What the rule picks for `budget`: the first candidate whose prediction fits.
index::BudgetChoice expected_choice(const std::vector<index::BudgetChoice>& cands, std::uint64_t budget) {
    for (const auto& c : cands) {
        if (c.predicted_bytes <= budget) return c;
    }
    ADD_FAILURE() << "nothing fits " << budget;
    return {};
}

CollectionOptions quiet_options() {
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 2;
    return o;
}

std::vector<float> row(const Matrix<float>& m, std::size_t i) { return {m.row_ptr(i), m.row_ptr(i) + m.dim}; }

double distance(simd::Metric m, const std::vector<float>& q, const std::vector<float>& x) {
    double dot = 0, qq = 0, xx = 0, l2 = 0;
    for (std::size_t j = 0; j < q.size(); ++j) {
        dot += double(q[j]) * x[j];
        qq += double(q[j]) * q[j];
        xx += double(x[j]) * x[j];
        l2 += (double(q[j]) - x[j]) * (double(q[j]) - x[j]);
    }
    if (m == simd::Metric::kL2) return l2;
    if (m == simd::Metric::kInnerProduct) return 1.0 - dot;
    return 1.0 - dot / std::sqrt(qq * xx);
}

// recall@10 of `field` over `queries` against brute force; every score must be the exact distance.
double recall(Collection& c, const FieldSpec& f, const Matrix<float>& base, const Matrix<float>& queries,
              std::vector<std::vector<std::string>>* ids = nullptr) {
    std::size_t found = 0;
    for (std::size_t qi = 0; qi < queries.rows; ++qi) {
        const auto q = row(queries, qi);
        std::vector<std::pair<double, std::size_t>> all;
        for (std::size_t i = 0; i < base.rows; ++i) all.emplace_back(distance(f.metric, q, row(base, i)), i);
        std::partial_sort(all.begin(), all.begin() + 10, all.end());
        std::set<std::string> truth;
        for (std::size_t j = 0; j < 10; ++j) truth.insert("v" + std::to_string(all[j].second));
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector(f.name, q));
        r.k = 10;
        r.return_fields = std::vector<std::string>{};
        auto hits = c.search(r);
        EXPECT_TRUE(hits.ok()) << hits.error().message();
        if (!hits.ok()) return 0;
        std::vector<std::string> got;
        for (const SearchHit& h : *hits) {
            const double exact = distance(f.metric, q, row(base, std::stoul(h.id.substr(1))));
            EXPECT_NEAR(h.score, -exact, 1e-4 * std::max(1.0, std::fabs(exact))) << f.name << " " << h.id;
            found += truth.count(h.id);
            got.push_back(h.id);
        }
        if (ids != nullptr) ids->push_back(std::move(got));
    }
    return double(found) / double(10 * queries.rows);
}

const VectorBudgetStats* budget_of(const CollectionStats& st, const std::string& field) {
    for (const auto& b : st.vector_budgets) {
        if (b.field == field) return &b;
    }
    return nullptr;
}

// For every configuration of the rule (the budget set to its prediction for the collection), ingest
// + optimize picks exactly that configuration, holds at most the budget, searches with exact scores at
// a recall floor, and reopening keeps the choice, the bytes and the answers.
TEST(VectorMemoryBudget, EachBudgetPicksTheRulesChoiceAndFitsAfterOptimize) {
    const auto base = testing::clustered_matrix(kDocs, kDim, 24, 11);
    // Queries near the data: base rows plus a little noise.
    const auto noise = testing::random_matrix(30, kDim, 12);
    Matrix<float> queries(30, kDim);
    for (std::size_t i = 0; i < queries.rows; ++i) {
        for (std::size_t j = 0; j < kDim; ++j) queries.row_ptr(i)[j] = base.row_ptr(i * 97)[j] + 0.05f * noise.row_ptr(i)[j];
    }
    const FieldSpec h = budget_field("h", VectorIndexKind::kHnsw, simd::Metric::kCosine, 1);
    const FieldSpec f = budget_field("f", VectorIndexKind::kFlat, simd::Metric::kL2, 1);
    const auto hc = candidates(h, kDocs);
    const auto fc = candidates(f, kDocs);
    ASSERT_EQ(hc.size(), 5u);  // float32, sq8, sq4, rabitq2, rabitq1
    ASSERT_EQ(fc.size(), 7u);  // and pq16x4, pq8x4
    for (std::size_t i = 0; i < fc.size(); ++i) {
        const std::uint64_t budget_h = hc[std::min(i, hc.size() - 1)].predicted_bytes;
        const std::uint64_t budget_f = fc[i].predicted_bytes;
        const index::BudgetChoice want_h = expected_choice(hc, budget_h);
        const index::BudgetChoice want_f = expected_choice(fc, budget_f);
        Schema s;
        s.fields = {budget_field("h", h.index, h.metric, budget_h), budget_field("f", f.index, f.metric, budget_f)};
        testing::TempDir tmp;
        const std::string dir = tmp.file("c");
        auto c = Collection::create(dir, s, quiet_options());
        ASSERT_TRUE(c.ok()) << c.error().message();
        for (std::size_t b = 0; b < kDocs; b += 1000) {
            std::vector<Document> docs;
            for (std::size_t j = b; j < b + 1000; ++j) {
                Document d;
                d.id = "v" + std::to_string(j);
                d.fields["h"] = row(base, j);
                d.fields["f"] = row(base, j);
                docs.push_back(std::move(d));
            }
            ASSERT_TRUE((*c)->upsert(std::move(docs)).ok());
        }
        EXPECT_TRUE((*c)->stats().vector_budgets.empty());  // nothing persisted yet
        ASSERT_TRUE((*c)->optimize().ok());
        const CollectionStats st = (*c)->stats();
        ASSERT_EQ(st.vector_budgets.size(), 2u);
        EXPECT_EQ(st.vector_budgets[0].field, "h");  // schema order
        for (const auto& [spec, want] : {std::pair{s.fields[0], want_h}, std::pair{s.fields[1], want_f}}) {
            const VectorBudgetStats* b = budget_of(st, spec.name);
            ASSERT_NE(b, nullptr);
            SCOPED_TRACE(spec.name + " budget " + std::to_string(spec.memory_budget) + " want " + want.codec.to_string());
            EXPECT_EQ(b->budget_bytes, spec.memory_budget);
            ASSERT_EQ(b->segments.size(), 1u);
            EXPECT_EQ(b->segments[0].codec, want.codec.to_string());
            EXPECT_EQ(b->segments[0].on_disk, want.vectors_on_disk);
            EXPECT_EQ(b->memory_bytes, b->segments[0].memory_bytes);
            EXPECT_LE(b->memory_bytes, spec.memory_budget);
            EXPECT_GT(b->memory_bytes, 0u);
            // A float32 flat field is exact; graphs and codes (re-scored) reach a floor.
            const double floor = want.codec.kind == index::CodecKind::kNone && spec.index == VectorIndexKind::kFlat ? 1.0 : 0.85;
            EXPECT_GE(recall(**c, spec, base, queries), floor);
        }
        std::vector<std::vector<std::string>> before_h, before_f;
        recall(**c, s.fields[0], base, queries, &before_h);
        recall(**c, s.fields[1], base, queries, &before_f);
        c->reset();
        auto reopened = Collection::open(dir, quiet_options());
        ASSERT_TRUE(reopened.ok()) << reopened.error().message();
        const CollectionStats st2 = (*reopened)->stats();
        ASSERT_EQ(st2.vector_budgets.size(), 2u);
        for (std::size_t k = 0; k < 2; ++k) {
            ASSERT_EQ(st2.vector_budgets[k].segments.size(), 1u);
            EXPECT_EQ(st2.vector_budgets[k].segments[0].codec, st.vector_budgets[k].segments[0].codec);
            EXPECT_EQ(st2.vector_budgets[k].segments[0].on_disk, st.vector_budgets[k].segments[0].on_disk);
            EXPECT_LE(st2.vector_budgets[k].memory_bytes, s.fields[k].memory_budget);
        }
        EXPECT_EQ((*reopened)->schema().fields[1].memory_budget, budget_f);
        std::vector<std::vector<std::string>> after_h, after_f;
        recall(**reopened, s.fields[0], base, queries, &after_h);
        recall(**reopened, s.fields[1], base, queries, &after_f);
        EXPECT_EQ(after_h, before_h);
        EXPECT_EQ(after_f, before_f);
    }
}

// The smallest configuration's prediction for 500 documents is the least budget that holds them: with
// it, 500 documents are accepted and a 501st is refused before it reaches the log.
TEST(VectorMemoryBudget, AnUpsertTheBudgetCannotHoldIsRefused) {
    const FieldSpec probe = budget_field("e", VectorIndexKind::kHnsw, simd::Metric::kCosine, 1);
    const auto cands = candidates(probe, 500);
    std::uint64_t need = ~std::uint64_t{0};
    for (const auto& c : cands) need = std::min(need, c.predicted_bytes);
    Schema s;
    s.fields = {budget_field("e", VectorIndexKind::kHnsw, simd::Metric::kCosine, need)};
    testing::TempDir tmp;
    auto c = Collection::create(tmp.file("c"), s, quiet_options());
    ASSERT_TRUE(c.ok()) << c.error().message();
    const auto base = testing::random_matrix(501, kDim, 3);
    auto docs = [&](std::size_t from, std::size_t to) {
        std::vector<Document> out;
        for (std::size_t j = from; j < to; ++j) {
            Document d;
            d.id = "v" + std::to_string(j);
            d.fields["e"] = row(base, j);
            out.push_back(std::move(d));
        }
        return out;
    };
    auto refused = (*c)->upsert(docs(0, 501));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message().find("field 'e'"), std::string::npos) << refused.error().message();
    EXPECT_NE(refused.error().message().find("memory_budget"), std::string::npos) << refused.error().message();
    EXPECT_EQ((*c)->stats().documents, 0u);
    ASSERT_TRUE((*c)->upsert(docs(0, 500)).ok());
    auto one_more = (*c)->upsert(docs(500, 501));
    ASSERT_FALSE(one_more.ok());
    EXPECT_EQ(one_more.error().code(), ErrorCode::kInvalidArgument);
    ASSERT_TRUE((*c)->optimize().ok());
    const CollectionStats st = (*c)->stats();
    EXPECT_EQ(st.documents, 500u);
    ASSERT_EQ(st.vector_budgets.size(), 1u);
    EXPECT_EQ(st.vector_budgets[0].segments.at(0).codec, expected_choice(cands, need).codec.to_string());
    EXPECT_NE(st.vector_budgets[0].segments.at(0).codec, "none");
    EXPECT_LE(st.vector_budgets[0].memory_bytes, need);
}

TEST(VectorMemoryBudget, SchemaRulesAndJson) {
    Schema s;
    s.fields = {budget_field("e", VectorIndexKind::kHnsw, simd::Metric::kCosine, 1 << 20)};
    EXPECT_TRUE(s.validate().ok());
    s.fields[0].quantization.codec = *index::CodecSpec::parse("sq8");
    EXPECT_EQ(s.validate().error().code(), ErrorCode::kInvalidArgument);
    s.fields[0].quantization = {};
    s.fields[0].on_disk = true;
    EXPECT_FALSE(s.validate().ok());
    FieldSpec text;
    text.name = "t";
    text.type = FieldType::kText;
    text.memory_budget = 100;
    Schema t;
    t.fields = {text};
    EXPECT_FALSE(t.validate().ok());

    auto parse = [](const std::string& field) {
        auto v = json::parse(R"({"fields": [)" + field + "]}");
        EXPECT_TRUE(v.ok());
        return server::schema_from_json(*v);
    };
    const std::string head = R"({"name": "e", "type": "vector", "dim": 8, )";
    auto gib = parse(head + R"("memory_budget": "1GiB"})");
    ASSERT_TRUE(gib.ok()) << gib.error().message();
    EXPECT_EQ(gib->fields[0].memory_budget, 1073741824u);
    auto bytes = parse(head + R"("memory_budget": 123456})");
    ASSERT_TRUE(bytes.ok()) << bytes.error().message();
    EXPECT_EQ(bytes->fields[0].memory_budget, 123456u);
    EXPECT_EQ(parse(head + R"("memory_budget": "2GB"})")->fields[0].memory_budget, 2000000000u);
    for (const char* bad : {R"("memory_budget": "1.5x")", R"("memory_budget": -1)", R"("memory_budget": 0)",
                            R"("memory_budget": 1.5)", R"("memory_budget": true)",
                            R"("memory_budget": "1GiB", "quantization": {"codec": "sq8"})",
                            R"("memory_budget": "1GiB", "on_disk": true)"}) {
        auto r = parse(head + bad + "}");
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    }
    // Round trip.
    auto again = server::schema_from_json(server::schema_to_json(*gib));
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->fields[0].memory_budget, 1073741824u);
}

}  // namespace
}  // namespace quiver::engine
