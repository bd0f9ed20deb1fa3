// Corpus-wide BM25 (issue 9, item 4) and live-document bitmaps in the collection (item 5): scores
// do not depend on how the collection is segmented or on deleted documents awaiting a merge.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "engine/segment.h"
#include "engine_test_util.h"
#include "quiver/engine/collection.h"
#include "quiver/eval/dataset.h"
#include "quiver/eval/metrics.h"
#include "quiver/pipeline/chunking.h"
#include "quiver/sparse/bm25_index.h"
#include "quiver/storage/file_format.h"
#include "testing/bm25_reference.h"
#include "testing/testing.h"

namespace quiver::engine {
namespace {

CollectionOptions manual() {
    CollectionOptions o;
    o.background_merge = false;
    return o;
}

Schema text_schema() {
    Schema s;
    FieldSpec body;
    body.name = "body";
    body.type = FieldType::kText;
    FieldSpec tag;
    tag.name = "tag";
    tag.type = FieldType::kKeyword;
    s.fields = {body, tag};
    return s;
}

// text_schema() plus a stored `title` and a text field `both` indexing title and body.
Schema two_source_schema() {
    Schema s = text_schema();
    FieldSpec title;
    title.name = "title";
    title.indexed = false;
    FieldSpec both;
    both.name = "both";
    both.sources = {"title", "body"};
    s.fields.push_back(title);
    s.fields.push_back(both);
    return s;
}

const char* kWords[] = {"river", "stone", "light", "north", "paper", "glass", "storm", "field", "music", "clock",
                        "bread", "metal", "cloud", "sugar", "green", "ocean", "train", "honey", "smoke", "tiger"};

// Batch b has its own length profile, so per-segment statistics would differ a lot between batches.
Document doc(std::size_t i, std::size_t batch, std::mt19937& rng) {
    Document d;
    d.id = "d" + std::to_string(i);
    const std::size_t len = 3 + batch * 6 + rng() % (4 + batch * 5);
    std::string text;
    for (std::size_t w = 0; w < len; ++w) {
        const auto pick = std::min<std::size_t>(19, static_cast<std::size_t>(std::fabs(std::normal_distribution<double>(0, 5)(rng))));
        text += std::string(kWords[pick]) + " ";
    }
    d.fields["body"] = text;
    d.fields["tag"] = std::string(i % 3 == 0 ? "a" : "b");
    return d;
}

SearchRequest query(const std::string& text, std::size_t k) {
    SearchRequest r;
    r.clauses.push_back(QueryClause::of_text("body", text));
    r.k = k;
    r.return_fields = std::vector<std::string>{};
    return r;
}

const std::vector<std::string> kQueries = {"river",       "tiger honey", "stone stone light", "smoke music ocean",
                                           "green cloud", "train",       "metal bread sugar clock"};

std::map<std::string, double> scores(Collection& c, const std::string& text, std::size_t k) {
    auto hits = c.search(query(text, k));
    EXPECT_TRUE(hits) << hits.error().to_string();
    std::map<std::string, double> out;
    for (const auto& h : *hits) out[h.id] = h.score;
    return out;
}

// Ten batches with a twin of the same text in each, replacements and deletes between them: twins
// score alike, and every score equals the score after optimize (one segment, deletes reclaimed).
TEST(CorpusStats, ScoresDoNotDependOnSegmentationOrPendingDeletes) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), text_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(1);
    std::size_t next = 0;
    for (std::size_t b = 0; b < 10; ++b) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < 150; ++i) batch.push_back(doc(next++, b, rng));
        Document twin;
        twin.id = "twin" + std::to_string(b);
        twin.fields["body"] = std::string("tiger honey river zebra");
        batch.push_back(twin);
        ASSERT_TRUE((*c)->upsert(batch));
        if (b < 2) ASSERT_TRUE((*c)->flush());  // two segments persisted, the rest in memory
        if (b >= 2) {
            // Replace some earlier documents (their old versions become deleted) and delete others.
            std::vector<Document> again;
            for (std::size_t i = 0; i < 20; ++i) again.push_back(doc((b * 37 + i * 11) % next, b, rng));
            ASSERT_TRUE((*c)->upsert(again));
            std::vector<std::string> gone;
            for (std::size_t i = 0; i < 15; ++i) gone.push_back("d" + std::to_string((b * 53 + i * 7) % next));
            ASSERT_TRUE((*c)->remove(gone));
        }
    }
    // An eleventh twin in a 1-document batch: it lands in the memtable, which must score with the same
    // collection-wide statistics as the segments.
    Document twin_mem;
    twin_mem.id = "twin_mem";
    twin_mem.fields["body"] = std::string("tiger honey river zebra");
    ASSERT_TRUE((*c)->upsert({twin_mem}));
    ASSERT_GE((*c)->stats().memory_segments, 1u);
    ASSERT_GE((*c)->stats().segments, 8u);
    // Twins in ten segments and the memtable: one score.
    const auto twins = scores(**c, "zebra", 50);
    ASSERT_EQ(twins.size(), 11u);
    for (const auto& [id, s] : twins) EXPECT_NEAR(s, twins.begin()->second, 1e-4) << id;
    std::vector<std::map<std::string, double>> before;
    for (const auto& q : kQueries) before.push_back(scores(**c, q, 100));
    ASSERT_TRUE((*c)->optimize());
    ASSERT_EQ((*c)->stats().segments, 1u);
    for (std::size_t qi = 0; qi < kQueries.size(); ++qi) {
        const auto after = scores(**c, kQueries[qi], 100);
        ASSERT_FALSE(before[qi].empty());
        std::size_t compared = 0;
        for (const auto& [id, s] : before[qi]) {
            const auto it = after.find(id);
            if (it == after.end()) continue;  // a tie at the cut may fall either way
            EXPECT_NEAR(it->second, s, 1e-4 * std::fabs(s)) << kQueries[qi] << " " << id;
            ++compared;
        }
        EXPECT_GE(compared, before[qi].size() - 5) << kQueries[qi];
    }
    // Still true after a reopen (delete files and segments from disk).
    (*c)->close();
    c = Collection::open(dir.file("c"), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_NEAR(scores(**c, "zebra", 50).begin()->second, twins.begin()->second, 1e-4);
}

// Scores over a collection with deleted documents equal those of a collection holding only the
// live documents: the statistics count live documents (also after a reopen reads the delete files).
TEST(CorpusStats, DeletedDocumentsLeaveTheStatistics) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), text_schema(), manual());
    auto live = Collection::create(dir.file("live"), text_schema(), manual());
    ASSERT_TRUE(c && live);
    std::mt19937 rng(2);
    std::vector<Document> all;
    for (std::size_t i = 0; i < 1200; ++i) all.push_back(doc(i, i / 150, rng));
    for (std::size_t b = 0; b < 8; ++b) {
        ASSERT_TRUE((*c)->upsert(std::vector<Document>(all.begin() + b * 150, all.begin() + (b + 1) * 150)));
    }
    ASSERT_TRUE((*c)->flush());
    std::vector<std::string> gone;
    std::vector<Document> kept;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (i % 4 == 1) {
            gone.push_back(all[i].id);
        } else {
            kept.push_back(all[i]);
        }
    }
    // Deletes in several batches, with searches in between (statistics versions computed by delta).
    for (std::size_t part = 0; part < 3; ++part) {
        std::vector<std::string> some;
        for (std::size_t i = part; i < gone.size(); i += 3) some.push_back(gone[i]);
        ASSERT_TRUE((*c)->remove(some));
        ASSERT_TRUE((*c)->search(query("river", 10)));
    }
    ASSERT_TRUE((*live)->upsert(kept));
    auto check = [&](Collection& got) {
        for (const auto& q : kQueries) {
            const auto want = scores(**live, q, 30);
            const auto have = scores(got, q, 30);
            ASSERT_FALSE(want.empty());
            std::size_t same = 0;
            for (const auto& [id, s] : want) {
                const auto it = have.find(id);
                if (it == have.end()) continue;
                EXPECT_NEAR(it->second, s, 1e-4 * s) << q << " " << id;
                ++same;
            }
            EXPECT_GE(same, want.size() - 3) << q;
        }
    };
    check(**c);
    ASSERT_TRUE((*c)->flush());  // delete files written (roaring, format v2)
    (*c)->close();
    auto reopened = Collection::open(dir.file("c"), manual());
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    check(**reopened);
    EXPECT_EQ((*reopened)->stats().documents, kept.size());
}

// Filters and deletes are applied inside the walk: the k best allowed documents, whatever k.
TEST(CorpusStats, FilteredSearchIsTheBestKOfTheAllowedDocuments) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), text_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(4);
    for (std::size_t b = 0; b < 4; ++b) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < 300; ++i) batch.push_back(doc(b * 300 + i, b, rng));
        ASSERT_TRUE((*c)->upsert(batch));
    }
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 1200; i += 2) gone.push_back("d" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(gone));
    for (const auto& q : kQueries) {
        auto all = (*c)->search(query(q, 1200));
        ASSERT_TRUE(all);
        for (std::size_t k : {1u, 5u, 40u}) {
            SearchRequest r = query(q, k);
            Filter f;
            f.op = Filter::Op::kEq;
            f.field = "tag";
            f.values = {FieldValue(std::string("a"))};
            r.filter = f;
            auto got = (*c)->search(r);
            ASSERT_TRUE(got) << got.error().to_string();
            std::vector<std::string> want;
            for (const auto& h : *all) {
                const std::size_t n = std::stoul(h.id.substr(1));
                if (n % 3 == 0 && want.size() < k) want.push_back(h.id);
            }
            ASSERT_EQ(got->size(), want.size()) << q << " k=" << k;
            for (std::size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ((*got)[i].id, want[i]) << q << " k=" << k << " rank " << i;
                EXPECT_EQ(std::stoul((*got)[i].id.substr(1)) % 2, 1u);
            }
        }
    }
}

// Every source is asked for one hit beyond the page, so a page whose last score is above the next
// document's (an untied boundary) is retrieved once, filtered or not; a tied one may be retrieved
// again deeper. Either way the page is the prefix of the full ranking (score, then id).
TEST(CorpusStats, AnUntiedPageBoundaryIsRetrievedOnce) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), text_schema(), manual());
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(6);
    for (std::size_t b = 0; b < 4; ++b) {
        std::vector<Document> batch;
        for (std::size_t i = 0; i < 300; ++i) batch.push_back(doc(b * 300 + i, b, rng));
        ASSERT_TRUE((*c)->upsert(batch));
        if (b == 1) ASSERT_TRUE((*c)->flush());
    }
    std::vector<Document> small;
    for (std::size_t i = 0; i < 20; ++i) small.push_back(doc(1200 + i, 2, rng));
    ASSERT_TRUE((*c)->upsert(small));  // the memtable is a source too
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 1200; i += 5) gone.push_back("d" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(gone));
    ASSERT_GE((*c)->stats().segments, 3u);
    std::size_t untied = 0;
    for (const auto& q : kQueries) {
        for (const bool filtered : {false, true}) {
            auto with_filter = [&](SearchRequest r) {
                if (filtered) {
                    Filter f;
                    f.op = Filter::Op::kEq;
                    f.field = "tag";
                    f.values = {FieldValue(std::string("b"))};
                    r.filter = f;
                }
                return r;
            };
            auto all = (*c)->search(with_filter(query(q, 1300)));
            ASSERT_TRUE(all) << all.error().to_string();
            for (std::size_t k : {1u, 3u, 10u, 40u}) {
                SearchExplain explain;
                auto got = (*c)->search(with_filter(query(q, k)), &explain);
                ASSERT_TRUE(got) << got.error().to_string();
                ASSERT_EQ(got->size(), std::min(k, all->size())) << q << " k=" << k;
                for (std::size_t i = 0; i < got->size(); ++i) {
                    EXPECT_EQ((*got)[i].id, (*all)[i].id) << q << " k=" << k << " rank " << i;
                    EXPECT_EQ((*got)[i].score, (*all)[i].score) << q << " k=" << k << " rank " << i;
                }
                if (all->size() > k && (*all)[k - 1].score > (*all)[k].score) {
                    ++untied;
                    EXPECT_EQ(explain.retrievals, 1u) << q << " k=" << k << " filtered " << filtered;
                } else {
                    EXPECT_GE(explain.retrievals, 1u);
                }
            }
        }
    }
    EXPECT_GE(untied, 30u);
}

// Delete files: version 1 (one byte per document) is still read; a damaged roaring payload behind a
// valid checksum is refused as data loss naming the file.
TEST(CorpusStats, DeleteFileFormats) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    {
        auto c = Collection::create(path, text_schema(), manual());
        ASSERT_TRUE(c) << c.error().to_string();
        std::mt19937 rng(5);
        std::vector<Document> batch;
        for (std::size_t i = 0; i < 100; ++i) batch.push_back(doc(i, 0, rng));
        ASSERT_TRUE((*c)->upsert(batch));
        ASSERT_TRUE((*c)->flush());
        ASSERT_TRUE((*c)->remove({"d3", "d50"}));
        ASSERT_TRUE((*c)->flush());
        (*c)->close();
    }
    std::string del;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
        if (e.path().filename().string().rfind("del_", 0) == 0) del = e.path().string();
    }
    ASSERT_FALSE(del.empty());
    const std::string v2 = testing::read_bytes(del);
    auto write = [&](std::uint32_t version, const std::string& payload) {
        auto w = storage::FileWriter::create(del, storage::fourcc("DELS"), version);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->write(payload.data(), payload.size()));
        ASSERT_TRUE(w->finish());
    };
    // v1: u64 count, then one byte per document; 3 and 50 and now also 7 deleted.
    std::string v1(8 + 100, '\0');
    const std::uint64_t n = 100;
    std::memcpy(v1.data(), &n, 8);
    v1[8 + 3] = v1[8 + 50] = v1[8 + 7] = 1;
    write(1, v1);
    {
        auto c = Collection::open(path, manual());
        ASSERT_TRUE(c) << c.error().to_string();
        EXPECT_EQ((*c)->stats().documents, 97u);
        EXPECT_FALSE((*c)->get("d7"));
        EXPECT_TRUE((*c)->get("d8"));
        (*c)->close();
    }
    // v2 with a bitmap member beyond the segment, and with garbage instead of a bitmap.
    Bitmap beyond = Bitmap::of(std::vector<std::uint32_t>{3, 100});
    std::string bytes = beyond.serialize();
    std::string payload(16, '\0');
    std::uint64_t size = bytes.size();
    std::memcpy(payload.data(), &n, 8);
    std::memcpy(payload.data() + 8, &size, 8);
    write(2, payload + bytes);
    auto bad = Collection::open(path, manual());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(bad.error().message().find("del_"), std::string::npos) << bad.error().message();
    write(2, payload + std::string(bytes.size(), '\x7f'));
    bad = Collection::open(path, manual());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    testing::write_bytes(del, v2);
    auto good = Collection::open(path, manual());
    ASSERT_TRUE(good) << good.error().to_string();
    EXPECT_EQ((*good)->stats().documents, 98u);
}

// A merge takes its inputs' documents' postings from their BM25 indexes, and a frozen memtable its
// documents' analysis from the memtable, instead of analysing the texts again (Bm25Index::Part,
// Bm25AnalysedText): every persisted segment's BM25 files must be the files an analysis of its stored
// documents, in its order, writes, byte for byte. Four merges: the first flush (four upserted
// segments), a flush continuing that segment with a third of it deleted or replaced and the
// memtable's documents (the schema has an HNSW field, so flushes continue the newest segment), after
// a reopen a compaction of the result beside a second segment, and one whose base lost every
// document holding a term.
TEST(CorpusStats, MergedSegmentsWriteTheTextIndexAnalysisWrites) {
    testing::TempDir dir;
    const std::string path = dir.file("c");
    Schema schema = two_source_schema();
    schema.fields.push_back(testutil::l2_hnsw_field(8, 8, 32));
    CollectionOptions options = manual();
    options.memtable_docs = 40;  // the writer prefreezes it at 30 documents and freezes it when full
    auto c = Collection::create(path, schema, options);
    ASSERT_TRUE(c) << c.error().to_string();
    std::mt19937 rng(5);
    std::size_t next = 0;
    auto with_extras = [&](Document d, std::size_t i) {
        if (i % 5 == 0) d.fields["title"] = std::string("Title of ") + d.id;
        d.fields["emb"] = testutil::vector_for(next + i);
        return d;
    };
    auto batch = [&](std::size_t n, std::size_t profile) {
        std::vector<Document> docs;
        for (std::size_t i = 0; i < n; ++i) {
            docs.push_back(with_extras(doc(next, profile, rng), i));
            ++next;
        }
        return docs;
    };
    // The newest segment's BM25 files against an analysis of its stored documents.
    auto check_newest = [&](const char* phase) {
        std::uint64_t newest = 0;
        for (const auto& e : std::filesystem::directory_iterator(path)) {
            const std::string name = e.path().filename().string();
            if (name.rfind("seg_", 0) == 0) newest = std::max<std::uint64_t>(newest, std::stoull(name.substr(4)));
        }
        auto seg = Segment::open(path, newest, schema);
        ASSERT_TRUE(seg) << seg.error().to_string();
        auto stored = (*seg)->documents();
        ASSERT_TRUE(stored);
        for (const std::string field : {"body", "both"}) {
            std::vector<std::string> ids;
            std::vector<std::string> titles;
            std::vector<std::string> bodies;
            for (std::size_t i = 0; i < stored->size(); ++i) {
                const auto& f = (*stored)[i].fields;
                ids.push_back(std::to_string(i));
                titles.push_back(field == "both" && f.count("title") != 0 ? std::get<std::string>(f.at("title")) : "");
                bodies.push_back(f.count("body") != 0 ? std::get<std::string>(f.at("body")) : "");
            }
            std::vector<sparse::Bm25Document> views;
            for (std::size_t i = 0; i < ids.size(); ++i) views.push_back({ids[i], titles[i], bodies[i]});
            sparse::Bm25Index::BuildOptions o;
            o.params = {schema.bm25_k1, schema.bm25_b};
            auto want = sparse::Bm25Index::build(views, o);
            ASSERT_TRUE(want);
            ASSERT_TRUE(want->save(dir.file("want.bm25")));
            const std::string file = path + "/" + Segment::dir_name(newest) + "/text_" + field + ".bm25";
            EXPECT_EQ(testing::read_bytes(file), testing::read_bytes(dir.file("want.bm25"))) << phase << " " << field;
        }
    };
    for (std::size_t b = 0; b < 4; ++b) ASSERT_TRUE((*c)->upsert(batch(150, b)));
    ASSERT_TRUE((*c)->flush());
    ASSERT_EQ((*c)->stats().segments, 1u);
    check_newest("first flush");
    // A third of it deleted, some replaced, and as many new documents as half of it: the flush
    // continues it.
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < 600; i += 3) gone.push_back("d" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(gone));
    std::vector<Document> again;
    for (std::size_t i = 1; i < 600; i += 19) again.push_back(with_extras(doc(i, 7, rng), i));
    ASSERT_TRUE((*c)->upsert(again));  // 32 documents: the memtable's prefix is prefrozen
    // Ten of them replaced while in the memtable: its frozen prefix skips their first slots.
    std::vector<Document> twice(again.begin(), again.begin() + 10);
    for (auto& d : twice) d.fields["body"] = std::string("river replaced in the memtable ") + d.id;
    ASSERT_TRUE((*c)->upsert(twice));
    ASSERT_GE((*c)->stats().memory_segments, 2u);  // the prefrozen prefix and the memtable
    ASSERT_TRUE((*c)->upsert(batch(300, 5)));
    ASSERT_TRUE((*c)->flush());
    ASSERT_EQ((*c)->stats().segments, 1u);
    check_newest("continuing flush");
    // After a reopen: a second segment (flushed alone: too small to be continued), a quarter deleted,
    // and a compaction of both continuing the first.
    (*c)->close();
    c = Collection::open(path, options);
    ASSERT_TRUE(c) << c.error().to_string();
    std::vector<std::string> more;
    for (std::size_t i = 2; i < next; i += 4) more.push_back("d" + std::to_string(i));
    ASSERT_TRUE((*c)->remove(more));
    ASSERT_TRUE((*c)->upsert(batch(40, 2)));
    ASSERT_TRUE((*c)->flush());
    ASSERT_TRUE((*c)->optimize());
    ASSERT_EQ((*c)->stats().segments, 1u);
    check_newest("compaction after a reopen");
    // Every document holding "tiger" deleted: the term leaves the continued index.
    auto tigers = (*c)->search(query("tiger", 1000));
    ASSERT_TRUE(tigers);
    ASSERT_FALSE(tigers->empty());
    std::vector<std::string> tiger_ids;
    for (const auto& h : *tigers) tiger_ids.push_back(h.id);
    ASSERT_TRUE((*c)->remove(tiger_ids));
    ASSERT_TRUE((*c)->upsert(batch(20, 0)));
    ASSERT_TRUE((*c)->optimize());
    check_newest("a term's documents all deleted");
}

// The two ways of counting deleted documents' statistics (re-analysis of the stored text, one pass
// over the postings) agree with each other and with the difference of two indexes.
TEST(CorpusStats, DeadStatisticsByAnalysisAndByPostingsAgree) {
    Schema schema = two_source_schema();
    std::mt19937 rng(9);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 400; ++i) {
        Document d = doc(i, i % 5, rng);
        if (i % 7 == 0) d.fields["title"] = std::string("The River's Stones and the Lights");
        if (i % 11 == 0) d.fields["body"] = std::string("the of and");  // no tokens
        if (i % 13 == 0) d.fields.erase("body");
        d.fields.erase("tag");
        docs.push_back(std::move(d));
    }
    auto seg = Segment::build(1, schema, docs, std::vector<std::uint64_t>(docs.size(), 1), SegmentBuildOptions{1});
    ASSERT_TRUE(seg) << seg.error().to_string();
    Bitmap dead;
    for (std::uint32_t i = 0; i < docs.size(); ++i) {
        if (rng() % 3 == 0) dead.add(i);
    }
    std::vector<DeadTextStats> by_analysis;
    std::vector<DeadTextStats> by_postings;
    ASSERT_TRUE((*seg)->add_text_stats(schema, dead, by_analysis, Segment::TextStatsMethod::kAnalysis));
    ASSERT_TRUE((*seg)->add_text_stats(schema, dead, by_postings, Segment::TextStatsMethod::kPostings));
    std::vector<Document> live_docs;
    for (std::uint32_t i = 0; i < docs.size(); ++i) {
        if (!dead.contains(i)) live_docs.push_back(docs[i]);
    }
    auto live = Segment::build(2, schema, live_docs, std::vector<std::uint64_t>(live_docs.size(), 1), SegmentBuildOptions{1});
    ASSERT_TRUE(live);
    for (std::size_t fi : {std::size_t{0}, std::size_t{3}}) {
        const auto& a = by_analysis[fi];
        const auto& p = by_postings[fi];
        EXPECT_GT(a.docs_with_tokens, 50u);
        EXPECT_EQ(a.docs_with_tokens, p.docs_with_tokens);
        EXPECT_EQ(a.tokens, p.tokens);
        EXPECT_EQ(a.doc_freq, p.doc_freq);
        const sparse::Bm25Index& all_bm = *(*seg)->text_index(fi);
        const sparse::Bm25Index& live_bm = *(*live)->text_index(fi);
        EXPECT_EQ(all_bm.docs_with_tokens() - a.docs_with_tokens, live_bm.docs_with_tokens());
        EXPECT_EQ(all_bm.total_tokens() - a.tokens, live_bm.total_tokens());
        for (sparse::TermId t = 0; t < all_bm.num_terms(); t += 3) {
            const std::string term(all_bm.term(t));
            EXPECT_EQ(all_bm.doc_freq(t) - a.doc_freq[t], live_bm.doc_freq(live_bm.find_term(term))) << term;
        }
    }
}

// DeadStats over a run of delete versions (some never searched, so a version starts from an older one):
// at every version the counts and the asked terms' document frequencies equal the re-analysis of the
// stored text of every deleted document (`add_text_stats` by analysis, the independent reference), for
// a plain, a two-source and a chunked field (chunk entries), terms asked before and new ones, and a
// term the segment lacks.
TEST(CorpusStats, DeadStatsAcrossDeleteVersionsEqualReanalysis) {
    Schema schema = two_source_schema();
    FieldSpec chunks;
    chunks.name = "chunks";
    chunks.sources = {"title", "body"};
    pipeline::ChunkingSpec spec;
    spec.size = 5;
    spec.overlap = 1;
    chunks.chunking = spec;
    schema.fields.push_back(chunks);
    std::mt19937 rng(17);
    std::vector<Document> docs;
    for (std::size_t i = 0; i < 600; ++i) {
        Document d = doc(i, i % 5, rng);
        if (i % 7 == 0) d.fields["title"] = std::string("The River's Stones and the Lights");
        if (i % 11 == 0) d.fields["body"] = std::string("the of and");  // no tokens
        d.fields.erase("tag");
        docs.push_back(std::move(d));
    }
    auto built = Segment::build(1, schema, docs, std::vector<std::uint64_t>(docs.size(), 1), SegmentBuildOptions{1});
    ASSERT_TRUE(built) << built.error().to_string();
    const std::shared_ptr<const Segment> seg = *built;
    const std::size_t fields[] = {0, 3, 4};
    DeleteSet deleted;
    std::shared_ptr<DeadStats> dead;
    std::size_t checked = 0;
    for (int version = 0; version < 14; ++version) {
        std::vector<std::uint32_t> batch;
        const std::size_t n = version == 6 ? 120 : 1 + rng() % 9;  // one large delete
        for (std::size_t i = 0; i < n; ++i) batch.push_back(static_cast<std::uint32_t>(rng() % docs.size()));
        deleted = deleted.with(batch);
        dead = DeadStats::next(seg, deleted, dead);
        ASSERT_NE(dead, nullptr);
        if (version % 3 == 1) continue;  // not searched: the next version starts from an older one
        std::vector<DeadTextStats> want;
        ASSERT_TRUE(seg->add_text_stats(schema, deleted.flatten(), want, Segment::TextStatsMethod::kAnalysis));
        for (const std::size_t fi : fields) {
            const sparse::Bm25Index& bm = *seg->text_index(fi);
            std::vector<sparse::TermId> ids = {sparse::kTerminated};
            for (int j = 0; j < 5; ++j) ids.push_back(static_cast<sparse::TermId>((version + j * 7) % bm.num_terms()));
            ids.push_back(static_cast<sparse::TermId>(version % 2));  // asked at every version
            DeadTextCounts counts;
            std::vector<std::uint32_t> df(ids.size(), 99);
            ASSERT_TRUE(dead->text_stats(schema, fi, ids, counts, df));
            EXPECT_GT(want[fi].docs_with_tokens, 0u);
            EXPECT_EQ(counts.docs_with_tokens, want[fi].docs_with_tokens) << "field " << fi << " version " << version;
            EXPECT_EQ(counts.tokens, want[fi].tokens) << "field " << fi << " version " << version;
            EXPECT_EQ(df[0], 0u);
            for (std::size_t i = 1; i < ids.size(); ++i) {
                EXPECT_EQ(df[i], want[fi].doc_freq[ids[i]]) << "field " << fi << " version " << version << " term " << ids[i];
                checked += df[i] > 0 ? 1 : 0;
            }
        }
    }
    EXPECT_GT(checked, 60u);
}

using testing::ndcg10;

// SciFact in batches of 100 without optimize: the nDCG@10 of `quiver eval --retriever bm25` (0.6789).
TEST(CorpusStats, SciFactInBatchesOf100WithoutOptimize) {
    QUIVER_REQUIRE_DATA(data, "scifact");
    auto ds = eval::load_dataset(data);
    ASSERT_TRUE(ds) << ds.error().to_string();
    constexpr std::size_t kDepth = 100;
    const eval::Run reference = testing::bm25_reference_run(*ds, kDepth);
    Schema schema;
    FieldSpec title;
    title.name = "title";
    title.indexed = false;
    FieldSpec text;
    text.name = "text";
    text.indexed = false;
    FieldSpec contents;
    contents.name = "contents";
    contents.sources = {"title", "text"};
    schema.fields = {title, text, contents};
    testing::TempDir dir;
    CollectionOptions o = manual();
    o.max_segments = 1000;
    auto c = Collection::create(dir.file("scifact"), schema, o);
    ASSERT_TRUE(c) << c.error().to_string();
    std::vector<Document> batch;
    for (const auto& d : ds->documents) {
        Document doc;
        doc.id = d.id;
        doc.fields["title"] = d.title;
        doc.fields["text"] = d.text;
        batch.push_back(std::move(doc));
        if (batch.size() == 100) {
            ASSERT_TRUE((*c)->upsert(std::move(batch)));
            batch.clear();
        }
    }
    if (!batch.empty()) ASSERT_TRUE((*c)->upsert(std::move(batch)));
    ASSERT_GE((*c)->stats().segments, 50u);
    eval::Run served;
    for (const auto& q : ds->queries) {
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_text("contents", q.text));
        r.k = kDepth + 1;
        r.return_fields = std::vector<std::string>{};
        auto hits = (*c)->search(r);
        ASSERT_TRUE(hits) << hits.error().to_string();
        auto& list = served[q.id];
        for (const auto& h : *hits) {
            if (h.id == q.id || list.size() == kDepth) continue;
            list.push_back({h.id, h.score});
        }
    }
    const double want = ndcg10(*ds, reference);
    const double got = ndcg10(*ds, served);
    std::printf("[ measure ] SciFact nDCG@10 in batches of 100, no optimize: %.4f (quiver eval bm25 %.4f, %zu segments)\n",
                got, want, (*c)->stats().segments);
    EXPECT_NEAR(got, want, 5e-5);
    EXPECT_NEAR(got, 0.6789, 5e-5);
}

}  // namespace
}  // namespace quiver::engine

namespace quiver::engine {
namespace {

// Vector churn through a collection: rounds of replacing a third of the documents with new vectors
// (old versions deleted in bitmaps, skipped inside the HNSW walk) and merging (segments rebuilt from
// live documents, so no tombstone survives a merge). Recall against brute force over the current
// vectors stays high, and the collection holds one live version per id.
TEST(CorpusStats, VectorChurnKeepsRecall) {
    const Schema schema = testutil::l2_hnsw_schema(16, 12, 100);
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), schema, manual());
    ASSERT_TRUE(c) << c.error().to_string();
    const std::size_t n = 1500;
    std::mt19937 rng(12);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<std::vector<float>> current(n, std::vector<float>(16));
    auto put = [&](const std::vector<std::size_t>& which) {
        std::vector<Document> batch;
        for (std::size_t i : which) {
            for (auto& x : current[i]) x = g(rng);
            Document d;
            d.id = "v" + std::to_string(i);
            d.fields["emb"] = current[i];
            batch.push_back(std::move(d));
        }
        return (*c)->upsert(batch);
    };
    std::vector<std::size_t> all(n);
    for (std::size_t i = 0; i < n; ++i) all[i] = i;
    ASSERT_TRUE(put(all));
    ASSERT_TRUE((*c)->flush());
    for (int round = 0; round < 8; ++round) {
        std::vector<std::size_t> some;
        for (std::size_t i = 0; i < n; ++i) {
            if (rng() % 3 == 0) some.push_back(i);
        }
        ASSERT_TRUE(put(some));
        if (round % 3 == 2) ASSERT_TRUE((*c)->flush());
    }
    EXPECT_EQ((*c)->stats().documents, n);
    double found = 0;
    const std::size_t nq = 60;
    for (std::size_t q = 0; q < nq; ++q) {
        std::vector<float> v(16);
        for (auto& x : v) x = g(rng);
        std::vector<std::pair<double, std::size_t>> truth;
        for (std::size_t i = 0; i < n; ++i) {
            double dist = 0;
            for (std::size_t j = 0; j < 16; ++j) dist += (v[j] - current[i][j]) * (v[j] - current[i][j]);
            truth.emplace_back(dist, i);
        }
        std::partial_sort(truth.begin(), truth.begin() + 10, truth.end());
        SearchRequest r;
        r.clauses.push_back(QueryClause::of_vector("emb", v));
        r.k = 10;
        r.ef = 64;
        r.return_fields = std::vector<std::string>{};
        auto hits = (*c)->search(r);
        ASSERT_TRUE(hits);
        ASSERT_EQ(hits->size(), 10u);
        for (std::size_t j = 0; j < 10; ++j) {
            for (const auto& h : *hits) found += h.id == "v" + std::to_string(truth[j].second) ? 1 : 0;
        }
    }
    const double recall = found / static_cast<double>(nq * 10);
    std::printf("[ measure ] vector recall@10 after 8 churn rounds: %.3f (%zu segments)\n", recall, (*c)->stats().segments);
    EXPECT_GE(recall, 0.95);
}

}  // namespace
}  // namespace quiver::engine

namespace quiver::engine {
namespace {

// Searches computing the deleted documents' statistics while deletes publish new versions: every
// search succeeds, and the final scores equal those of a collection of the live documents.
TEST(CorpusStats, StatisticsUnderConcurrentDeletes) {
    testing::TempDir dir;
    auto c = Collection::create(dir.file("c"), text_schema(), manual());
    auto live = Collection::create(dir.file("live"), text_schema(), manual());
    ASSERT_TRUE(c && live);
    std::mt19937 rng(6);
    std::vector<Document> all;
    for (std::size_t i = 0; i < 2000; ++i) all.push_back(doc(i, i % 6, rng));
    for (std::size_t b = 0; b < 4; ++b) {
        ASSERT_TRUE((*c)->upsert(std::vector<Document>(all.begin() + b * 500, all.begin() + (b + 1) * 500)));
    }
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> searchers;
    for (int t = 0; t < 2; ++t) {
        searchers.emplace_back([&, t] {
            std::size_t qi = static_cast<std::size_t>(t);
            while (!stop.load()) {
                if (!(*c)->search(query(kQueries[qi++ % kQueries.size()], 10))) failures.fetch_add(1);
            }
        });
    }
    std::vector<std::string> gone;
    for (std::size_t i = 0; i < all.size(); i += 3) gone.push_back(all[i].id);
    for (std::size_t start = 0; start < gone.size(); start += 20) {
        ASSERT_TRUE((*c)->remove(std::vector<std::string>(gone.begin() + static_cast<long>(start),
                                                          gone.begin() + static_cast<long>(std::min(gone.size(), start + 20)))));
    }
    stop.store(true);
    for (auto& t : searchers) t.join();
    EXPECT_EQ(failures.load(), 0);
    std::vector<Document> kept;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (i % 3 != 0) kept.push_back(all[i]);
    }
    ASSERT_TRUE((*live)->upsert(kept));
    for (const auto& q : kQueries) {
        const auto want = scores(**live, q, 20);
        const auto have = scores(**c, q, 20);
        for (const auto& [id, s] : want) {
            const auto it = have.find(id);
            if (it != have.end()) EXPECT_NEAR(it->second, s, 1e-4 * s) << q << " " << id;
        }
    }
}

}  // namespace
}  // namespace quiver::engine
