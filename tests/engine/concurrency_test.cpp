// Searches and gets running while upserts, deletes and merges stream in see only whole documents and
// keep completing while a merge runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "engine_test_util.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

TEST(Concurrency, ReadersSeeWholeDocumentsAndNeverWaitForMerges) {
    testing::TempDir dir;
    CollectionOptions o;
    o.flush_docs = 2000;
    o.max_segments = 4;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(VectorIndexKind::kHnsw), o);
    ASSERT_TRUE(c) << c.error().to_string();
    constexpr std::uint64_t kIds = 4000;
    {
        std::vector<Document> docs;
        for (std::uint64_t i = 0; i < kIds; ++i) docs.push_back(testutil::make_doc(i, 1));
        ASSERT_TRUE((*c)->upsert(docs));
    }
    std::atomic<bool> done{false};
    std::atomic<bool> merging{false};
    std::atomic<std::uint64_t> searches{0}, searches_during_merge{0}, torn{0}, errors{0}, writes{0};
    std::atomic<std::int64_t> max_search_us{0};
    std::thread writer([&] {
        std::int64_t version = 2;
        for (int batch = 0; !done; ++batch) {
            std::vector<Document> docs;
            for (int i = 0; i < 50; ++i) docs.push_back(testutil::make_doc((batch * 50 + i) % kIds, version++));
            if (!(*c)->upsert(docs)) ++errors;
            if (batch % 3 == 0 && !(*c)->remove({"d" + std::to_string((batch * 7) % kIds)})) ++errors;
            ++writes;
        }
    });
    auto reader = [&](int seed) {
        for (std::uint64_t i = static_cast<std::uint64_t>(seed); !done; i += 7) {
            const auto t0 = std::chrono::steady_clock::now();
            SearchRequest r;
            r.clauses.push_back(QueryClause::of_text("body", "common tok" + std::to_string(i % kIds)));
            if (i % 2 == 0) r.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(i % 500)));
            r.k = 10;
            auto hits = (*c)->search(r);
            if (!hits) {
                ++errors;
                continue;
            }
            for (const auto& h : *hits) {
                if (!testutil::consistent(h.document)) ++torn;
            }
            auto got = (*c)->get("d" + std::to_string(i % kIds));
            if (got && !testutil::consistent(*got)) ++torn;
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - t0).count();
            std::int64_t prev = max_search_us.load();
            while (us > prev && !max_search_us.compare_exchange_weak(prev, us)) {
            }
            ++searches;
            if (merging) ++searches_during_merge;
        }
    };
    std::thread r1(reader, 1), r2(reader, 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // A full merge of the collection runs while readers and the writer continue.
    merging = true;
    const auto w0 = writes.load();
    const auto m0 = std::chrono::steady_clock::now();
    ASSERT_TRUE((*c)->optimize());
    const auto merge_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - m0).count();
    merging = false;
    const auto writes_during_merge = writes.load() - w0;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    done = true;
    writer.join();
    r1.join();
    r2.join();
    std::printf("[ measure ] searches %llu (during the %lld ms merge: %llu), writes during merge %llu, "
                "max search+get %lld us\n",
                static_cast<unsigned long long>(searches.load()), static_cast<long long>(merge_ms),
                static_cast<unsigned long long>(searches_during_merge.load()),
                static_cast<unsigned long long>(writes_during_merge), static_cast<long long>(max_search_us.load()));
    EXPECT_EQ(torn.load(), 0u);
    EXPECT_EQ(errors.load(), 0u);
    // Readers and the writer both made progress while the merge ran (it holds the writer lock only to
    // plan and to commit).
    EXPECT_GT(searches_during_merge.load(), 0u);
    EXPECT_GT(writes_during_merge, 0u);
    EXPECT_GT(searches.load(), 10u);
    // Afterwards: exactly one live, whole version per id.
    std::size_t live = 0;
    for (std::uint64_t id = 0; id < kIds; ++id) {
        auto d = (*c)->get("d" + std::to_string(id));
        if (!d) continue;
        EXPECT_TRUE(testutil::consistent(*d)) << id;
        ++live;
    }
    EXPECT_EQ((*c)->stats().documents, live);
}

// Four writers of 1-document batches (the memtable path, frozen every 32 documents, merged in the
// background) beside readers: no torn reads, and the final state, before and after reopening, is
// exactly what each writer last wrote or deleted.
TEST(Concurrency, SingleDocumentWritersThroughTheMemtable) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    constexpr std::uint64_t kPerWriter = 50;
    constexpr int kWriters = 4;
    std::map<std::string, std::int64_t> expected;  // id -> version; absent = deleted or never written
    std::mutex expected_mu;
    {
        CollectionOptions o;
        o.memtable_docs = 32;
        o.flush_docs = 100;
        o.max_segments = 4;
        auto c = Collection::create(path, testutil::small_schema(VectorIndexKind::kHnsw), o);
        ASSERT_TRUE(c) << c.error().to_string();
        std::atomic<bool> done{false};
        std::atomic<std::uint64_t> torn{0}, errors{0}, searches{0};
        std::vector<std::thread> writers;
        for (int t = 0; t < kWriters; ++t) {
            writers.emplace_back([&, t] {
                std::map<std::string, std::int64_t> mine;
                for (int i = 0; i < 400; ++i) {
                    const std::uint64_t id = static_cast<std::uint64_t>(t) * kPerWriter + (static_cast<std::uint64_t>(i) * 7) % kPerWriter;
                    const std::string name = "d" + std::to_string(id);
                    if (i % 9 == 8) {
                        if (!(*c)->remove({name})) ++errors;
                        mine.erase(name);
                    } else {
                        const std::int64_t version = t * 100000 + i;
                        if (!(*c)->upsert({testutil::make_doc(id, version)})) ++errors;
                        mine[name] = version;
                    }
                }
                std::lock_guard lock(expected_mu);
                expected.insert(mine.begin(), mine.end());
            });
        }
        std::thread reader([&] {
            for (std::uint64_t i = 0; !done; ++i) {
                SearchRequest r;
                r.clauses.push_back(QueryClause::of_text("body", "common tok" + std::to_string(i % 200)));
                if (i % 2 == 0) r.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(i % 400)));
                auto hits = (*c)->search(r);
                if (!hits) {
                    ++errors;
                    continue;
                }
                for (const auto& h : *hits) {
                    if (!testutil::consistent(h.document)) ++torn;
                }
                auto got = (*c)->get("d" + std::to_string(i % 200));
                if (got && !testutil::consistent(*got)) ++torn;
                ++searches;
            }
        });
        for (auto& w : writers) w.join();
        done = true;
        reader.join();
        EXPECT_EQ(torn.load(), 0u);
        EXPECT_EQ(errors.load(), 0u);
        EXPECT_GT(searches.load(), 0u);
        const auto st = (*c)->stats();
        EXPECT_EQ(st.writes, kWriters * 400u);
        EXPECT_LE(st.wal_syncs, st.writes);
        std::printf("[ measure ] %llu writes, %llu WAL fsyncs, %llu searches\n",
                    static_cast<unsigned long long>(st.writes), static_cast<unsigned long long>(st.wal_syncs),
                    static_cast<unsigned long long>(searches.load()));
        EXPECT_EQ(st.documents, expected.size());
        for (std::uint64_t id = 0; id < kWriters * kPerWriter; ++id) {
            const std::string name = "d" + std::to_string(id);
            auto d = (*c)->get(name);
            const auto it = expected.find(name);
            ASSERT_EQ(d.ok(), it != expected.end()) << name;
            if (d) EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), it->second) << name;
        }
    }
    auto c = Collection::open(path);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().documents, expected.size());
    for (const auto& [name, version] : expected) {
        auto d = (*c)->get(name);
        ASSERT_TRUE(d) << name;
        EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), version) << name;
    }
}

TEST(Concurrency, ConcurrentWritersLeaveOneLiveVersionPerIdAndRecoverTheSame) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    constexpr std::uint64_t kIds = 500;
    std::map<std::string, std::int64_t> before;
    {
        CollectionOptions o;
        o.flush_docs = 300;
        auto c = Collection::create(path, testutil::small_schema(VectorIndexKind::kHnsw), o);
        ASSERT_TRUE(c) << c.error().to_string();
        std::atomic<std::uint64_t> errors{0};
        std::vector<std::thread> writers;
        for (int t = 0; t < 4; ++t) {
            writers.emplace_back([&, t] {
                for (int b = 0; b < 40; ++b) {
                    std::vector<Document> docs;
                    for (int i = 0; i < 25; ++i) {
                        const auto id = static_cast<std::uint64_t>((b * 37 + i * 11 + t * 101) % kIds);
                        docs.push_back(testutil::make_doc(id, t * 100000 + b * 100 + i));
                    }
                    if (!(*c)->upsert(docs)) ++errors;
                    if (b % 5 == 4 && !(*c)->remove({"d" + std::to_string((b + t) % kIds)})) ++errors;
                }
            });
        }
        for (auto& w : writers) w.join();
        EXPECT_EQ(errors.load(), 0u);
        std::size_t live = 0;
        for (std::uint64_t id = 0; id < kIds; ++id) {
            auto d = (*c)->get("d" + std::to_string(id));
            if (!d) continue;
            ASSERT_TRUE(testutil::consistent(*d));
            before["d" + std::to_string(id)] = std::get<std::int64_t>(d->fields.at("ver"));
            ++live;
        }
        EXPECT_EQ((*c)->stats().documents, live);  // exactly one live version per id
    }
    auto c = Collection::open(path);
    ASSERT_TRUE(c) << c.error().to_string();
    std::map<std::string, std::int64_t> after;
    for (std::uint64_t id = 0; id < kIds; ++id) {
        auto d = (*c)->get("d" + std::to_string(id));
        if (d) after["d" + std::to_string(id)] = std::get<std::int64_t>(d->fields.at("ver"));
    }
    EXPECT_EQ(before, after);
}

}  // namespace
}  // namespace quiver::engine
