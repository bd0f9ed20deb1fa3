// Payload indexes and filter evaluation: bitmaps equal the per-document reference (Filter::matches)
// on random filters over random attributes, indexed or not; the file survives a round trip and
// refuses damage; the limits hold; collections answer filtered searches exactly as brute force,
// across memtable, segments, merges and reopen, with the planner's choice in `explain`.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "quiver/engine/collection.h"
#include "quiver/engine/payload_index.h"
#include "quiver/storage/file_format.h"

namespace quiver::engine {
namespace {

namespace fs = std::filesystem;

// color (keyword), size (integer), price (float), ok (boolean), tags (keyword_list), note (keyword);
// `indexed` sets payload_index on all but `note`.
Schema attr_schema(bool indexed, std::size_t dim = 0) {
    Schema s;
    auto add = [&](const char* name, FieldType t, bool idx) {
        FieldSpec f;
        f.name = name;
        f.type = t;
        f.payload_index = idx;
        s.fields.push_back(f);
    };
    add("color", FieldType::kKeyword, indexed);
    add("size", FieldType::kInteger, indexed);
    add("price", FieldType::kFloat, indexed);
    add("ok", FieldType::kBool, indexed);
    add("tags", FieldType::kKeywordList, indexed);
    add("note", FieldType::kKeyword, false);
    if (dim > 0) {
        FieldSpec body;
        body.name = "body";
        body.type = FieldType::kText;
        s.fields.push_back(body);
        FieldSpec v;
        v.name = "emb";
        v.type = FieldType::kVector;
        v.dim = dim;
        v.metric = simd::Metric::kL2;
        v.index = VectorIndexKind::kHnsw;
        v.hnsw_m = 8;
        v.hnsw_ef_construction = 64;
        s.fields.push_back(v);
    }
    return s;
}

const char* kColors[] = {"red", "green", "blue", "rose", "gray", "greige"};
const char* kTags[] = {"a", "ab", "abc", "b", "bc", "c", "d"};

Document random_attrs(std::mt19937_64& rng, std::size_t i) {
    Document d;
    d.id = "doc" + std::to_string(i);
    auto coin = [&](int pct) { return static_cast<int>(rng() % 100) < pct; };
    if (coin(90)) d.fields["color"] = std::string(kColors[rng() % 6]);
    if (coin(85)) d.fields["size"] = static_cast<std::int64_t>(rng() % 50) - 10;
    if (coin(80)) d.fields["price"] = static_cast<double>(rng() % 1000) / 10.0;
    if (coin(75)) d.fields["ok"] = coin(50);
    if (coin(70)) {
        std::vector<std::string> tags;
        const std::size_t n = rng() % 4;  // 0..3, an empty list counts as present
        for (std::size_t j = 0; j < n; ++j) tags.emplace_back(kTags[rng() % 7]);
        d.fields["tags"] = tags;
    }
    if (coin(60)) d.fields["note"] = std::string(kColors[rng() % 6]);
    return d;
}

Filter leaf(std::mt19937_64& rng) {
    Filter f;
    switch (rng() % 11) {
        case 0:
            f.op = Filter::Op::kEq;
            f.field = rng() % 2 ? "color" : "note";
            f.values = {std::string(kColors[rng() % 6])};
            break;
        case 1: {
            f.op = Filter::Op::kIn;
            f.field = "size";
            const std::size_t n = 1 + rng() % 6;
            for (std::size_t i = 0; i < n; ++i) f.values.emplace_back(static_cast<std::int64_t>(rng() % 50) - 10);
            break;
        }
        case 2:
            f.op = Filter::Op::kRange;
            f.field = rng() % 2 ? "size" : "price";
            if (rng() % 2) f.gte = static_cast<double>(rng() % 60) - 10;
            if (rng() % 2) f.gt = static_cast<double>(rng() % 60) - 10;
            if (rng() % 2) f.lt = static_cast<double>(rng() % 100);
            if (rng() % 2) f.lte = static_cast<double>(rng() % 100) + 0.5;
            break;
        case 3:
            f.op = Filter::Op::kExists;
            f.field = std::vector<std::string>{"color", "size", "price", "ok", "tags", "note"}[rng() % 6];
            break;
        case 4:
            f.op = Filter::Op::kPrefix;
            f.field = rng() % 2 ? "color" : "tags";
            f.values = {std::string(rng() % 2 ? "gr" : "a")};
            break;
        case 5:
            f.op = Filter::Op::kNe;
            f.field = rng() % 2 ? "color" : "ok";
            if (f.field == "ok") {
                f.values = {rng() % 2 == 0};
            } else {
                f.values = {std::string(kColors[rng() % 6])};
            }
            break;
        case 6: {
            f.op = Filter::Op::kIn;
            f.field = rng() % 2 ? "tags" : "note";
            const std::size_t n = 1 + rng() % 3;
            for (std::size_t i = 0; i < n; ++i) f.values.emplace_back(std::string(kTags[rng() % 7]));
            if (f.field == "note") f.values.emplace_back(std::string(kColors[rng() % 6]));
            break;
        }
        case 7:
            f.op = Filter::Op::kEq;
            f.field = "price";
            f.values = {static_cast<double>(rng() % 1000) / 10.0};
            break;
        case 8:
            f.op = Filter::Op::kEq;
            f.field = "ok";
            f.values = {rng() % 2 == 0};
            break;
        case 9:
            f.op = Filter::Op::kIn;
            f.field = "price";
            f.values = {static_cast<std::int64_t>(rng() % 100), static_cast<double>(rng() % 1000) / 10.0};
            break;
        default:
            f.op = Filter::Op::kRange;
            f.field = "price";
            f.gte = static_cast<double>(rng() % 50);
            f.lt = *f.gte + static_cast<double>(rng() % 60);
            break;
    }
    return f;
}

Filter random_filter(std::mt19937_64& rng, int depth) {
    if (depth >= 3 || rng() % 3 == 0) return leaf(rng);
    Filter f;
    const auto pick = rng() % 3;
    f.op = pick == 0 ? Filter::Op::kAnd : pick == 1 ? Filter::Op::kOr : Filter::Op::kNot;
    const std::size_t n = f.op == Filter::Op::kNot ? 1 : 1 + rng() % 3;
    for (std::size_t i = 0; i < n; ++i) f.children.push_back(random_filter(rng, depth + 1));
    return f;
}

Bitmap brute(const Filter& f, const std::vector<Document>& docs) {
    Bitmap out;
    for (std::uint32_t i = 0; i < docs.size(); ++i) {
        if (f.matches(docs[i].fields)) out.add(i);
    }
    return out;
}

// Sizes straddle a range bucket boundary (4096 pairs) so buckets and partial edges are both used.
TEST(PayloadIndex, RandomFiltersEqualTheReferenceIndexedOrNot) {
    std::mt19937_64 rng(11);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 9000; ++i) docs.push_back(random_attrs(rng, i));
    const Schema indexed = attr_schema(true);
    const Schema plain = attr_schema(false);
    const PayloadIndex with = PayloadIndex::build(indexed, docs);
    const PayloadIndex without = PayloadIndex::build(plain, docs);
    EXPECT_EQ(with.fields().size(), 5u);
    EXPECT_TRUE(without.fields().empty());
    int nonempty = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const Filter f = random_filter(rng, 0);
        ASSERT_TRUE(f.validate(indexed)) << trial;
        const Bitmap want = brute(f, docs);
        nonempty += want.empty() ? 0 : 1;
        EXPECT_EQ(evaluate_filter(f, with, docs), want) << "trial " << trial;
        EXPECT_EQ(evaluate_filter(f, without, docs), want) << "trial " << trial;
        const CompiledFilter compiled(f);
        for (std::uint32_t i = 0; i < 300; ++i) ASSERT_EQ(compiled.matches(docs[i].fields), want.contains(i));
    }
    EXPECT_GT(nonempty, 200);  // the filters are not degenerate
}

TEST(PayloadIndex, AnInListCostsOneLookupPerValue) {
    std::mt19937_64 rng(3);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 5000; ++i) docs.push_back(random_attrs(rng, i));
    const PayloadIndex idx = PayloadIndex::build(attr_schema(true), docs);
    Filter f;
    f.op = Filter::Op::kIn;
    f.field = "color";
    for (std::size_t i = 0; i < kMaxFilterValues; ++i) f.values.emplace_back("v" + std::to_string(i));
    f.values.emplace_back(std::string("red"));
    ASSERT_FALSE(f.validate(attr_schema(true)));  // one beyond the limit
    f.values.erase(f.values.begin());
    ASSERT_TRUE(f.validate(attr_schema(true)));
    FilterEvalStats stats;
    const Bitmap got = evaluate_filter(f, idx, docs, &stats);
    EXPECT_EQ(stats.index_lookups, kMaxFilterValues);
    EXPECT_EQ(stats.docs_scanned, 0u);
    EXPECT_EQ(got, brute(f, docs));
    // Without an index the same list is one binary search per document (scanned once).
    FilterEvalStats scan;
    const PayloadIndex none = PayloadIndex::build(attr_schema(false), docs);
    EXPECT_EQ(evaluate_filter(f, none, docs, &scan), got);
    EXPECT_EQ(scan.docs_scanned, docs.size());
    // Under an `and`, a scan visits only what the indexed child left.
    Filter both;
    both.op = Filter::Op::kAnd;
    Filter red;
    red.op = Filter::Op::kEq;
    red.field = "color";
    red.values = {std::string("red")};
    Filter note;
    note.op = Filter::Op::kEq;
    note.field = "note";
    note.values = {std::string("blue")};
    both.children = {note, red};
    FilterEvalStats narrowed;
    EXPECT_EQ(evaluate_filter(both, idx, docs, &narrowed), brute(both, docs));
    EXPECT_EQ(narrowed.docs_scanned, brute(red, docs).cardinality());
}

TEST(PayloadIndex, LimitsAndBadFiltersAreRefused) {
    const Schema s = attr_schema(true);
    Filter deep;
    deep.op = Filter::Op::kExists;
    deep.field = "color";
    for (std::size_t i = 0; i < kMaxFilterDepth + 1; ++i) {
        Filter n;
        n.op = Filter::Op::kNot;
        n.children.push_back(std::move(deep));
        deep = std::move(n);
    }
    EXPECT_EQ(deep.validate(s).error().code(), ErrorCode::kInvalidArgument);
    Filter wide;
    wide.op = Filter::Op::kOr;
    Filter e;
    e.op = Filter::Op::kExists;
    e.field = "size";
    wide.children.assign(kMaxFilterNodes, e);
    EXPECT_FALSE(wide.validate(s));
    wide.children.resize(kMaxFilterNodes - 1);
    EXPECT_TRUE(wide.validate(s));
    Filter pre;
    pre.op = Filter::Op::kPrefix;
    pre.field = "size";
    pre.values = {std::string("1")};
    EXPECT_FALSE(pre.validate(s));  // prefix needs a keyword field
    pre.field = "tags";
    EXPECT_TRUE(pre.validate(s));
    Filter ex;
    ex.op = Filter::Op::kExists;
    ex.field = "color";
    ex.values = {std::string("x")};
    EXPECT_FALSE(ex.validate(s));
    Schema bad = s;
    bad.fields.push_back({});
    bad.fields.back().name = "t";
    bad.fields.back().type = FieldType::kText;
    bad.fields.back().payload_index = true;
    EXPECT_EQ(bad.validate().error().code(), ErrorCode::kInvalidArgument);
}

TEST(PayloadIndex, FileRoundTripsAndRefusesDamage) {
    std::mt19937_64 rng(5);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 9000; ++i) docs.push_back(random_attrs(rng, i));
    const PayloadIndex idx = PayloadIndex::build(attr_schema(true), docs);
    const std::string dir = ::testing::TempDir() + "/pidx_" + std::to_string(::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string path = dir + "/p.pidx";
    ASSERT_TRUE(idx.save(path));
    auto back = PayloadIndex::open(path);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->size(), 9000u);
    for (int trial = 0; trial < 50; ++trial) {
        const Filter f = random_filter(rng, 0);
        EXPECT_EQ(evaluate_filter(f, *back, docs), evaluate_filter(f, idx, docs)) << trial;
    }
    // On indexed fields the index alone answers (the CLI keeps no attributes beside it).
    Filter indexed_only;
    indexed_only.op = Filter::Op::kOr;
    for (int i = 0; i < 20; ++i) {
        Filter c = leaf(rng);
        if (c.field != "note") indexed_only.children.push_back(c);
    }
    EXPECT_EQ(evaluate_filter(indexed_only, *back, {}), brute(indexed_only, docs));
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (std::size_t at : {std::size_t{20}, bytes.size() / 2, bytes.size() - 30}) {
        std::string bad = bytes;
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
        std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
        auto r = PayloadIndex::open(path);
        ASSERT_FALSE(r) << at;
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << at;
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 3);
    EXPECT_EQ(PayloadIndex::open(path).error().code(), ErrorCode::kDataLoss);
    fs::remove(path);
    EXPECT_EQ(PayloadIndex::open(path).error().code(), ErrorCode::kDataLoss);
    fs::remove_all(dir);
}

// ---- collections -------------------------------------------------------------------------------

std::vector<float> random_vec(std::mt19937_64& rng, std::size_t dim) {
    std::normal_distribution<float> g;
    std::vector<float> v(dim);
    for (auto& x : v) x = g(rng);
    return v;
}

class FilteredCollection : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = ::testing::TempDir() + "/filtered_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // The exact filtered top-k by brute force over `docs` (live ones), ids ordered by (distance, id).
    static std::vector<std::string> truth(const std::map<std::string, Document>& docs, const Filter* f,
                                          const std::vector<float>& q, std::size_t k) {
        std::vector<std::pair<double, std::string>> all;
        for (const auto& [id, d] : docs) {
            if (f != nullptr && !f->matches(d.fields)) continue;
            const auto& v = std::get<std::vector<float>>(d.fields.at("emb"));
            double s = 0;
            for (std::size_t j = 0; j < v.size(); ++j) s += (double(v[j]) - q[j]) * (double(v[j]) - q[j]);
            all.emplace_back(s, id);
        }
        std::sort(all.begin(), all.end());
        std::vector<std::string> out;
        for (std::size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
        return out;
    }
    std::string dir_;
};

TEST_F(FilteredCollection, VectorAndTextSearchesEqualBruteForceThroughMergesAndReopen) {
    constexpr std::size_t kDim = 12;
    const Schema schema = attr_schema(true, kDim);
    CollectionOptions opt;
    opt.background_merge = false;
    opt.memtable_docs = 256;
    // Small thresholds, so every strategy runs on these small segments.
    opt.filter_planner.exact_max_matches = 100;
    opt.filter_planner.post_filter_min_selectivity = 0.6;
    auto c = Collection::create(dir_, schema, opt);
    ASSERT_TRUE(c) << c.error().message();
    std::mt19937_64 rng(21);
    std::map<std::string, Document> live;
    auto write = [&](std::size_t from, std::size_t to, std::size_t batch) {
        std::vector<Document> docs;
        for (std::size_t i = from; i < to; ++i) {
            Document d = random_attrs(rng, i);
            d.fields["emb"] = random_vec(rng, kDim);
            d.fields["body"] = std::string("w") + std::to_string(rng() % 7) + " common";
            live[d.id] = d;
            docs.push_back(std::move(d));
            if (docs.size() == batch) {
                ASSERT_TRUE((*c)->upsert(std::move(docs)));
                docs.clear();
            }
        }
        if (!docs.empty()) ASSERT_TRUE((*c)->upsert(std::move(docs)));
    };
    write(0, 3000, 1000);  // segments
    ASSERT_TRUE((*c)->flush());
    write(3000, 4500, 500);
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 4500; i += 7) gone.push_back("doc" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(gone));
    for (const auto& g : gone) live.erase(g);
    write(4500, 4600, 10);  // memtable

    auto check = [&](const char* phase) {
        std::mt19937_64 qrng(99);
        std::set<std::string> strategies;
        for (int trial = 0; trial < 60; ++trial) {
            const Filter f = random_filter(qrng, 0);
            const auto q = random_vec(qrng, kDim);
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_vector("emb", q));
            r.k = 10;
            r.filter = f;
            r.ef = 400;
            SearchExplain ex;
            auto hits = (*c)->search(r, &ex);
            ASSERT_TRUE(hits) << hits.error().message();
            std::vector<std::string> got;
            for (const auto& h : *hits) got.push_back(h.id);
            const auto want = truth(live, &f, q, 10);
            ASSERT_EQ(got.size(), want.size()) << phase << " trial " << trial;  // k whenever k match
            std::size_t common = 0;
            for (const auto& id : got) common += std::count(want.begin(), want.end(), id);
            EXPECT_GE(common + 1, want.size()) << phase << " trial " << trial;  // recall >= 0.9
            for (const auto& h : *hits) ASSERT_TRUE(f.matches(live.at(h.id).fields));
            EXPECT_TRUE(ex.filtered);
            for (const auto& p : ex.plans) strategies.insert(p.strategy);
            // Count and filter-only search agree with the reference.
            std::size_t n = 0;
            for (const auto& [id, d] : live) n += f.matches(d.fields) ? 1 : 0;
            auto counted = (*c)->count(f);
            ASSERT_TRUE(counted);
            EXPECT_EQ(*counted, n) << phase << " trial " << trial;
            // Text: every hit matches, and the number of hits is min(k, matching docs with the term).
            SearchRequest t;
            t.clauses.push_back(QueryClause::of_text("body", "common"));
            t.k = 10;
            t.filter = f;
            auto th = (*c)->search(t);
            ASSERT_TRUE(th);
            EXPECT_EQ(th->size(), std::min<std::size_t>(10, n)) << phase << " trial " << trial;
            for (const auto& h : *th) ASSERT_TRUE(f.matches(live.at(h.id).fields));
        }
        EXPECT_TRUE(strategies.count("exact")) << phase;
        EXPECT_TRUE(strategies.count("acorn")) << phase;
        EXPECT_TRUE(strategies.count("post_filter")) << phase;
    };
    check("segments + memtable");
    ASSERT_TRUE((*c)->optimize());
    check("merged");
    (*c)->close();
    c = Collection::open(dir_, opt);
    ASSERT_TRUE(c) << c.error().message();
    check("reopened");
}

TEST_F(FilteredCollection, TheSegmentPayloadIndexFileIsRequiredAndChecked) {
    const Schema schema = attr_schema(true, 4);
    CollectionOptions opt;
    opt.background_merge = false;
    {
        auto c = Collection::create(dir_, schema, opt);
        ASSERT_TRUE(c);
        std::mt19937_64 rng(1);
        std::vector<Document> docs;
        for (std::size_t i = 0; i < 200; ++i) {
            Document d = random_attrs(rng, i);
            d.fields["emb"] = random_vec(rng, 4);
            docs.push_back(std::move(d));
        }
        ASSERT_TRUE((*c)->upsert(std::move(docs)));
        ASSERT_TRUE((*c)->flush());
        (*c)->close();
    }
    std::string pidx;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
        if (e.path().filename() == "payload.pidx") pidx = e.path().string();
    }
    ASSERT_FALSE(pidx.empty());
    std::string bytes;
    {
        std::ifstream in(pidx, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::string bad = bytes;
    bad[bad.size() / 2] ^= 1;
    std::ofstream(pidx, std::ios::binary | std::ios::trunc) << bad;
    auto c = Collection::open(dir_, opt);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss);
    fs::remove(pidx);
    c = Collection::open(dir_, opt);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss);
    std::ofstream(pidx, std::ios::binary | std::ios::trunc) << bytes;
    c = Collection::open(dir_, opt);
    ASSERT_TRUE(c) << c.error().message();
}

}  // namespace
}  // namespace quiver::engine
