#include "quiver/engine/collection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "engine_test_util.h"
#include "index/index_testing.h"
#include "quiver/engine/store.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using testutil::make_doc;
using testutil::small_schema;

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    return o;
}

SearchRequest text_query(const std::string& text, std::size_t k = 10) {
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", text));
    r.k = k;
    return r;
}

TEST(Collection, UpsertGetDeleteSearch) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), small_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    std::vector<Document> docs;
    for (int i = 0; i < 100; ++i) docs.push_back(make_doc(static_cast<std::uint64_t>(i), 1));
    ASSERT_TRUE((*c)->upsert(docs));
    auto got = (*c)->get("d5");
    ASSERT_TRUE(got);
    EXPECT_TRUE(testutil::consistent(*got));
    auto hits = (*c)->search(text_query("tok42"));
    ASSERT_TRUE(hits);
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].id, "d42");
    // Replace, then delete.
    ASSERT_TRUE((*c)->upsert({make_doc(42, 2)}));
    EXPECT_EQ(std::get<std::int64_t>((*c)->get("d42")->fields["ver"]), 2);
    hits = (*c)->search(text_query("tok42"));
    ASSERT_EQ(hits->size(), 1u);
    auto removed = (*c)->remove({"d42", "nope"});
    ASSERT_TRUE(removed);
    EXPECT_EQ(*removed, 1u);
    EXPECT_EQ((*c)->get("d42").error().code(), ErrorCode::kNotFound);
    EXPECT_TRUE((*c)->search(text_query("tok42"))->empty());
    EXPECT_EQ((*c)->stats().documents, 99u);
    // One handle (and process) per collection: a second open is refused while the first is live.
    auto second = Collection::open(dir.file("c"), manual());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code(), ErrorCode::kFailedPrecondition);
}

TEST(Collection, VectorFilterAndFusion) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), small_schema(VectorIndexKind::kHnsw), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    std::vector<Document> docs;
    for (int i = 0; i < 300; ++i) docs.push_back(make_doc(static_cast<std::uint64_t>(i), i));
    ASSERT_TRUE((*c)->upsert(docs));
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(77)));
    r.k = 5;
    auto hits = (*c)->search(r);
    ASSERT_TRUE(hits);
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].id, "d77");
    // Filter: tag == even AND ver in [10, 20).
    Filter even;
    even.op = Filter::Op::kEq;
    even.field = "tag";
    even.values = {std::string("even")};
    Filter range;
    range.op = Filter::Op::kRange;
    range.field = "ver";
    range.gte = 10;
    range.lt = 20;
    Filter both;
    both.op = Filter::Op::kAnd;
    both.children = {even, range};
    SearchRequest f = text_query("common", 100);
    f.filter = both;
    hits = (*c)->search(f);
    ASSERT_TRUE(hits);
    EXPECT_EQ(hits->size(), 5u);
    for (const auto& h : *hits) {
        const auto v = std::get<std::int64_t>(h.document.fields.at("ver"));
        EXPECT_TRUE(v >= 10 && v < 20 && v % 2 == 0) << h.id;
    }
    // Two clauses fused by RRF: the doc matching both comes first.
    SearchRequest fused;
    fused.clauses.push_back(QueryClause::of_text("body", "tok12"));
    fused.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(12)));
    fused.k = 3;
    fused.return_fields = std::vector<std::string>{"ver"};
    hits = (*c)->search(fused);
    ASSERT_TRUE(hits);
    EXPECT_EQ((*hits)[0].id, "d12");
    EXPECT_EQ((*hits)[0].document.fields.size(), 1u);
    // Bad requests.
    SearchRequest bad = r;
    bad.clauses[0].vector.pop_back();
    EXPECT_EQ((*c)->search(bad).error().code(), ErrorCode::kInvalidArgument);
    bad = r;
    bad.clauses[0].vector[0] = std::nanf("");
    EXPECT_EQ((*c)->search(bad).error().code(), ErrorCode::kInvalidArgument);
    bad = text_query("x");
    bad.clauses[0].field = "nope";
    EXPECT_EQ((*c)->search(bad).error().code(), ErrorCode::kInvalidArgument);
    Document wrong = make_doc(1, 1);
    wrong.fields["emb"] = std::vector<float>(3, 1.0f);
    EXPECT_EQ((*c)->upsert({wrong}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Collection, SurvivesReopenBeforeAndAfterMerges) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, small_schema(VectorIndexKind::kHnsw), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        for (int b = 0; b < 5; ++b) {
            std::vector<Document> docs;
            for (int i = 0; i < 50; ++i) docs.push_back(make_doc(static_cast<std::uint64_t>(b * 50 + i), b));
            ASSERT_TRUE((*c)->upsert(docs));
        }
        ASSERT_TRUE((*c)->flush());  // persisted segments + checkpoint
        ASSERT_TRUE((*c)->remove({"d0", "d1"}));
        ASSERT_TRUE((*c)->upsert({make_doc(2, 99)}));  // only in the log
    }
    {
        auto c = Collection::open(path, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        EXPECT_EQ((*c)->stats().documents, 248u);
        EXPECT_FALSE((*c)->get("d0"));
        EXPECT_EQ(std::get<std::int64_t>((*c)->get("d2")->fields["ver"]), 99);
        ASSERT_TRUE((*c)->optimize());
        EXPECT_EQ((*c)->stats().segments, 1u);
        EXPECT_EQ((*c)->stats().deleted_pending, 0u);
    }
    auto c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().documents, 248u);
    auto hits = (*c)->search(text_query("tok2"));
    ASSERT_TRUE(hits);
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].id, "d2");
}

// A merge continues the graph of its largest input (persisted) instead of rebuilding it, dropping the
// nodes of its deleted documents (HnswIndex::drop): the merged segment's labels must still name the
// right documents, including when some documents have no vector and some deleted ones had none. Every
// vector then finds its own document first.
TEST(Collection, MergeContinuingTheLargestGraphKeepsEveryVectorFindable) {
    auto vec = [](std::uint64_t i) {  // distinct pseudo-random directions (sin(8n) repeats too closely)
        std::vector<float> v(8);
        std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
        for (float& f : v) {
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9ull;
            x ^= x >> 29;
            f = static_cast<float>(static_cast<double>(x >> 11) / 9007199254740992.0 - 0.5);
        }
        return v;
    };
    Schema schema = small_schema(VectorIndexKind::kHnsw);
    schema.fields[3].hnsw_m = 16;
    schema.fields[3].hnsw_ef_construction = 100;
    for (const bool delete_in_base : {false, true}) {
        testing::TempDir dir;
        auto c = Collection::create(dir.file("c"), schema, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        auto batch = [&](std::uint64_t from, std::uint64_t to) {
            std::vector<Document> docs;
            for (std::uint64_t i = from; i < to; ++i) {
                Document d = make_doc(i, static_cast<std::int64_t>(i));
                d.fields["emb"] = vec(i);
                if (i % 7 == 3) d.fields.erase("emb");  // documents without a vector shift the labels
                docs.push_back(std::move(d));
            }
            return docs;
        };
        ASSERT_TRUE((*c)->upsert(batch(0, 300)));
        ASSERT_TRUE((*c)->flush());  // persisted: the base, with its own graph
        auto deleted = [&](std::uint64_t i) { return delete_in_base && i < 300 && (i == 10 || i % 5 == 1); };
        if (delete_in_base) {  // 61 documents, 9 of them without a vector (31, 66, ...)
            std::vector<std::string> gone;
            for (std::uint64_t i = 0; i < 300; ++i) {
                if (deleted(i)) gone.push_back("d" + std::to_string(i));
            }
            ASSERT_TRUE((*c)->remove(gone));
        }
        ASSERT_TRUE((*c)->upsert(batch(300, 400)));
        ASSERT_TRUE((*c)->flush());
        ASSERT_TRUE((*c)->upsert(batch(400, 450)));
        ASSERT_TRUE((*c)->optimize());
        EXPECT_EQ((*c)->stats().segments, 1u);
        // A label naming the wrong document shows as a score that is not the distance to the returned
        // document's vector (exact), and as lost self-matches (HNSW at M=8 in 8-d may miss a few).
        auto cosine_distance = [](const std::vector<float>& a, const std::vector<float>& b) {
            double ab = 0, aa = 0, bb = 0;
            for (std::size_t j = 0; j < a.size(); ++j) {
                ab += double(a[j]) * b[j];
                aa += double(a[j]) * a[j];
                bb += double(b[j]) * b[j];
            }
            return 1.0 - ab / std::sqrt(aa * bb);
        };
        std::size_t with_vector = 0;
        std::size_t found_self = 0;
        for (std::uint64_t i = 0; i < 450; ++i) {
            if (i % 7 == 3 || deleted(i)) continue;
            ++with_vector;
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_vector("emb", vec(i)));
            r.k = 1;
            r.ef = 200;
            auto hits = (*c)->search(r);
            ASSERT_TRUE(hits) << hits.error().to_string();
            ASSERT_EQ(hits->size(), 1u);
            const std::uint64_t got = std::stoull((*hits)[0].id.substr(1));
            EXPECT_NEAR((*hits)[0].score, -cosine_distance(vec(i), vec(got)), 1e-5)
                << "query d" << i << " returned d" << got << ", delete_in_base=" << delete_in_base;
            found_self += got == i ? 1 : 0;
        }
        EXPECT_GE(static_cast<double>(found_self), 0.97 * static_cast<double>(with_vector))
            << "delete_in_base=" << delete_in_base;
    }
}

// CollectionOptions::vector_segment_bar: a vector search walks the segments largest first, and each
// later walk takes the best k so far as its bar (index::SearchParams::bound). Three persisted segments
// of 800, 1,500 and 3,000 random 32-d vectors (one-thread builds: the graphs are deterministic), 200
// queries: recall@10 against brute force with the bar and without, and the same top hit for a query
// equal to a stored vector of the smallest segment (walked last, under the bar of the other two).
TEST(Collection, LaterSegmentsWalkUnderTheBestSoFar) {
    const Schema schema = testutil::l2_hnsw_schema(32, 16, 64);
    const auto base = testing::random_matrix(5300, 32, 51);
    const auto queries = testing::random_matrix(200, 32, 52);
    const auto truth = testing::brute_force(base.view(), queries.view(), 10, simd::Metric::kL2);
    double recall[2] = {0, 0};
    for (const bool bar : {false, true}) {
        testing::TempDir dir;
        CollectionOptions o;
        o.background_merge = false;
        o.build_threads = 1;
        o.flush_docs = 500;  // below every segment: no flush continues the one before
        o.vector_segment_bar = bar;
        auto c = Collection::create(dir.file("c"), schema, o);
        ASSERT_TRUE(c) << c.error().to_string();
        // Smallest first: the walks' order (largest first) is not the segments' order.
        for (const auto& [begin, end] : {std::pair<std::size_t, std::size_t>{4500, 5300}, {3000, 4500}, {0, 3000}}) {
            std::vector<Document> docs;
            for (std::size_t i = begin; i < end; ++i) {
                Document d;
                d.id = "d" + std::to_string(i);
                d.fields["emb"] = std::vector<float>(base.view().row_ptr(i), base.view().row_ptr(i) + 32);
                docs.push_back(std::move(d));
            }
            ASSERT_TRUE((*c)->upsert(std::move(docs)));
            ASSERT_TRUE((*c)->flush());
        }
        ASSERT_EQ((*c)->stats().segments, 3u);
        std::size_t found = 0;
        for (std::size_t q = 0; q < queries.rows; ++q) {
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_vector(
                "emb", std::vector<float>(queries.view().row_ptr(q), queries.view().row_ptr(q) + 32)));
            r.k = 10;
            auto hits = (*c)->search(r);
            ASSERT_TRUE(hits) << hits.error().to_string();
            for (const auto& h : *hits) {
                const std::uint64_t id = std::stoull(h.id.substr(1));
                found += std::count(truth[q].begin(), truth[q].end(), id);
            }
        }
        recall[bar ? 1 : 0] = static_cast<double>(found) / (10.0 * static_cast<double>(queries.rows));
        SearchRequest ex;
        ex.clauses.push_back(QueryClause::of_vector(
            "emb", std::vector<float>(queries.view().row_ptr(0), queries.view().row_ptr(0) + 32)));
        SearchExplain explain;
        ASSERT_TRUE((*c)->search(ex, &explain));
        ASSERT_EQ(explain.plans.size(), 3u);  // in segment order, whatever order the walks took
        EXPECT_EQ(explain.plans[0].size, 800u);
        EXPECT_EQ(explain.plans[1].size, 1500u);
        EXPECT_EQ(explain.plans[2].size, 3000u);
        for (const std::size_t i : {4500, 4999, 5299}) {
            SearchRequest r;
            r.clauses.push_back(
                QueryClause::of_vector("emb", std::vector<float>(base.view().row_ptr(i), base.view().row_ptr(i) + 32)));
            r.k = 10;
            auto hits = (*c)->search(r);
            ASSERT_TRUE(hits);
            ASSERT_FALSE(hits->empty());
            EXPECT_EQ(hits->front().id, "d" + std::to_string(i)) << "bar " << bar;
        }
    }
    std::printf("recall@10 over three segments: %.4f without the bar, %.4f with it\n", recall[0], recall[1]);
    EXPECT_NEAR(recall[0], 0.9960, 1e-9);
    EXPECT_NEAR(recall[1], 0.9935, 1e-9);
}

// A collection written by the previous release (segment document store version 1: 16-document zlib
// blocks) opens, answers, and is rewritten as version 4 by a merge (tests/data/engine/collection_v1,
// ingested from collection_v1.docs.jsonl: d<i> has body "tok<i> common words about retrieval number <i>").
TEST(Collection, ReadsVersion1SegmentsAndRewritesThem) {
    testing::TempDir dir;
    std::filesystem::copy(std::string(QUIVER_SOURCE_DIR) + "/tests/data/engine/collection_v1", dir.file("c"),
                          std::filesystem::copy_options::recursive);
    auto check = [](Collection& c, std::size_t documents) {
        EXPECT_EQ(c.stats().documents, documents);
        for (const int i : {0, 15, 16, 17, 31, 32, 39}) {  // first, last and middle of each v1 block
            auto d = c.get("d" + std::to_string(i));
            ASSERT_TRUE(d) << d.error().to_string();
            EXPECT_EQ(std::get<std::string>(d->fields["body"]),
                      "tok" + std::to_string(i) + " common words about retrieval number " + std::to_string(i));
            EXPECT_EQ(std::get<std::int64_t>(d->fields["ver"]), i);
            auto hits = c.search(text_query("tok" + std::to_string(i), 3));
            ASSERT_TRUE(hits);
            ASSERT_FALSE(hits->empty());
            EXPECT_EQ((*hits)[0].id, "d" + std::to_string(i));
        }
    };
    {
        auto c = Collection::open(dir.file("c"), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        check(**c, 40);
        ASSERT_TRUE((*c)->upsert({make_doc(1000, 1)}));
        ASSERT_TRUE((*c)->optimize());  // one version-4 segment replaces the version-1 one
    }
    auto c = Collection::open(dir.file("c"), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    check(**c, 41);
    EXPECT_EQ((*c)->stats().segments, 1u);
    int versions_seen = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.file("c"))) {
        if (e.path().filename().string().rfind("seg_", 0) != 0) continue;
        std::FILE* f = std::fopen((e.path() / "docs.qvr").c_str(), "rb");
        ASSERT_NE(f, nullptr);
        unsigned char header[16] = {};
        ASSERT_EQ(std::fread(header, 1, 16, f), 16u);
        std::fclose(f);
        // Version 4: the short `body` field is stored in the short-field column.
        EXPECT_EQ(header[8], 4) << "the merged segment is written as version 4";
        ++versions_seen;
    }
    EXPECT_EQ(versions_seen, 1);
}

TEST(Collection, TornLogTailIsDroppedOnRecoveryButGarbageIsDataLoss) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, small_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        ASSERT_TRUE((*c)->upsert({make_doc(1, 1)}));
        ASSERT_TRUE((*c)->upsert({make_doc(2, 1)}));
    }
    std::string log;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
        if (e.path().filename().string().rfind("wal-", 0) == 0 && e.file_size() > storage::kWalHeaderBytes) {
            log = e.path().string();
        }
    }
    ASSERT_FALSE(log.empty());
    const std::string bytes = testing::read_bytes(log);
    // A complete last record overwritten by garbage is not a torn write: refused, naming the log.
    testing::write_bytes(log, bytes.substr(0, bytes.size() - 3) + "garbage");
    {
        auto c = Collection::open(path, manual());
        ASSERT_FALSE(c);
        EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(c.error().message().find(log), std::string::npos) << c.error().to_string();
    }
    // The last record cut short is: dropped, logged and counted.
    testing::write_bytes(log, bytes.substr(0, bytes.size() - 3));
    auto c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_TRUE((*c)->get("d1"));
    EXPECT_FALSE((*c)->get("d2"));  // its record was torn: never acknowledged
    EXPECT_EQ((*c)->stats().recovered_tail_records, 1u);
    EXPECT_GT((*c)->stats().recovered_tail_bytes, 0u);
    ASSERT_TRUE((*c)->upsert({make_doc(3, 1)}));
}

// 10 rounds of inserting and deleting the same 10,000 documents, beside 1,000 that stay.
TEST(Collection, DiskUsageReturnsAfterDeletes) {
    testing::TempDir dir;
    CollectionOptions o;  // background merges on, as in production
    auto c = Collection::create(dir.file("churn"), small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    auto insert_range = [&](Collection& col, std::uint64_t from, std::uint64_t to, std::int64_t ver) {
        for (std::uint64_t b = from; b < to; b += 1000) {
            std::vector<Document> docs;
            for (std::uint64_t i = b; i < std::min(to, b + 1000); ++i) docs.push_back(make_doc(i, ver));
            ASSERT_TRUE(col.upsert(docs));
        }
    };
    insert_range(**c, 100000, 101000, 0);
    for (int round = 0; round < 10; ++round) {
        insert_range(**c, 0, 10000, round);
        std::vector<std::string> ids;
        for (int i = 0; i < 10000; ++i) ids.push_back("d" + std::to_string(i));
        ASSERT_TRUE((*c)->remove(ids));
    }
    // No explicit flush: the background merger alone must reclaim the deleted documents.
    for (int i = 0; i < 300; ++i) {
        const auto st = (*c)->stats();
        if (st.memory_segments == 0 && st.deleted_pending == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // A merge removes the files it replaced just after it publishes (outside the writer lock): flush()
    // waits for both lanes' passes, so the last one's files are gone when it returns (it has nothing
    // left to merge).
    ASSERT_TRUE((*c)->flush());
    const auto settled = (*c)->stats();
    EXPECT_EQ(settled.deleted_pending, 0u);
    EXPECT_EQ(settled.memory_segments, 0u);
    const auto churned = testutil::dir_bytes(dir.file("churn"));
    auto fresh = Collection::create(dir.file("fresh"), small_schema(), o);
    ASSERT_TRUE(fresh);
    insert_range(**fresh, 100000, 101000, 0);
    ASSERT_TRUE((*fresh)->flush());
    const auto clean = testutil::dir_bytes(dir.file("fresh"));
    std::printf("[ measure ] churned %llu bytes, fresh %llu bytes, ratio %.3f, documents %zu, segments %zu, "
                "merges %llu\n",
                static_cast<unsigned long long>(churned), static_cast<unsigned long long>(clean),
                static_cast<double>(churned) / static_cast<double>(clean), (*c)->stats().documents,
                settled.segments, static_cast<unsigned long long>(settled.merges));
    EXPECT_EQ((*c)->stats().documents, 1000u);
    EXPECT_LE(static_cast<double>(churned), 1.5 * static_cast<double>(clean));
}

TEST(Collection, SparseVectorFieldSearchesExactlyAcrossSegments) {
    testing::TempDir dir;
    Schema schema = small_schema();
    FieldSpec sp;
    sp.name = "sp";
    sp.type = FieldType::kSparse;
    schema.fields.push_back(sp);
    const std::string path = dir.file("c");
    auto make = [](std::uint64_t i) {
        Document d = make_doc(i, 1);
        d.fields["sp"] = SparseTerms{{"t" + std::to_string(i % 10), 1.0f + static_cast<float>(i % 3)},
                                     {"common", 0.5f}};
        return d;
    };
    {
        auto c = Collection::create(path, schema, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        std::vector<Document> docs;
        for (std::uint64_t i = 0; i < 60; ++i) docs.push_back(make(i));
        ASSERT_TRUE((*c)->upsert(docs));
        ASSERT_TRUE((*c)->flush());
        ASSERT_TRUE((*c)->upsert({make(60), make(61)}));  // a second segment, in memory
        Document bad = make_doc(99, 1);
        bad.fields["sp"] = SparseTerms{{"x", -1.0f}};
        EXPECT_EQ((*c)->upsert({bad}).error().code(), ErrorCode::kInvalidArgument);
    }
    auto c = Collection::open(path, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_sparse("sp", SparseTerms{{"t1", 2.0f}, {"unknown", 5.0f}}));
    r.k = 3;
    auto hits = (*c)->search(r);
    ASSERT_TRUE(hits) << hits.error().to_string();
    ASSERT_EQ(hits->size(), 3u);
    // t1 docs: 1, 11, 21, 31, 41, 51, 61; weight 1 + i % 3 is 3 for i = 11, 41 (then 2 for 1, 31, 61).
    EXPECT_NEAR((*hits)[0].score, 6.0, 1e-5);
    EXPECT_EQ((*hits)[0].id, "d11");
    EXPECT_EQ((*hits)[1].id, "d41");
    EXPECT_NEAR((*hits)[2].score, 4.0, 1e-5);
    EXPECT_EQ(std::get<SparseTerms>((*c)->get("d61")->fields.at("sp")).size(), 2u);
}

TEST(Collection, EncoderEmbedsTextAtUpsertAndQuery) {
    testing::TempDir dir;
    Schema schema;
    FieldSpec title, body, emb;
    title.name = "title";
    title.indexed = false;
    body.name = "body";
    emb.name = "emb";
    emb.type = FieldType::kVector;
    emb.dim = 64;
    emb.index = VectorIndexKind::kFlat;
    emb.encoder = "hashing";
    emb.sources = {"title", "body"};
    schema.fields = {title, body, emb};
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, schema, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        std::vector<Document> docs;
        const char* texts[] = {"red apples and pears", "fast cars on roads", "deep sea fish", "mountain snow"};
        for (int i = 0; i < 4; ++i) {
            Document d;
            d.id = "t" + std::to_string(i);
            d.fields["title"] = std::string("doc");
            d.fields["body"] = std::string(texts[i]);
            docs.push_back(std::move(d));
        }
        Document given;  // text given directly for the vector field
        given.id = "direct";
        given.fields["emb"] = std::string("volcano lava");
        docs.push_back(std::move(given));
        ASSERT_TRUE((*c)->upsert(docs));
        EXPECT_EQ(std::get<std::vector<float>>((*c)->get("t1")->fields.at("emb")).size(), 64u);
        Document wrong_dim = docs[0];
        wrong_dim.fields["emb"] = std::vector<float>(3, 1.0f);
        EXPECT_EQ((*c)->upsert({wrong_dim}).error().code(), ErrorCode::kInvalidArgument);
    }
    auto c = Collection::open(path, manual());  // the encoder is reloaded from the schema
    ASSERT_TRUE(c) << c.error().to_string();
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("emb", "cars roads"));
    r.k = 1;
    auto hits = (*c)->search(r);
    ASSERT_TRUE(hits) << hits.error().to_string();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, "t1");
    r.clauses[0].text = "lava volcano";
    EXPECT_EQ((*(*c)->search(r))[0].id, "direct");
    Schema bad = schema;
    bad.fields[2].dim = 32;
    bad.fields[2].encoder = "/nonexistent/model";
    EXPECT_FALSE(Collection::create(dir.file("bad"), bad, manual()));
}

TEST(Store, NamesCreateDropReopen) {
    testing::TempDir dir;
    {
        auto s = Store::open(dir.path(), manual());
        ASSERT_TRUE(s);
        EXPECT_FALSE((*s)->create("../x", small_schema()));
        EXPECT_FALSE((*s)->create(".hidden", small_schema()));
        EXPECT_FALSE((*s)->create("", small_schema()));
        ASSERT_TRUE((*s)->create("a", small_schema()));
        ASSERT_TRUE((*s)->create("b", small_schema()));
        EXPECT_EQ((*s)->create("a", small_schema()).error().code(), ErrorCode::kAlreadyExists);
        ASSERT_TRUE((*(*s)->get("a"))->upsert({make_doc(1, 1)}));
        ASSERT_TRUE((*s)->drop("b"));
        EXPECT_EQ((*s)->get("b").error().code(), ErrorCode::kNotFound);
    }
    auto s = Store::open(dir.path(), manual());
    ASSERT_TRUE(s);
    EXPECT_EQ((*s)->list(), std::vector<std::string>{"a"});
    EXPECT_TRUE((*(*s)->get("a"))->get("d1"));
}

}  // namespace
}  // namespace quiver::engine
