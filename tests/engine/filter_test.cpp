// Payload indexes and filter evaluation: bitmaps equal the per-document reference (Filter::matches)
// on random filters over random attributes, indexed or not; the file survives a round trip and
// refuses damage; the limits hold; collections answer filtered searches exactly as brute force,
// across memtable, segments, merges and reopen, with the planner's choice in `explain`.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <set>

#include "engine_test_util.h"
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
        s.fields.push_back(testutil::l2_hnsw_field(dim, 8, 64));
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
        ASSERT_TRUE(c) << c.error().to_string();
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

// ---- filtered posting walks and the filter budget ------------------------------------------------

// Text and sparse clauses under filters of every selectivity: the hits equal brute force (the
// unfiltered ranking over the whole collection, restricted to the matching documents), and each
// regime of the bitmap-driven walk (bitmap, seek, mask) is used.
TEST_F(FilteredCollection, TextAndSparseWalksEqualBruteForceInEveryRegime) {
    Schema schema = attr_schema(true, 4);
    FieldSpec sp;
    sp.name = "sp";
    sp.type = FieldType::kSparse;
    schema.fields.push_back(sp);
    CollectionOptions opt;
    opt.background_merge = false;
    opt.memtable_docs = 256;
    auto c = Collection::create(dir_, schema, opt);
    ASSERT_TRUE(c) << c.error().message();
    std::mt19937_64 rng(41);
    std::map<std::string, Document> live;
    std::vector<Document> batch;
    auto zipf = [&]() {  // w0 is in most documents, w30 in few
        const double u = std::uniform_real_distribution<double>(0.0, 3.45)(rng);
        return static_cast<int>(std::exp(u)) - 1;
    };
    for (std::size_t i = 0; i < 6000; ++i) {
        Document d = random_attrs(rng, i);
        d.fields["emb"] = random_vec(rng, 4);
        std::string body;
        SparseTerms terms;
        for (int j = 0; j < 6; ++j) {
            const int w = zipf();
            body += "w" + std::to_string(w) + " ";
            if (j < 4 && std::none_of(terms.begin(), terms.end(), [&](const auto& t) { return t.first == "s" + std::to_string(w); })) {
                terms.emplace_back("s" + std::to_string(w), 0.1f + static_cast<float>(rng() % 100) / 25.0f);
            }
        }
        d.fields["body"] = body;
        d.fields["sp"] = terms;
        live[d.id] = d;
        batch.push_back(std::move(d));
        if (batch.size() == 1500) {
            ASSERT_TRUE((*c)->upsert(std::move(batch)));
            batch.clear();
        }
    }
    ASSERT_TRUE((*c)->flush());
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 6000; i += 11) gone.push_back("doc" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(gone));
    for (const auto& g : gone) live.erase(g);
    for (std::size_t i = 6000; i < 6040; ++i) {  // a memtable
        Document d = random_attrs(rng, i);
        d.fields["emb"] = random_vec(rng, 4);
        d.fields["body"] = std::string("w0 w1 w7");
        d.fields["sp"] = SparseTerms{{"s0", 1.5f}, {"s7", 0.25f}};
        live[d.id] = d;
        batch.push_back(std::move(d));
    }
    ASSERT_TRUE((*c)->upsert(std::move(batch)));

    // Filters from one document to nearly all of them.
    std::vector<Filter> filters;
    auto eq = [](const char* field, FieldValue v) {
        Filter f;
        f.op = Filter::Op::kEq;
        f.field = field;
        f.values = {std::move(v)};
        return f;
    };
    filters.push_back(eq("price", 12.5));                                   // a few documents
    filters.push_back(eq("size", std::int64_t{3}));                         // ~2%
    filters.push_back(eq("color", std::string("red")));                     // ~15%
    {
        Filter f;
        f.op = Filter::Op::kExists;
        f.field = "color";                                                  // ~90%
        filters.push_back(f);
    }
    {
        Filter f;
        f.op = Filter::Op::kRange;
        f.field = "price";
        f.gte = 10.0;
        f.lt = 12.0;                                                        // ~2%, numeric range
        filters.push_back(f);
    }
    std::mt19937_64 frng(7);
    for (int i = 0; i < 12; ++i) filters.push_back(random_filter(frng, 0));

    auto check = [&](const char* phase, bool with_memtable) {
        std::set<std::string> strategies;
        const std::vector<std::pair<std::string, std::string>> texts = {
            {"w0", "s0"}, {"w0 w3", "s0 s3"}, {"w12 w25", "s12 s25"}, {"w1 w2 w5 w9", "s1 s2 s5 s9"}};
        for (const auto& f : filters) {
            for (const auto& [text, sparse_words] : texts) {
                for (int kind = 0; kind < 2; ++kind) {
                    SearchRequest all;
                    SparseTerms sq;
                    if (kind == 0) {
                        all.clauses.push_back(QueryClause::of_text("body", text));
                    } else {
                        std::istringstream in(sparse_words);
                        std::string w;
                        float weight = 1.0f;
                        while (in >> w) sq.emplace_back(w, weight += 0.5f);
                        all.clauses.push_back(QueryClause::of_sparse("sp", sq));
                    }
                    all.k = 10000;
                    all.return_fields = std::vector<std::string>{};
                    auto every = (*c)->search(all);
                    ASSERT_TRUE(every) << every.error().message();
                    std::vector<SearchHit> want;
                    for (const auto& h : *every) {
                        if (want.size() < 10 && f.matches(live.at(h.id).fields)) want.push_back(h);
                    }
                    SearchRequest r = all;
                    r.k = 10;
                    r.filter = f;
                    SearchExplain ex;
                    auto got = (*c)->search(r, &ex);
                    ASSERT_TRUE(got) << got.error().message();
                    ASSERT_EQ(got->size(), want.size()) << phase << " " << text << " kind " << kind;
                    for (std::size_t i = 0; i < want.size(); ++i) {
                        EXPECT_NEAR((*got)[i].score, want[i].score, 1e-4 * std::max(1.0, std::abs(want[i].score)))
                            << phase << " rank " << i;
                        EXPECT_TRUE(f.matches(live.at((*got)[i].id).fields));
                        // Same document unless the scores tie within float rounding.
                        if ((*got)[i].id != want[i].id) {
                            EXPECT_NEAR((*got)[i].score, want[i].score, 1e-5 * std::max(1.0, std::abs(want[i].score)));
                        }
                    }
                    for (const auto& p : ex.plans) strategies.insert(p.strategy);
                }
            }
        }
        EXPECT_TRUE(strategies.count("posting_bitmap")) << phase;
        EXPECT_TRUE(strategies.count("posting_walk_seek")) << phase;
        EXPECT_TRUE(strategies.count("posting_walk_mask")) << phase;
        EXPECT_EQ(strategies.count("exact"), with_memtable ? 1u : 0u) << phase;  // the memtable
    };
    check("segments + memtable", true);
    ASSERT_TRUE((*c)->optimize());
    check("merged", false);
}

// Segment::matching caches filter bitmaps per segment: repeated filters give the same documents and
// charge the same budget and explain figures as the first evaluation, filters differing in any member
// (gt vs gte, an integer vs a float bound) are told apart, and eviction keeps answers right.
TEST_F(FilteredCollection, RepeatedFiltersAreCachedPerSegmentWithTheSameAnswersAndCharges) {
    Schema schema = attr_schema(true, 4);
    CollectionOptions opt;
    opt.background_merge = false;
    auto c = Collection::create(dir_, schema, opt);
    ASSERT_TRUE(c) << c.error().message();
    std::mt19937_64 rng(17);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 3000; ++i) {
        Document d = random_attrs(rng, i);
        d.fields["emb"] = random_vec(rng, 4);
        d.fields["body"] = std::string("common words");
        docs.push_back(d);
    }
    ASSERT_TRUE((*c)->upsert(docs));
    ASSERT_TRUE((*c)->flush());
    std::vector<Filter> filters;
    for (int i = 0; i < 10; ++i) filters.push_back(random_filter(rng, 2));
    for (const bool strict : {false, true}) {  // size > 5 and size >= 5: one key each
        Filter f;
        f.op = Filter::Op::kRange;
        f.field = "size";
        if (strict) f.gt = 5.0; else f.gte = 5.0;
        filters.push_back(f);
    }
    struct Seen {
        std::vector<std::string> ids;
        std::uint64_t work, lookups, scanned, matches;
    };
    auto run = [&](const Filter& f) {
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_text("body", "common"));
        r.k = 3000;
        r.filter = f;
        SearchExplain ex;
        auto hits = (*c)->search(r, &ex);
        EXPECT_TRUE(hits) << hits.error().message();
        Seen s{{}, ex.filter_work, ex.index_lookups, ex.docs_scanned, ex.filter_matches};
        if (hits) {
            for (const auto& h : *hits) s.ids.push_back(h.id);
            std::sort(s.ids.begin(), s.ids.end());
        }
        return s;
    };
    std::vector<Seen> first;
    for (const Filter& f : filters) {
        first.push_back(run(f));
        std::vector<std::string> want;
        for (const auto& d : docs) {
            if (f.matches(d.fields)) want.push_back(d.id);
        }
        std::sort(want.begin(), want.end());
        ASSERT_EQ(first.back().ids, want);
    }
    EXPECT_NE(first[10].ids, first[11].ids);  // some document has size 5
    for (int round = 0; round < 2; ++round) {
        if (round == 1) {  // evict everything with 20 other filters first
            for (int i = 0; i < 20; ++i) run(random_filter(rng, 1));
        }
        for (std::size_t i = 0; i < filters.size(); ++i) {
            const Seen again = run(filters[i]);
            EXPECT_EQ(again.ids, first[i].ids) << i;
            EXPECT_EQ(again.work, first[i].work) << i;
            EXPECT_EQ(again.lookups, first[i].lookups) << i;
            EXPECT_EQ(again.scanned, first[i].scanned) << i;
            EXPECT_EQ(again.matches, first[i].matches) << i;
        }
    }
}

TEST(FilterBudget, UnitsAreChargedAsDocumented) {
    std::mt19937_64 rng(13);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 5000; ++i) docs.push_back(random_attrs(rng, i));  // one 65,536-doc chunk
    const PayloadIndex idx = PayloadIndex::build(attr_schema(true), docs);
    Filter note;  // `note` has no index: a scan of every document
    note.op = Filter::Op::kEq;
    note.field = "note";
    note.values = {std::string("blue")};
    Filter red;
    red.op = Filter::Op::kEq;
    red.field = "color";
    red.values = {std::string("red")};
    {
        FilterBudget b;
        auto got = evaluate_filter(note, idx, docs, b);
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, brute(note, docs));
        EXPECT_EQ(b.used(), 5000u);
        FilterBudget exact(5000);
        EXPECT_TRUE(evaluate_filter(note, idx, docs, exact));
        FilterBudget short_one(4999);
        auto over = evaluate_filter(note, idx, docs, short_one);
        ASSERT_FALSE(over);
        EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
        EXPECT_NE(over.error().message().find("filter budget exceeded"), std::string::npos);
        EXPECT_NE(over.error().message().find("4999"), std::string::npos);
    }
    {
        FilterBudget b;
        ASSERT_TRUE(evaluate_filter(red, idx, docs, b));
        EXPECT_EQ(b.used(), 1u);  // one lookup
    }
    {
        // and(note, red): the lookup, then a scan of red's documents only, then one intersection of
        // two one-chunk bitmaps.
        Filter both;
        both.op = Filter::Op::kAnd;
        both.children = {note, red};
        FilterBudget b;
        auto got = evaluate_filter(both, idx, docs, b);
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, brute(both, docs));
        EXPECT_EQ(b.used(), 1 + brute(red, docs).cardinality() + 2 * FilterBudget::kChunkUnits);
    }
    {
        // A wide `or` of scans: charged per scan before it runs, so it stops at the first over the limit.
        Filter wide;
        wide.op = Filter::Op::kOr;
        wide.children.assign(100, note);
        // Scans of 5,000 and unions of 64 (first) and 128 units: the fourth scan would reach 20,320.
        FilterBudget b(20000);
        FilterEvalStats stats;
        ASSERT_FALSE(evaluate_filter(wide, idx, docs, b, &stats));
        EXPECT_EQ(stats.docs_scanned, 15000u);
    }
    EXPECT_EQ(filter_nodes(red), 1u);
    Filter n3;
    n3.op = Filter::Op::kNot;
    n3.children = {red};
    Filter n4;
    n4.op = Filter::Op::kOr;
    n4.children = {n3, note};
    EXPECT_EQ(filter_nodes(n4), 4u);
}

TEST_F(FilteredCollection, RequestsOverTheFilterBudgetFailWithAClearError) {
    Schema schema = attr_schema(true, 4);
    CollectionOptions opt;
    opt.background_merge = false;
    opt.filter_budget = 3000;
    auto c = Collection::create(dir_, schema, opt);
    ASSERT_TRUE(c) << c.error().message();
    std::mt19937_64 rng(3);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 4000; ++i) {
        Document d = random_attrs(rng, i);
        d.fields["emb"] = random_vec(rng, 4);
        d.fields["body"] = std::string("common words");
        docs.push_back(std::move(d));
    }
    ASSERT_TRUE((*c)->upsert(std::move(docs)));
    ASSERT_TRUE((*c)->flush());
    Filter note;  // unindexed and matching nothing: a 4,000-document scan > 3,000 units
    note.op = Filter::Op::kEq;
    note.field = "note";
    note.values = {std::string("no such note")};
    Filter red;  // indexed: a few units
    red.op = Filter::Op::kEq;
    red.field = "color";
    red.values = {std::string("red")};
    auto expect_budget_error = [](const Status& st, const char* what) {
        ASSERT_FALSE(st) << what;
        EXPECT_EQ(st.error().code(), ErrorCode::kResourceExhausted) << what;
        EXPECT_NE(st.error().message().find("filter budget exceeded"), std::string::npos) << what;
    };
    for (int kind = 0; kind < 3; ++kind) {
        SearchRequest r;
        if (kind == 0) r.clauses.push_back(QueryClause::of_text("body", "common"));
        if (kind == 1) r.clauses.push_back(QueryClause::of_vector("emb", {0.1f, 0.2f, 0.3f, 0.4f}));
        r.k = 5;
        r.filter = note;
        auto bad = (*c)->search(r);
        expect_budget_error(bad ? ok_status() : Status(bad.error()), "search");
        r.filter = red;
        SearchExplain ex;
        auto good = (*c)->search(r, &ex);
        ASSERT_TRUE(good) << good.error().message();
        EXPECT_EQ(good->size(), 5u);
        EXPECT_GT(ex.filter_work, 0u);
        EXPECT_LE(ex.filter_work, 3000u);
    }
    auto counted = (*c)->count(note);
    expect_budget_error(counted ? ok_status() : Status(counted.error()), "count");
    ASSERT_TRUE((*c)->count(red));
    ScrollRequest sr;
    sr.filter = note;
    sr.limit = 4000;
    auto page = (*c)->scroll(sr);
    expect_budget_error(page ? ok_status() : Status(page.error()), "scroll");
    sr.filter = red;
    sr.limit = 10;
    EXPECT_TRUE((*c)->scroll(sr));
    // The default budget lets the same requests through.
    (*c)->close();
    CollectionOptions roomy = opt;
    roomy.filter_budget = CollectionOptions{}.filter_budget;
    EXPECT_EQ(roomy.filter_budget, FilterBudget::kDefaultLimit);
    c = Collection::open(dir_, roomy);
    ASSERT_TRUE(c) << c.error().to_string();
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", "common"));
    r.filter = note;
    EXPECT_TRUE((*c)->search(r));
    EXPECT_TRUE((*c)->count(note));
}

}  // namespace
}  // namespace quiver::engine
