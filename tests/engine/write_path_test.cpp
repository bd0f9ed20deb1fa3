// The write path: group commit (one fsync per group, a failed fsync fails the whole group), the
// memtable (searchable, exact, frozen into segments, recovered from the WAL), and statistics that never
// wait for a writer stuck in fsync.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "engine/collection_state.h"
#include "engine/segment.h"
#include "engine_test_util.h"
#include "quiver/engine/repair.h"
#include "quiver/storage/file_format.h"
#include "quiver/storage/fs.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

using namespace std::chrono_literals;

// A WAL fsync seam that blocks the first `block` calls until released, and fails calls listed in `fail`.
class SyncGate {
public:
    Status operator()() {
        std::unique_lock lock(mu_);
        const int call = calls_++;
        if (call < block_) {
            ++blocked_;
            cv_.notify_all();
            cv_.wait(lock, [&] { return released_; });
        }
        if (std::find(fail_.begin(), fail_.end(), call) != fail_.end()) return io_error("injected fsync failure");
        return ok_status();
    }
    void block_first(int n) { block_ = n; }
    void fail_call(int n) { fail_.push_back(n); }
    void wait_blocked(int n) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return blocked_ >= n; });
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            released_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int calls_ = 0;
    int block_ = 0;
    int blocked_ = 0;
    bool released_ = false;
    std::vector<int> fail_;
};

void wait_for_waiting(Collection& c, std::size_t n) {
    while (c.stats().writes_waiting < n) std::this_thread::sleep_for(1ms);
}

TEST(GroupCommit, WritersQueuedDuringAnFsyncShareTheNextOne) {
    testing::TempDir dir;
    auto gate = std::make_shared<SyncGate>();
    gate->block_first(1);
    CollectionOptions o;
    o.background_merge = false;
    o.wal_sync_hook = [gate] { return (*gate)(); };
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    std::thread leader([&] { EXPECT_TRUE((*c)->upsert({testutil::make_doc(0, 1)})); });
    gate->wait_blocked(1);
    // The leader holds the writer lock inside fsync: statistics, gets and searches still answer, and
    // the unacknowledged write is not visible.
    auto stats = std::async(std::launch::async, [&] { return (*c)->stats(); });
    ASSERT_EQ(stats.wait_for(60s), std::future_status::ready) << "stats() waited for the writer";
    EXPECT_EQ(stats.get().documents, 0u);
    auto got = std::async(std::launch::async, [&] { return (*c)->get("d0"); });
    ASSERT_EQ(got.wait_for(60s), std::future_status::ready);
    EXPECT_EQ(got.get().error().code(), ErrorCode::kNotFound);
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", "common"));
    auto found = (*c)->search(r);
    ASSERT_TRUE(found);
    EXPECT_TRUE(found->empty());

    constexpr int kFollowers = 15;
    std::vector<std::thread> followers;
    std::atomic<int> failed{0};
    for (int i = 1; i <= kFollowers; ++i) {
        followers.emplace_back([&, i] {
            if (!(*c)->upsert({testutil::make_doc(static_cast<std::uint64_t>(i), 1)})) ++failed;
        });
    }
    wait_for_waiting(**c, kFollowers);
    gate->release();
    leader.join();
    for (auto& t : followers) t.join();
    EXPECT_EQ(failed.load(), 0);
    const CollectionStats st = (*c)->stats();
    EXPECT_EQ(st.writes, 16u);
    EXPECT_EQ(st.wal_syncs, 2u);  // the leader's, then one for all 15 followers
    EXPECT_EQ(st.documents, 16u);
    EXPECT_EQ(st.writes_waiting, 0u);
    for (int i = 0; i <= kFollowers; ++i) EXPECT_TRUE((*c)->get("d" + std::to_string(i))) << i;
}

TEST(GroupCommit, HandoffReturnsThePostedValueWhetherPostedBeforeOrDuringTheWait) {
    Handoff early;
    early.post(PendingWrite::kLead);
    EXPECT_EQ(early.wait(), PendingWrite::kLead);  // posted before: no sleep
    Handoff h;
    std::atomic<bool> returned{false};
    std::uint32_t got = 0;
    std::thread waiter([&] {
        got = h.wait();
        returned = true;
    });
    std::this_thread::sleep_for(20ms);  // the waiter is (very likely) asleep in FUTEX_WAIT by now
    EXPECT_FALSE(returned.load());
    h.post(PendingWrite::kDone);
    waiter.join();
    EXPECT_EQ(got, PendingWrite::kDone);
}

TEST(GroupCommit, HandoffWordsFreedRightAfterTheirWaitDoNotLoseOrMixWakeUps) {
    // The writer frees its word (its PendingWrite) as soon as wait() returns, possibly before the
    // leader's FUTEX_WAKE; each round here frees the word at once and the next round's word may reuse
    // its address. Every round must deliver its own value and nothing may hang (the test's timeout).
    constexpr int kRounds = 20000;
    constexpr int kPairs = 3;
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int p = 0; p < kPairs; ++p) {
        auto slot = std::make_shared<std::atomic<Handoff*>>(nullptr);
        threads.emplace_back([slot, &wrong] {  // the waiter: allocates, publishes, waits, frees
            for (int r = 0; r < kRounds; ++r) {
                auto* h = new Handoff();
                slot->store(h, std::memory_order_release);
                const std::uint32_t v = h->wait();
                if (v != (r % 2 == 0 ? PendingWrite::kDone : PendingWrite::kLead)) ++wrong;
                delete h;
            }
        });
        threads.emplace_back([slot] {  // the leader: takes each word once and posts to it
            for (int r = 0; r < kRounds; ++r) {
                Handoff* h = nullptr;
                while ((h = slot->exchange(nullptr, std::memory_order_acquire)) == nullptr) std::this_thread::yield();
                h->post(r % 2 == 0 ? PendingWrite::kDone : PendingWrite::kLead);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong.load(), 0);
}

TEST(GroupCommit, AFailedFsyncFailsEveryWriteOfItsGroupAndNoneIsReplayed) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    auto gate = std::make_shared<SyncGate>();
    gate->block_first(1);
    gate->fail_call(1);
    {
        CollectionOptions o;
        o.background_merge = false;
        o.wal_sync_hook = [gate] { return (*gate)(); };
        auto c = Collection::create(path, testutil::small_schema(), o);
        ASSERT_TRUE(c) << c.error().to_string();
        std::thread leader([&] { EXPECT_TRUE((*c)->upsert({testutil::make_doc(0, 1)})); });
        gate->wait_blocked(1);
        std::vector<std::thread> group;
        std::vector<Status> results(3);
        for (int i = 0; i < 3; ++i) {
            group.emplace_back([&, i] {
                if (i == 2) {
                    auto removed = (*c)->remove({"d0"});
                    results[2] = removed ? ok_status() : Status(removed.error());
                } else {
                    results[static_cast<std::size_t>(i)] = (*c)->upsert({testutil::make_doc(static_cast<std::uint64_t>(i + 1), 1)});
                }
            });
        }
        wait_for_waiting(**c, 3);
        gate->release();
        leader.join();
        for (auto& t : group) t.join();
        for (const auto& st : results) {
            ASSERT_FALSE(st);
            EXPECT_EQ(st.error().code(), ErrorCode::kIoError);
            EXPECT_NE(st.error().message().find("injected fsync failure"), std::string::npos);
        }
        // Nothing of the failed group was applied; the first write was.
        EXPECT_TRUE((*c)->get("d0"));
        EXPECT_FALSE((*c)->get("d1"));
        EXPECT_FALSE((*c)->get("d2"));
        EXPECT_EQ((*c)->stats().documents, 1u);
        // The failed group was cut off the log: later writes are acknowledged normally.
        ASSERT_TRUE((*c)->upsert({testutil::make_doc(9, 1)}));
        EXPECT_TRUE((*c)->get("d9"));
        EXPECT_EQ((*c)->stats().wal_syncs, 3u);
    }
    // Reopened: exactly the acknowledged writes, never the failed group (its records were truncated
    // away, so neither a later fsync nor the replay could resurrect them).
    auto c = Collection::open(path);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_TRUE((*c)->get("d0"));
    EXPECT_FALSE((*c)->get("d1"));
    EXPECT_FALSE((*c)->get("d2"));
    EXPECT_TRUE((*c)->get("d9"));
    EXPECT_EQ((*c)->stats().documents, 2u);
}

// Scores and ids from the memtable equal those of the segment it is frozen into.
TEST(Memtable, SearchesMatchTheSegmentItFreezesInto) {
    testing::TempDir dir;
    CollectionOptions o;
    o.background_merge = false;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    for (std::uint64_t i = 0; i < 60; ++i) {
        Document d = testutil::make_doc(i, static_cast<std::int64_t>(i));
        d.fields["body"] = std::string("common words ") + (i % 3 == 0 ? "alpha alpha " : "") +
                           (i % 5 == 0 ? "beta " : "") + std::string(i % 7, 'x') + " tok" + std::to_string(i);
        ASSERT_TRUE((*c)->upsert({d}));
    }
    ASSERT_TRUE((*c)->remove({"d3", "d10"}));
    ASSERT_TRUE((*c)->upsert({testutil::make_doc(5, 500)}));  // replaces d5 inside the memtable
    const CollectionStats before_stats = (*c)->stats();
    EXPECT_EQ(before_stats.documents, 58u);
    EXPECT_EQ(before_stats.memory_segments, 1u);
    EXPECT_EQ(before_stats.wal_syncs, 62u);

    auto run = [&](SearchRequest r) {
        auto hits = (*c)->search(r);
        EXPECT_TRUE(hits);
        return hits ? *hits : std::vector<SearchHit>{};
    };
    std::vector<SearchRequest> requests;
    {
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_text("body", "alpha beta common"));
        r.k = 20;
        requests.push_back(r);
        SearchRequest v;
        v.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(17)));
        v.k = 10;
        requests.push_back(v);
        SearchRequest f = r;
        Filter filter;
        filter.field = "tag";
        filter.values = {std::string("even")};
        f.filter = filter;
        requests.push_back(f);
    }
    std::vector<std::vector<SearchHit>> before;
    for (const auto& r : requests) before.push_back(run(r));
    ASSERT_EQ(before[0].size(), 20u);
    EXPECT_EQ(before[1].front().id, "d17");
    for (const auto& h : before[2]) EXPECT_EQ(std::get<std::string>(h.document.fields.at("tag")), "even");

    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().memory_segments, 0u);
    EXPECT_EQ((*c)->stats().documents, 58u);
    for (std::size_t q = 0; q < requests.size(); ++q) {
        const auto after = run(requests[q]);
        ASSERT_EQ(after.size(), before[q].size()) << q;
        for (std::size_t i = 0; i < after.size(); ++i) {
            EXPECT_EQ(after[i].id, before[q][i].id) << q << " rank " << i;
            EXPECT_NEAR(after[i].score, before[q][i].score, 1e-5 * std::max(1.0, std::abs(after[i].score))) << q;
        }
    }
    auto d5 = (*c)->get("d5");
    ASSERT_TRUE(d5);
    EXPECT_EQ(std::get<std::int64_t>(d5->fields.at("ver")), 500);
    EXPECT_FALSE((*c)->get("d3"));
}

// In-memory segments (a frozen memtable, an upsert batch, the replayed log) keep their documents
// uncompressed (no zstd work for a segment a merge replaces): they read back exactly as a compressed
// store does, one at a time and all at once, and persisting one is refused (nothing written).
TEST(Memtable, InMemorySegmentsKeepDocumentsUncompressedAndAreNeverPersisted) {
    testing::TempDir dir;
    const Schema schema = testutil::small_schema();
    std::vector<Document> docs;
    for (std::uint64_t i = 0; i < 23; ++i) {  // 5 full store blocks of 4 and a partial one
        Document d = testutil::make_doc(i, static_cast<std::int64_t>(i));
        d.fields["body"] = std::string("words of document ") + std::to_string(i) + std::string(i * 7, 'z');
        docs.push_back(std::move(d));
    }
    const std::vector<std::uint64_t> seqs(docs.size(), 1);
    SegmentBuildOptions raw_options;
    raw_options.exact_vectors = true;
    raw_options.raw_store = true;
    SegmentBuildOptions packed_options;
    packed_options.exact_vectors = true;
    auto raw = Segment::build(1, schema, docs, seqs, raw_options);
    auto packed = Segment::build(2, schema, docs, seqs, packed_options);
    ASSERT_TRUE(raw) << raw.error().to_string();
    ASSERT_TRUE(packed) << packed.error().to_string();
    auto all_raw = (*raw)->documents();
    auto all_packed = (*packed)->documents();
    ASSERT_TRUE(all_raw);
    ASSERT_TRUE(all_packed);
    ASSERT_EQ(all_raw->size(), docs.size());
    for (std::uint32_t i = 0; i < docs.size(); ++i) {
        auto one = (*raw)->document(i);
        ASSERT_TRUE(one);
        EXPECT_EQ(one->id, docs[i].id);
        EXPECT_EQ(one->fields, docs[i].fields) << i;
        EXPECT_EQ((*all_raw)[i].fields, (*all_packed)[i].fields) << i;
    }
    EXPECT_FALSE((*raw)->document(23));
    // The uncompressed store is larger than zstd's (the repeated 'z' runs compress).
    EXPECT_GT((*raw)->size_bytes(), (*packed)->size_bytes());
    auto refused = (*raw)->persist(dir.path());
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/" + Segment::dir_name(1)));
    EXPECT_TRUE((*packed)->persist(dir.path()));
    auto reopened = Segment::open(dir.path(), 2, schema);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    auto back = (*reopened)->document(22);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->fields, docs[22].fields);
}

// A schema with a short stored text field (title), a long one (text), an indexed text field over both,
// attributes (tag, year) and a vector: the segment stores title in its short-field column.
Schema short_field_schema() {
    Schema s;
    FieldSpec title;
    title.name = "title";
    title.type = FieldType::kText;
    title.indexed = false;
    FieldSpec text = title;
    text.name = "text";
    FieldSpec contents;
    contents.name = "contents";
    contents.type = FieldType::kText;
    contents.sources = {"title", "text"};
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    FieldSpec year;
    year.name = "year";
    year.type = FieldType::kInteger;
    FieldSpec emb;
    emb.name = "emb";
    emb.type = FieldType::kVector;
    emb.dim = 8;
    emb.metric = simd::Metric::kCosine;
    s.fields = {title, text, contents, tag, year, emb};
    return s;
}

std::vector<Document> short_field_docs(std::size_t n) {
    std::vector<Document> docs;
    for (std::uint64_t i = 0; i < n; ++i) {
        Document d;
        d.id = "doc" + std::to_string(i);
        if (i % 5 != 3) d.fields["title"] = std::string("title ") + std::to_string(i) + std::string(i % 40, 't');
        d.fields["text"] = std::string("body words of ") + std::to_string(i) + " " + std::string(300 + i, 'x');
        if (i % 3 != 0) d.fields["tag"] = std::string(i % 2 == 0 ? "even" : "odd");
        d.fields["year"] = static_cast<std::int64_t>(1990 + i % 35);
        d.fields["emb"] = testutil::vector_for(i);
        docs.push_back(std::move(d));
    }
    return docs;
}

// The fields of `d` named in `names` (each once), as a projection of the whole document gives them.
Document projected(const Document& d, const std::vector<std::string>& names) {
    Document out;
    out.id = d.id;
    for (const auto& name : names) {
        if (auto it = d.fields.find(name); it != d.fields.end()) out.fields.emplace(name, it->second);
    }
    return out;
}

// Short text fields (values averaging at most kShortFieldBytes) are stored beside the blocks,
// uncompressed: whole documents read back exactly (built, in memory, persisted as version 4 and
// reopened), and a projection onto short and attribute fields equals the whole document's projection
// (documents lacking a field included, a name given twice, a long field falling back to the block).
TEST(Segments, ShortFieldsAreStoredBesideTheBlocksAndReadBackExactly) {
    testing::TempDir dir;
    const Schema schema = short_field_schema();
    const std::vector<Document> docs = short_field_docs(23);
    const std::vector<std::uint64_t> seqs(docs.size(), 1);
    SegmentBuildOptions raw_options;
    raw_options.exact_vectors = true;
    raw_options.raw_store = true;
    SegmentBuildOptions packed_options;
    packed_options.exact_vectors = true;
    auto raw = Segment::build(1, schema, docs, seqs, raw_options);
    auto packed = Segment::build(2, schema, docs, seqs, packed_options);
    ASSERT_TRUE(raw) << raw.error().to_string();
    ASSERT_TRUE(packed) << packed.error().to_string();
    ASSERT_TRUE((*packed)->persist(dir.path()));
    auto reopened = Segment::open(dir.path(), 2, schema);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    const std::string header = testing::read_bytes(dir.path() + "/" + Segment::dir_name(2) + "/docs.qvr").substr(0, 16);
    EXPECT_EQ(header[8], 4) << "a segment with short fields is written as version 4";
    const std::vector<std::vector<std::string>> projections = {
        {"title"}, {"title", "tag", "year"}, {"year"}, {"title", "title"}, {"text"}, {"title", "emb"}, {"nothing"}};
    for (const auto* seg : {&*raw, &*packed, &*reopened}) {
        EXPECT_EQ((*seg)->short_fields(), std::vector<std::string>{"title"});
        auto all = (*seg)->documents();
        ASSERT_TRUE(all) << all.error().to_string();
        ASSERT_EQ(all->size(), docs.size());
        for (std::uint32_t i = 0; i < docs.size(); ++i) {
            auto one = (*seg)->document(i);
            ASSERT_TRUE(one) << one.error().to_string();
            EXPECT_EQ(one->id, docs[i].id);
            EXPECT_EQ(one->fields, docs[i].fields) << i;
            EXPECT_EQ((*all)[i].fields, docs[i].fields) << i;
            for (const auto& names : projections) {
                auto part = (*seg)->document(i, names);
                ASSERT_TRUE(part) << part.error().to_string();
                const Document want = projected(docs[i], names);
                EXPECT_EQ(part->id, want.id);
                EXPECT_EQ(part->fields, want.fields) << i << " " << names.front();
            }
        }
        EXPECT_FALSE((*seg)->document(23, std::vector<std::string>{"title"}));
    }
    // Nothing short (every text value longer than kShortFieldBytes): no column, version 2 as before.
    std::vector<Document> long_docs = docs;
    for (Document& d : long_docs) d.fields["title"] = std::string(Segment::kShortFieldBytes + 1, 'L');
    auto long_seg = Segment::build(3, schema, long_docs, seqs, packed_options);
    ASSERT_TRUE(long_seg);
    EXPECT_TRUE((*long_seg)->short_fields().empty());
    ASSERT_TRUE((*long_seg)->persist(dir.path()));
    const std::string long_header = testing::read_bytes(dir.path() + "/" + Segment::dir_name(3) + "/docs.qvr").substr(0, 16);
    EXPECT_EQ(long_header[8], 2);
    auto long_back = Segment::open(dir.path(), 3, schema);
    ASSERT_TRUE(long_back);
    auto title = (*long_back)->document(4, std::vector<std::string>{"title"});
    ASSERT_TRUE(title);
    EXPECT_EQ(title->fields, projected(long_docs[4], {"title"}).fields);
}

// A version-4 document store whose short-field column is damaged, rewritten with a valid checksum
// (so only the format's own checks can catch it): offsets out of order or beyond the column refuse
// the open with kDataLoss; a garbled entry opens but reading that document (whole or projected) is
// kDataLoss while the other documents still read; a flipped byte without a new checksum refuses the open.
TEST(Segments, CorruptShortFieldColumnIsDataLoss) {
    testing::TempDir dir;
    const Schema schema = short_field_schema();
    const std::vector<Document> docs = short_field_docs(10);
    SegmentBuildOptions options;
    options.exact_vectors = true;
    auto seg = Segment::build(7, schema, docs, std::vector<std::uint64_t>(docs.size(), 1), options);
    ASSERT_TRUE(seg);
    ASSERT_TRUE((*seg)->persist(dir.path()));
    const std::string path = dir.path() + "/" + Segment::dir_name(7) + "/docs.qvr";
    const std::string good = testing::read_bytes(path);
    // Payload: u64 metadata length | metadata (ending with the n + 1 column offsets) | column | blocks.
    const std::string payload = good.substr(16, good.size() - 16 - 24);
    std::uint64_t meta_len = 0;
    std::memcpy(&meta_len, payload.data(), 8);
    const std::size_t offsets_at = 8 + meta_len - (docs.size() + 1) * 8;  // offset of slot 0's entry
    const std::size_t column_at = 8 + meta_len;
    auto rewrite = [&](const std::string& p) {
        auto w = storage::FileWriter::create(path, storage::fourcc("SEGD"), 4);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->write(p.data(), p.size()));
        ASSERT_TRUE(w->finish());
    };
    auto put_u64 = [](std::string& p, std::size_t at, std::uint64_t v) { std::memcpy(p.data() + at, &v, 8); };
    {
        std::string p = payload;
        put_u64(p, offsets_at + 2 * 8, 1);  // slot 2 starts before slot 1
        rewrite(p);
        auto bad = Segment::open(dir.path(), 7, schema);
        ASSERT_FALSE(bad);
        EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(bad.error().message().find("short-field"), std::string::npos) << bad.error().message();
    }
    {
        std::string p = payload;
        put_u64(p, offsets_at + docs.size() * 8, 1u << 30);  // the column's end beyond the file
        rewrite(p);
        auto bad = Segment::open(dir.path(), 7, schema);
        ASSERT_FALSE(bad);
        EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    }
    {
        std::string p = payload;
        p[offsets_at - 9] = 'Z';  // the short-field name ("title" -> "titlZ", before the u64 column size)
        rewrite(p);
        auto bad = Segment::open(dir.path(), 7, schema);
        ASSERT_FALSE(bad);  // not a text field of the schema: its values would silently go missing
        EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(bad.error().message().find("titlZ"), std::string::npos) << bad.error().message();
    }
    {
        std::string p = payload;
        std::uint64_t slot1 = 0;
        std::memcpy(&slot1, p.data() + offsets_at + 8, 8);
        const std::uint32_t huge = 0x7FFFFFFF;
        std::memcpy(p.data() + column_at + slot1 + 4, &huge, 4);  // slot 1's field count
        rewrite(p);
        auto opened = Segment::open(dir.path(), 7, schema);
        ASSERT_TRUE(opened) << opened.error().to_string();
        auto whole = (*opened)->document(1);
        ASSERT_FALSE(whole);
        EXPECT_EQ(whole.error().code(), ErrorCode::kDataLoss);
        auto part = (*opened)->document(1, std::vector<std::string>{"title"});
        ASSERT_FALSE(part);
        EXPECT_EQ(part.error().code(), ErrorCode::kDataLoss);
        auto fine = (*opened)->document(2, std::vector<std::string>{"title"});
        ASSERT_TRUE(fine);
        EXPECT_EQ(fine->fields, projected(docs[2], {"title"}).fields);
    }
    {
        std::string flipped = good;
        flipped[16 + column_at + 3] ^= 0x01;
        testing::write_bytes(path, flipped);
        auto bad = Segment::open(dir.path(), 7, schema);
        ASSERT_FALSE(bad);
        EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    }
}

TEST(Segment, IdTableFindsEveryIdAndNoOther) {
    // find() is an open-addressing table over hashes: every id must map to its own slot (ids of many
    // lengths, some sharing prefixes), none of 20,000 absent ids may be found, and the hash a caller
    // computes once (delete_live probes every segment with it) must give the same answers.
    const Schema schema = testutil::small_schema();
    std::vector<Document> docs;
    for (std::uint64_t i = 0; i < 5000; ++i) {
        Document d = testutil::make_doc(i, 1);
        d.id = (i % 3 == 0 ? "x" : i % 3 == 1 ? "doc-" : "a-much-longer-identifier-") + std::to_string(i * 7919 % 100003);
        docs.push_back(std::move(d));
    }
    // A repeated id keeps its first slot (as the map it replaces did).
    docs.push_back(docs[17]);
    const std::vector<std::uint64_t> seqs(docs.size(), 1);
    SegmentBuildOptions o;
    o.exact_vectors = true;
    o.raw_store = true;
    auto seg = Segment::build(1, schema, docs, seqs, o);
    ASSERT_TRUE(seg) << seg.error().to_string();
    for (std::uint32_t i = 0; i < 5000; ++i) {
        const auto got = (*seg)->find(docs[i].id);
        ASSERT_TRUE(got) << docs[i].id;
        EXPECT_EQ(*got, i);
        EXPECT_EQ((*seg)->find(docs[i].id, Segment::id_hash(docs[i].id)), got);
    }
    EXPECT_EQ((*seg)->find(docs[17].id), std::optional<std::uint32_t>(17));
    std::size_t absent = 0;
    for (std::uint64_t i = 0; i < 20000; ++i) {
        for (const std::string id : {"y" + std::to_string(i), "doc-" + std::to_string(100003 + i), std::string()}) {
            EXPECT_FALSE((*seg)->find(id)) << id;
            ++absent;
        }
    }
    EXPECT_EQ(absent, 60000u);
}

// A flush continues the newest persisted segment's HNSW graph when the flushed documents are at least
// half its size and it is below flush_docs with at most half of it deleted: one segment grows (its
// graph keeps every live node, its deleted documents' nodes dropped, new documents inserted), instead
// of a new segment per flush whose graph a later merge would rebuild. A smaller flush, a segment more
// than half deleted, a quantized graph's segment with a delete, or a schema with a flat field starts
// a new segment. Searches answer as brute force throughout, and after reopening.
TEST(Merges, AFlushContinuesTheNewestSegmentsGraph) {
    testing::TempDir dir;
    CollectionOptions o;
    o.background_merge = false;
    o.flush_docs = 1000;
    o.max_deleted_ratio = 0.9;  // no segment is rewritten for its deletes
    auto c = Collection::create(dir.file("c"), testutil::small_schema(VectorIndexKind::kHnsw), o);
    ASSERT_TRUE(c) << c.error().to_string();
    std::uint64_t next = 0;
    auto write = [&](std::size_t n) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < n; ++i, ++next) batch.push_back(testutil::make_doc(next, static_cast<std::int64_t>(next)));
        ASSERT_TRUE((*c)->upsert(batch));
    };
    // The top k for the vector of version q.
    auto vector_hits = [](const Collection& coll, std::uint64_t q, std::size_t k) {
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector("emb", testutil::vector_for(q)));
        r.k = k;
        return coll.search(r);
    };
    auto check_search = [&](Collection& coll, std::vector<std::uint64_t> queries = {}) {
        if (queries.empty()) queries = {std::uint64_t{3}, next / 2, next - 1};
        for (std::uint64_t q : queries) {
            auto hits = vector_hits(coll, q, 1);
            ASSERT_TRUE(hits);
            ASSERT_EQ(hits->size(), 1u);
            // The document itself (cosine similarity 1), or a twin: vector_for repeats itself to within
            // 1e-4 every 355 ids (8 x 355 is within 0.01 of 452 turns).
            const std::uint64_t got = std::stoull(hits->front().id.substr(1));
            const auto a = testutil::vector_for(q);
            const auto b = testutil::vector_for(got);
            double dot = 0, na = 0, nb = 0;
            for (std::size_t i = 0; i < a.size(); ++i) {
                dot += a[i] * b[i];
                na += a[i] * a[i];
                nb += b[i] * b[i];
            }
            EXPECT_GT(dot / std::sqrt(na * nb), 1.0 - 1e-4) << q << " " << hits->front().id;
        }
    };
    write(300);
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 1u);
    write(150);  // half of 300: continues it
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 1u);
    EXPECT_EQ((*c)->stats().documents, 450u);
    write(200);  // less than half of 450: a new segment
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 2u);
    write(600);  // continues the 200-document segment
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 2u);
    EXPECT_EQ((*c)->stats().documents, 1250u);
    write(500);  // the newest (800) is below flush_docs and 500 >= 400: continues it, to 1,300
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 2u);
    write(700);  // the newest (1,300) is not below flush_docs: a new segment
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 3u);
    // Two deletes in the newest (700): one in its middle (the documents after it are renumbered in
    // the continued graph) and its last.
    const std::uint64_t mid = next - 400;
    const std::uint64_t gone = next - 1;
    ASSERT_TRUE((*c)->remove({"d" + std::to_string(mid), "d" + std::to_string(gone)}));
    const std::vector<std::uint64_t> after_mid = {mid - 1, mid + 1, mid + 2, mid + 150, gone - 1};
    write(700);  // continued, to 1,398, without the deleted documents
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 3u);
    EXPECT_EQ((*c)->stats().documents, next - 2);
    EXPECT_EQ((*c)->stats().deleted_pending, 0u);
    EXPECT_FALSE((*c)->get("d" + std::to_string(mid)));
    EXPECT_FALSE((*c)->get("d" + std::to_string(gone)));
    check_search(**c, after_mid);
    auto no_ghost = [&](const Collection& coll) {
        for (const std::uint64_t dead : {mid, gone}) {
            auto hits = vector_hits(coll, dead, 20);
            ASSERT_TRUE(hits);
            EXPECT_EQ(hits->size(), 20u);
            for (const auto& h : *hits) EXPECT_NE(h.id, "d" + std::to_string(dead));
        }
    };
    no_ghost(**c);
    write(400);  // the newest (1,398) is not below flush_docs: a new segment
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 4u);
    std::vector<std::string> half;
    for (std::uint64_t i = next - 400; i < next - 199; ++i) half.push_back("d" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(half));
    write(300);  // 300 >= 400 / 2, but 201 of the newest's 400 are deleted: a new segment
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().segments, 5u);
    EXPECT_EQ((*c)->stats().documents, next - 2 - 201);
    check_search(**c);
    (*c)->close();
    auto reopened = Collection::open(dir.file("c"), o);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    EXPECT_EQ((*reopened)->stats().documents, next - 2 - 201);
    EXPECT_EQ((*reopened)->stats().segments, 5u);
    check_search(**reopened);
    check_search(**reopened, after_mid);
    no_ghost(**reopened);

    // A quantized graph is continued only without deleted documents (a base with deletes is rebuilt).
    Schema sq = testutil::small_schema(VectorIndexKind::kHnsw);
    sq.fields[3].quantization.codec = *index::CodecSpec::parse("sq8");
    auto q = Collection::create(dir.file("sq8"), sq, o);
    ASSERT_TRUE(q) << q.error().to_string();
    auto write_q = [&](std::uint64_t from, std::size_t n) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < n; ++i) batch.push_back(testutil::make_doc(from + i, static_cast<std::int64_t>(from + i)));
        ASSERT_TRUE((*q)->upsert(batch));
        ASSERT_TRUE((*q)->flush());
    };
    write_q(0, 300);
    write_q(300, 150);  // continues
    EXPECT_EQ((*q)->stats().segments, 1u);
    ASSERT_TRUE((*q)->remove({"d7"}));
    write_q(450, 300);  // the newest has a delete: a new segment
    EXPECT_EQ((*q)->stats().segments, 2u);
    EXPECT_EQ((*q)->stats().documents, 749u);

    // A flat vector field is rebuilt by every merge: flushes keep their own segments.
    auto flat = Collection::create(dir.file("flat"), testutil::small_schema(VectorIndexKind::kFlat), o);
    ASSERT_TRUE(flat);
    for (std::size_t round = 0; round < 2; ++round) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < 300; ++i) batch.push_back(testutil::make_doc(round * 300 + i, 1));
        ASSERT_TRUE((*flat)->upsert(batch));
        ASSERT_TRUE((*flat)->flush());
    }
    EXPECT_EQ((*flat)->stats().segments, 2u);
}

TEST(Merges, AContinuingFlushCopiesTheBaseStoreBlocksAndKeepsEveryDocument) {
    // A flush continuing the newest segment takes that segment's whole compressed store blocks as
    // they are (4 documents a block) and builds the rest: bases of 301 (a partial last block), 452
    // and 679 documents; every document must read back as written, before and after a reopen.
    testing::TempDir dir;
    CollectionOptions o;
    o.background_merge = false;
    o.flush_docs = 1000;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(VectorIndexKind::kHnsw), o);
    ASSERT_TRUE(c) << c.error().to_string();
    std::uint64_t next = 0;
    auto write = [&](std::size_t n) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < n; ++i, ++next) batch.push_back(testutil::make_doc(next, static_cast<std::int64_t>(next)));
        ASSERT_TRUE((*c)->upsert(batch));
        ASSERT_TRUE((*c)->flush());
    };
    auto check_all = [&](const Collection& coll) {
        EXPECT_EQ(coll.stats().segments, 1u);
        EXPECT_EQ(coll.stats().documents, next);
        for (std::uint64_t i = 0; i < next; ++i) {
            auto got = coll.get("d" + std::to_string(i));
            ASSERT_TRUE(got) << i;
            const Document want = testutil::make_doc(i, static_cast<std::int64_t>(i));
            ASSERT_EQ(got->fields.size(), want.fields.size()) << i;
            EXPECT_EQ(std::get<std::string>(got->fields.at("body")), std::get<std::string>(want.fields.at("body"))) << i;
            EXPECT_EQ(std::get<std::int64_t>(got->fields.at("ver")), static_cast<std::int64_t>(i)) << i;
            EXPECT_EQ(std::get<std::vector<float>>(got->fields.at("emb")), std::get<std::vector<float>>(want.fields.at("emb")))
                << i;
        }
    };
    write(301);
    write(151);  // continues 301 (75 whole blocks copied, the 76th rebuilt with the new documents)
    write(227);  // continues 452 (113 whole blocks)
    check_all(**c);
    (*c)->close();
    auto reopened = Collection::open(dir.file("c"), o);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    check_all(**reopened);
}

TEST(Memtable, FreezesAtCapacityAndRecoversFromTheLog) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        CollectionOptions o;
        o.background_merge = false;
        o.memtable_docs = 16;
        auto c = Collection::create(path, testutil::small_schema(VectorIndexKind::kHnsw), o);
        ASSERT_TRUE(c) << c.error().to_string();
        for (std::uint64_t i = 0; i < 40; ++i) ASSERT_TRUE((*c)->upsert({testutil::make_doc(i % 30, static_cast<std::int64_t>(i))}));
        auto removed = (*c)->remove({"d1", "d2", "nope"});
        ASSERT_TRUE(removed);
        EXPECT_EQ(*removed, 2u);
        const auto st = (*c)->stats();
        EXPECT_EQ(st.documents, 28u);
        // Three memtable prefixes frozen at 12 documents (16 - 16/4) + the current memtable.
        EXPECT_EQ(st.segments, 4u);
        EXPECT_EQ(st.memory_segments, 4u);
        EXPECT_EQ(st.deleted_pending, 12u);  // ten replaced versions, two deletes
        // Replaced documents are found in their newest version wherever they live.
        for (std::uint64_t i = 0; i < 10; ++i) {
            if (i == 1 || i == 2) continue;
            auto d = (*c)->get("d" + std::to_string(i));
            ASSERT_TRUE(d) << i;
            EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), static_cast<std::int64_t>(i + 30));
            EXPECT_TRUE(testutil::consistent(*d));
        }
        // No flush: everything is only in the WAL and in memory.
    }
    auto c = Collection::open(path);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ((*c)->stats().documents, 28u);
    EXPECT_FALSE((*c)->get("d1"));
    auto d9 = (*c)->get("d9");
    ASSERT_TRUE(d9);
    EXPECT_EQ(std::get<std::int64_t>(d9->fields.at("ver")), 39);
    ASSERT_TRUE((*c)->upsert({testutil::make_doc(1, 77)}));
    ASSERT_TRUE((*c)->flush());
    EXPECT_EQ((*c)->stats().documents, 29u);
    EXPECT_EQ((*c)->stats().memory_segments, 0u);
}

// At three quarters of its capacity the memtable's prefix becomes a segment built outside the writer
// lock; what was deleted or replaced meanwhile is deleted in it, and searches see the same documents and
// scores before and after.
TEST(Memtable, PrefreezesOutsideTheLockAndKeepsEveryVersion) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    CollectionOptions o;
    o.background_merge = false;
    o.memtable_docs = 16;
    auto c = Collection::create(path, testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    for (std::uint64_t i = 0; i < 11; ++i) ASSERT_TRUE((*c)->upsert({testutil::make_doc(i, 1)}));
    EXPECT_EQ((*c)->stats().segments, 1u);  // the memtable alone
    ASSERT_TRUE((*c)->upsert({testutil::make_doc(11, 1)}));  // the 12th: 16 - 16/4, the prefix is frozen
    CollectionStats st = (*c)->stats();
    EXPECT_EQ(st.segments, 1u);  // the segment; the new memtable is empty
    EXPECT_EQ(st.memory_segments, 1u);
    EXPECT_EQ(st.documents, 12u);
    ASSERT_TRUE((*c)->upsert({testutil::make_doc(0, 2)}));  // replaces a document of that segment
    ASSERT_TRUE((*c)->remove({"d1"}));
    st = (*c)->stats();
    EXPECT_EQ(st.segments, 2u);
    EXPECT_EQ(st.documents, 11u);
    EXPECT_EQ(st.deleted_pending, 2u);
    auto d0 = (*c)->get("d0");
    ASSERT_TRUE(d0);
    EXPECT_EQ(std::get<std::int64_t>(d0->fields.at("ver")), 2);
    EXPECT_FALSE((*c)->get("d1"));
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", "common tok0"));
    r.k = 20;
    auto before = (*c)->search(r);
    ASSERT_TRUE(before);
    ASSERT_EQ(before->size(), 11u);
    EXPECT_EQ(before->front().id, "d0");
    ASSERT_TRUE((*c)->flush());
    auto after = (*c)->search(r);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->size(), before->size());
    for (std::size_t i = 0; i < after->size(); ++i) {
        EXPECT_EQ((*after)[i].id, (*before)[i].id) << i;
        EXPECT_NEAR((*after)[i].score, (*before)[i].score, 1e-5 * std::max(1.0, std::abs((*after)[i].score))) << i;
    }
}

// Writers replacing and deleting documents while prefixes are frozen outside the lock: every id ends
// at its last version (each thread owns its ids), in memory and after recovery from the log.
TEST(Memtable, ConcurrentWritersAcrossPrefreezesLoseNothing) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    constexpr int kThreads = 4;
    constexpr int kIdsPerThread = 40;
    constexpr int kRounds = 5;
    {
        CollectionOptions o;
        o.background_merge = false;
        o.memtable_docs = 32;
        auto c = Collection::create(path, testutil::small_schema(), o);
        ASSERT_TRUE(c) << c.error().to_string();
        std::vector<std::thread> threads;
        std::atomic<int> failed{0};
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int round = 0; round < kRounds; ++round) {
                    for (int k = 0; k < kIdsPerThread; ++k) {
                        const auto id = static_cast<std::uint64_t>(t * 1000 + k);
                        if (!(*c)->upsert({testutil::make_doc(id, round)})) ++failed;
                        // Every 7th id is deleted in the last round.
                        if (round == kRounds - 1 && k % 7 == 0 && !(*c)->remove({"d" + std::to_string(id)})) ++failed;
                    }
                }
            });
        }
        for (auto& th : threads) th.join();
        ASSERT_EQ(failed.load(), 0);
        const int deleted_per_thread = (kIdsPerThread + 6) / 7;
        EXPECT_EQ((*c)->stats().documents, static_cast<std::size_t>(kThreads * (kIdsPerThread - deleted_per_thread)));
        for (int t = 0; t < kThreads; ++t) {
            for (int k = 0; k < kIdsPerThread; ++k) {
                auto d = (*c)->get("d" + std::to_string(t * 1000 + k));
                if (k % 7 == 0) {
                    EXPECT_FALSE(d) << t << " " << k;
                } else {
                    ASSERT_TRUE(d) << t << " " << k;
                    EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), kRounds - 1);
                }
            }
        }
    }
    auto c = Collection::open(path);
    ASSERT_TRUE(c) << c.error().to_string();
    const int deleted_per_thread = (kIdsPerThread + 6) / 7;
    EXPECT_EQ((*c)->stats().documents, static_cast<std::size_t>(kThreads * (kIdsPerThread - deleted_per_thread)));
    auto d = (*c)->get("d1001");
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), kRounds - 1);
}

// A batch larger than memtable_max_batch builds its own segment; both paths replace each other's ids.
TEST(Memtable, LargeAndSmallBatchesReplaceEachOther) {
    testing::TempDir dir;
    CollectionOptions o;
    o.background_merge = false;
    o.memtable_max_batch = 4;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    std::vector<Document> big;
    for (std::uint64_t i = 0; i < 10; ++i) big.push_back(testutil::make_doc(i, 1));
    ASSERT_TRUE((*c)->upsert(big));
    ASSERT_TRUE((*c)->upsert({testutil::make_doc(3, 2), testutil::make_doc(4, 2)}));
    for (auto& d : big) d.fields["ver"] = std::int64_t{3};
    big = {};
    for (std::uint64_t i = 0; i < 6; ++i) big.push_back(testutil::make_doc(i, 3));
    ASSERT_TRUE((*c)->upsert(big));  // replaces d3, d4 held by the memtable
    EXPECT_EQ((*c)->stats().documents, 10u);
    for (std::uint64_t i = 0; i < 10; ++i) {
        auto d = (*c)->get("d" + std::to_string(i));
        ASSERT_TRUE(d);
        EXPECT_EQ(std::get<std::int64_t>(d->fields.at("ver")), i < 6 ? 3 : 1) << i;
    }
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", "tok3"));
    auto hits = (*c)->search(r);
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ(std::get<std::int64_t>(hits->front().document.fields.at("ver")), 3);
}

// A gate the background merger passes before each pass (CollectionOptions::merge_hook).
class MergeGate {
public:
    void operator()() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return open_; });
    }
    void open() {
        {
            std::lock_guard lock(mu_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
};

std::vector<Document> batch(std::uint64_t from, std::size_t n) {
    std::vector<Document> docs;
    for (std::uint64_t i = from; i < from + n; ++i) docs.push_back(testutil::make_doc(i, 1));
    return docs;
}

TEST(WriteStall, WritersWaitWhileMergesAreBehindAndGoOnOnceAMergeCatchesUp) {
    testing::TempDir dir;
    auto gate = std::make_shared<MergeGate>();
    CollectionOptions o;
    o.merge_hook = [gate] { (*gate)(); };
    o.stall_memory_segments = 3;
    o.max_stall_ms = 600000;  // only the merge can end this wait
    o.flush_docs = 1;         // any in-memory segment is due for a merge
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    // Batches above memtable_max_batch (64) become in-memory segments of their own.
    for (std::uint64_t b = 0; b < 3; ++b) ASSERT_TRUE((*c)->upsert(batch(b * 100, 100)));
    EXPECT_EQ((*c)->stats().memory_segments, 3u);
    EXPECT_EQ((*c)->stats().write_stalls, 0u);
    std::atomic<bool> returned{false};
    Status result;
    std::thread writer([&] {
        result = (*c)->upsert(batch(300, 1));
        returned = true;
    });
    while ((*c)->stats().write_stalls < 1) std::this_thread::sleep_for(1ms);
    // Stalled: the merger is held at its gate, so nothing can lower the count and the write waits
    // (it has not reached the log: the collection still has 300 documents).
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(returned.load());
    EXPECT_EQ((*c)->stats().documents, 300u);
    gate->open();
    writer.join();
    EXPECT_TRUE(result) << result.error().to_string();
    // The writer goes on when the merge publishes; `merges` counts the pass a moment later, once the
    // files it replaced are unlinked (after the writer lock is released).
    for (int i = 0; i < 10000 && (*c)->stats().merges < 1; ++i) std::this_thread::sleep_for(1ms);
    const CollectionStats st = (*c)->stats();
    EXPECT_EQ(st.write_stalls, 1u);
    EXPECT_GE(st.merges, 1u);
    EXPECT_EQ(st.documents, 301u);
    EXPECT_TRUE((*c)->get("d300"));
}

TEST(WriteStall, CloseReleasesAStalledWriter) {
    testing::TempDir dir;
    auto gate = std::make_shared<MergeGate>();
    CollectionOptions o;
    o.merge_hook = [gate] { (*gate)(); };
    o.stall_memory_segments = 2;
    o.max_stall_ms = 600000;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    for (std::uint64_t b = 0; b < 2; ++b) ASSERT_TRUE((*c)->upsert(batch(b * 100, 100)));
    Status result;
    std::thread writer([&] { result = (*c)->upsert(batch(200, 1)); });
    while ((*c)->stats().write_stalls < 1) std::this_thread::sleep_for(1ms);
    std::thread closer([&] { (*c)->close(); });
    gate->open();  // the merger may run one pass, then sees the stop
    writer.join();
    closer.join();
    // Either the write made it before close took the writer lock, or it was refused as closed: never
    // a hang (the test would time out) and never an acknowledged write that is not in the log.
    if (result) {
        auto reopened = Collection::open(dir.file("c"), o);
        ASSERT_TRUE(reopened) << reopened.error().to_string();
        EXPECT_TRUE((*reopened)->get("d200"));
    } else {
        EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition) << result.error().to_string();
    }
}

TEST(WriteStall, ZeroTurnsItOff) {
    testing::TempDir dir;
    auto gate = std::make_shared<MergeGate>();
    CollectionOptions o;
    o.merge_hook = [gate] { (*gate)(); };
    o.stall_memory_segments = 0;
    auto c = Collection::create(dir.file("c"), testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    for (std::uint64_t b = 0; b < 6; ++b) ASSERT_TRUE((*c)->upsert(batch(b * 100, 100)));
    EXPECT_EQ((*c)->stats().memory_segments, 6u);
    EXPECT_EQ((*c)->stats().write_stalls, 0u);
    gate->open();
}

// Merge lanes: a compaction (here the rewrite of a segment with too many deleted documents) holds
// back neither flushes nor writers. The compaction lane is held at its hook, sources taken; meanwhile
// writes go on and the flush lane persists them (a single merger would leave them in memory and, at
// the stall limit, hold the writers for the whole rewrite). Once released, the rewrite commits beside
// the flushes' segments without losing or reviving a document, live and after a reopen.
// A compaction lane held after it took its sources (CollectionOptions::compact_hook) until
// gate->open(); `entered` counts the passes that reached the hook.
struct HeldCompaction {
    std::shared_ptr<MergeGate> gate = std::make_shared<MergeGate>();
    std::shared_ptr<std::atomic<int>> entered = std::make_shared<std::atomic<int>>(0);
    void hold(CollectionOptions& o) const {
        o.compact_hook = [gate = gate, entered = entered] {
            entered->fetch_add(1);
            (*gate)();
        };
    }
    void wait_taken() const {
        while (entered->load() == 0) std::this_thread::sleep_for(1ms);
    }
};

TEST(MergeLanes, FlushesAndWritesGoOnWhileACompactionRuns) {
    testing::TempDir dir;
    const HeldCompaction held;
    const auto& gate = held.gate;
    const auto& entered = held.entered;
    CollectionOptions o;
    held.hold(o);
    o.stall_memory_segments = 3;
    // A flush lane held back by the rewrite would leave the writes below stalled for 3 s each and the
    // in-memory segments in place, failing the checks after them (not hanging the test).
    o.max_stall_ms = 3000;
    o.flush_docs = 1;         // any in-memory segment is due for a flush
    o.max_deleted_ratio = 0.1;
    const std::string path = dir.file("c");
    auto c = Collection::create(path, testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->upsert(batch(0, 1000)));
    ASSERT_TRUE((*c)->flush());
    std::vector<std::string> gone;
    for (std::uint64_t i = 0; i < 1000; i += 5) gone.push_back("d" + std::to_string(i));
    ASSERT_EQ(*(*c)->remove(gone), gone.size());
    held.wait_taken();  // the rewrite took its segment
    // Ten batches of 100 (each an in-memory segment: above memtable_max_batch), more than the stall
    // limit: they return because the flush lane persists them while the rewrite waits.
    for (std::uint64_t b = 0; b < 10; ++b) ASSERT_TRUE((*c)->upsert(batch(1000 + b * 100, 100)));
    for (int i = 0; i < 10000 && (*c)->stats().memory_segments > 0; ++i) std::this_thread::sleep_for(1ms);
    CollectionStats st = (*c)->stats();
    EXPECT_EQ(st.memory_segments, 0u);
    EXPECT_EQ(st.documents, 1800u);
    EXPECT_EQ(st.deleted_pending, gone.size());  // the rewrite has not committed
    EXPECT_EQ(entered->load(), 1);
    gate->open();
    for (int i = 0; i < 10000 && (*c)->stats().deleted_pending > 0; ++i) std::this_thread::sleep_for(1ms);
    st = (*c)->stats();
    EXPECT_EQ(st.deleted_pending, 0u);
    EXPECT_EQ(st.documents, 1800u);
    auto check = [&](Collection& col) {
        EXPECT_EQ(col.stats().documents, 1800u);
        for (std::uint64_t i = 0; i < 2000; ++i) {
            const bool deleted = i < 1000 && i % 5 == 0;
            EXPECT_EQ(col.get("d" + std::to_string(i)).ok(), !deleted) << i;
        }
    };
    check(**c);
    (*c)->close();
    CollectionOptions plain;
    plain.background_merge = false;
    auto reopened = Collection::open(path, plain);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    check(**reopened);
}

// A merged segment's own delete file (documents deleted while the merge built it) and the delete
// files a flush writes for the other persisted segments take different generations. They once both
// started at 1: a compaction left segment N with del_N_1, the next flush wrote its capture of N's
// deletes over del_N_1, named it in MANIFEST and then removed it as the file it replaced, so the next
// open refused the collection (a delete file named by MANIFEST missing). The crash test's round 118
// of 200 (session 21) found it.
TEST(Merges, AFlushNeverReusesTheDeleteFileGenerationOfAMergedSegment) {
    testing::TempDir dir;
    const HeldCompaction held;
    CollectionOptions o;
    held.hold(o);
    o.max_deleted_ratio = 0.1;
    o.flush_docs = 100000;  // the flush lane flushes on its own only when writes are idle
    const std::string path = dir.file("c");
    auto c = Collection::create(path, testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->upsert(batch(0, 1000)));
    ASSERT_TRUE((*c)->flush());  // one persisted segment, no delete file: generations start afresh
    std::vector<std::string> gone;
    for (std::uint64_t i = 0; i < 1000; i += 5) gone.push_back("d" + std::to_string(i));
    ASSERT_EQ(*(*c)->remove(gone), gone.size());
    held.wait_taken();  // the rewrite took the segment
    // Deleted while the rewrite builds: the rewritten segment gets a delete file of its own.
    std::vector<std::string> during = {"d1", "d2", "d3"};
    ASSERT_EQ(*(*c)->remove(during), during.size());
    held.gate->open();
    for (int i = 0; i < 10000 && (*c)->stats().deleted_pending != during.size(); ++i) std::this_thread::sleep_for(1ms);
    ASSERT_EQ((*c)->stats().deleted_pending, during.size());
    ASSERT_EQ((*c)->stats().segments, 1u);
    // More deletes in it, and a flush of a few new documents (too few to take the segment along):
    // the flush writes the segment's deletes to a delete file of a new generation.
    std::vector<std::string> after = {"d6", "d7"};
    ASSERT_EQ(*(*c)->remove(after), after.size());
    ASSERT_TRUE((*c)->upsert(batch(5000, 5)));
    ASSERT_TRUE((*c)->flush());
    auto check = [&](Collection& col) {
        EXPECT_EQ(col.stats().documents, 1000u - gone.size() - during.size() - after.size() + 5u);
        for (const auto* ids : {&gone, &during, &after}) {
            for (const auto& id : *ids) EXPECT_FALSE(col.get(id).ok()) << id;
        }
        EXPECT_TRUE(col.get("d4").ok());
        EXPECT_TRUE(col.get("d5004").ok());
    };
    check(**c);
    (*c)->close();
    CollectionOptions plain;
    plain.background_merge = false;
    auto reopened = Collection::open(path, plain);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    check(**reopened);
}

// A flush makes the deletes of the other persisted segments durable (its checkpoint drops them from
// the log) in delete files written before its commit, outside the writer lock: a write goes on while
// that file's fsync is held, and a delete made meanwhile survives the flush and a reopen.
class DeleteFileGate : public storage::FileSystem {
public:
    int fsync(int fd, const std::string& path) override {
        if (path.find("/del_") != std::string::npos && held_.fetch_add(1) == 0) gate_();
        return storage::FileSystem::fsync(fd, path);
    }
    bool wait_held() {
        for (int i = 0; i < 60000 && held_.load() == 0; ++i) std::this_thread::sleep_for(1ms);
        return held_.load() > 0;
    }
    void open() { gate_.open(); }

private:
    MergeGate gate_;
    std::atomic<int> held_{0};
};

TEST(Merges, AFlushWritesDeleteFilesOutsideTheWriterLock) {
    testing::TempDir dir;
    CollectionOptions o;
    o.background_merge = false;
    o.build_threads = 1;
    const std::string path = dir.file("c");
    auto c = Collection::create(path, testutil::small_schema(), o);
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->upsert(batch(0, 200)));
    ASSERT_TRUE((*c)->flush());
    ASSERT_EQ(*(*c)->remove({"d3", "d5"}), 2u);  // the persisted segment is dirty
    ASSERT_TRUE((*c)->upsert(batch(200, 10)));   // and the memtable has documents to flush
    DeleteFileGate gate;
    storage::ScopedFileSystem scope(gate);
    auto flushed = std::async(std::launch::async, [&] { return (*c)->flush(); });
    if (!gate.wait_held()) {
        gate.open();
        FAIL() << "the flush wrote no delete file";
    }
    // Holding the writer lock across the delete file would leave these waiting until the gate opens.
    auto written = std::async(std::launch::async, [&] {
        if (Status st = (*c)->upsert(batch(300, 5)); !st) return st;
        auto removed = (*c)->remove({"d7"});
        return removed ? ok_status() : Status(removed.error());
    });
    const bool went_on = written.wait_for(60s) == std::future_status::ready;
    gate.open();
    EXPECT_TRUE(went_on) << "a write waited for the flush's delete file";
    ASSERT_TRUE(written.get());
    ASSERT_TRUE(flushed.get());
    auto check = [&](Collection& col) {
        EXPECT_EQ(col.stats().documents, 212u);
        for (std::uint64_t i = 0; i < 305; ++i) {
            const bool live = (i < 210 || i >= 300) && i != 3 && i != 5 && i != 7;
            EXPECT_EQ(col.get("d" + std::to_string(i)).ok(), live) << i;
        }
    };
    check(**c);
    (*c)->close();
    auto reopened = Collection::open(path, o);
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    check(**reopened);
    // Only the delete file the last MANIFEST names is left.
    std::size_t del_files = 0;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
        del_files += e.path().filename().string().rfind("del_", 0) == 0 ? 1 : 0;
    }
    EXPECT_EQ(del_files, 1u);
}

// Delete by filter is atomic as of its snapshot: a matching document that a concurrent write replaces
// between the snapshot and the delete's commit keeps its new version, live and after replay.
TEST(DeleteByFilter, ADocumentRewrittenAfterTheSnapshotKeepsItsNewVersion) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        CollectionOptions o;
        o.background_merge = false;
        auto c = Collection::create(path, testutil::small_schema(), o);
        ASSERT_TRUE(c) << c.error().to_string();
        ASSERT_TRUE((*c)->upsert({testutil::make_doc(0, 1), testutil::make_doc(1, 1), testutil::make_doc(2, 1)}));
    }
    Filter even;
    even.op = Filter::Op::kEq;
    even.field = "tag";
    even.values = {FieldValue(std::string("even"))};
    for (const bool reopen_first : {false, true}) {
        SCOPED_TRACE(reopen_first ? "after a reopen" : "live");
        auto gate = std::make_shared<SyncGate>();
        gate->block_first(1);
        CollectionOptions o;
        o.background_merge = false;
        o.wal_sync_hook = [gate] { return (*gate)(); };
        auto c = Collection::open(path, o);
        ASSERT_TRUE(c) << c.error().to_string();
        if (reopen_first) {
            // The second round replays the first round's records (type 3 included): same state.
            EXPECT_EQ(std::get<std::int64_t>((*c)->get("d0")->fields.at("ver")), 2);
            EXPECT_FALSE((*c)->get("d2"));
            gate->release();
            continue;
        }
        // The rewrite of d0 holds the log in fsync; the delete's snapshot does not see it.
        std::thread rewrite([&] { EXPECT_TRUE((*c)->upsert({testutil::make_doc(0, 2)})); });
        gate->wait_blocked(1);
        Result<std::size_t> removed = std::size_t{0};
        std::thread del([&] { removed = (*c)->remove_where(even); });
        wait_for_waiting(**c, 1);
        gate->release();
        rewrite.join();
        del.join();
        ASSERT_TRUE(removed) << removed.error().to_string();
        EXPECT_EQ(*removed, 1u);  // d2; d0 was replaced after the snapshot
        auto d0 = (*c)->get("d0");
        ASSERT_TRUE(d0) << "the concurrent rewrite of d0 was deleted";
        EXPECT_EQ(std::get<std::int64_t>(d0->fields.at("ver")), 2);
        EXPECT_FALSE((*c)->get("d2"));
        EXPECT_TRUE((*c)->get("d1"));
        EXPECT_EQ((*c)->stats().documents, 2u);
    }
    // `quiver repair` salvages the same state from those records.
    auto report = repair_collection(path);
    ASSERT_TRUE(report) << report.error().to_string();
    auto c = Collection::open(path, CollectionOptions{});
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->get("d0"));
    EXPECT_EQ(std::get<std::int64_t>((*c)->get("d0")->fields.at("ver")), 2);
    EXPECT_FALSE((*c)->get("d2"));
    EXPECT_EQ((*c)->stats().documents, 2u);
}

}  // namespace
}  // namespace quiver::engine
