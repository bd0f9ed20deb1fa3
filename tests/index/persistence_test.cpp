// Save/open round trips and rejection of damaged files, for both index kinds.
#include <gtest/gtest.h>

#include "index/index_testing.h"
#include "index/reseal.h"
#include "quiver/index/flat_index.h"
#include "quiver/index/hnsw_index.h"
#include "testing/testing.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "quiver/storage/file_format.h"

namespace quiver::index {
namespace {

std::unique_ptr<VectorIndex> build(const std::string& kind, const Matrix<float>& base) {
    std::unique_ptr<VectorIndex> idx;
    if (kind == "flat") idx = std::move(*FlatIndex::create(base.dim, Metric::kCosine));
    else idx = std::move(*HnswIndex::create(base.dim, Metric::kCosine, {.M = 8, .ef_construction = 64}));
    EXPECT_TRUE(idx->add(base, sequential_labels(base.rows)).ok());
    std::vector<Label> gone = {Label{5}, Label{6}};
    EXPECT_EQ(*idx->remove(gone), 2u);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < base.rows; ++i) ids.push_back("doc-" + std::to_string(i));
    idx->set_external_ids(ids);
    return idx;
}

class PersistenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PersistenceTest, RoundTripGivesIdenticalResults) {
    testing::TempDir dir;
    auto base = testing::clustered_matrix(1500, 20, 15, 51);
    auto queries = testing::clustered_matrix(30, 20, 15, 52);
    auto idx = build(GetParam(), base);
    const std::string path = dir.file("x.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    auto opened = open_index(path);
    ASSERT_TRUE(opened) << opened.error().to_string();
    EXPECT_EQ((*opened)->info().kind, GetParam());
    EXPECT_EQ((*opened)->info().size, 1498u);
    EXPECT_EQ((*opened)->info().dim, 20u);
    EXPECT_EQ((*opened)->info().metric, Metric::kCosine);
    EXPECT_EQ((*opened)->label_name(Label{7}), "doc-7");
    const SearchParams p{.k = 10, .ef = 50};
    auto a = *idx->search(queries, p);
    auto b = *(*opened)->search(queries, p);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.distances, b.distances);
    // The opened (mapped) index accepts new vectors and removals.
    auto more = testing::clustered_matrix(100, 20, 15, 53);
    ASSERT_TRUE((*opened)->add(more, sequential_labels(100, 5000)).ok());
    EXPECT_EQ((*opened)->info().size, 1598u);
    auto c = *(*opened)->search(more.view().slice(0, 1), {.k = 1, .ef = 50});
    EXPECT_EQ(to_int(c.label(0, 0)), 5000u);
}

TEST_P(PersistenceTest, CorruptedAndTruncatedFilesAreRejected) {
    testing::TempDir dir;
    auto base = testing::random_matrix(300, 8, 61);
    auto idx = build(GetParam(), base);
    const std::string path = dir.file("x.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    const std::string good = testing::read_bytes(path);

    // A flip in the middle lies in a large section (vectors or level-0 records): opening succeeds and the
    // first search fails naming the section; with verify the open itself fails.
    std::string flipped = good;
    flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x1);
    testing::write_bytes(path, flipped);
    auto r = open_index(path, {.verify = true});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("checksum"), std::string::npos) << r.error().message();
    auto lazy = open_index(path);
    ASSERT_TRUE(lazy) << lazy.error().to_string();
    auto first = (*lazy)->search(base.view().slice(0, 1), {.k = 3});
    ASSERT_FALSE(first);
    EXPECT_EQ(first.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(first.error().message().find(GetParam() == std::string("flat") ? "'VECS'" : "'L0RC'"),
              std::string::npos) << first.error().message();
    EXPECT_EQ((*lazy)->search(base.view().slice(0, 1), {.k = 3}).error().code(), ErrorCode::kDataLoss);  // stays failed
    EXPECT_FALSE((*lazy)->save(dir.file("copy.qvr")).ok());  // never re-sealed under a fresh checksum
    EXPECT_FALSE((*lazy)->add(base.view().slice(0, 1), std::vector<Label>{Label{9999}}).ok());

    for (std::size_t keep : {good.size() - 7, good.size() / 3, std::size_t{20}}) {
        testing::write_bytes(path, good.substr(0, keep));
        auto t = open_index(path);
        ASSERT_FALSE(t) << keep;
        EXPECT_EQ(t.error().code(), ErrorCode::kDataLoss) << t.error().to_string();
    }
    testing::write_bytes(path, "");
    EXPECT_FALSE(open_index(path));
    testing::write_bytes(path, "this is a text file, not an index at all");
    auto wrong = open_index(path);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("not a quiver"), std::string::npos) << wrong.error().message();
    auto missing = open_index(dir.file("missing.qvr"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

// Every byte of the file, one bit flipped at a time (header, small sections, large sections, the section
// table with its offsets and lengths, footer): opened with verify the file is refused with kDataLoss;
// opened lazily it is refused at open or at the first search, never answered from damaged bytes.
TEST_P(PersistenceTest, EveryFlippedByteIsCaughtLazilyOrAtOpen) {
    testing::TempDir dir;
    auto base = testing::random_matrix(120, 8, 62);
    auto idx = build(GetParam(), base);
    const std::string path = dir.file("x.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    const std::string good = testing::read_bytes(path);
    const auto sections = testing::sections_of(good);
    ASSERT_EQ(sections.size(), 1u);  // flat: VECS; float32 HNSW: L0RC
    std::size_t at_open = 0, at_first_use = 0;
    for (std::size_t at = 0; at < good.size(); ++at) {
        const auto mask = static_cast<unsigned char>(1u << (at % 8));
        testing::flip_byte(path, at, mask);
        struct Restore {
            const std::string& p;
            std::size_t at;
            unsigned char mask;
            ~Restore() { testing::flip_byte(p, at, mask); }
        } restore{path, at, mask};
        // open_index reads the magic and kind to pick the index type: damage there reads as "not a quiver
        // index file" (kInvalidArgument); everywhere else it is kDataLoss.
        const ErrorCode expected = at < 8 ? ErrorCode::kInvalidArgument : ErrorCode::kDataLoss;
        auto verified = open_index(path, {.verify = true});
        ASSERT_FALSE(verified) << "byte " << at;
        EXPECT_EQ(verified.error().code(), expected) << "byte " << at << ": " << verified.error().message();
        auto lazy = open_index(path);
        if (!lazy) {
            EXPECT_EQ(lazy.error().code(), expected) << "byte " << at;
            ++at_open;
            continue;
        }
        const bool in_section = std::any_of(sections.begin(), sections.end(), [&](const storage::Section& s) {
            return at >= s.offset && at < s.offset + s.length;
        });
        EXPECT_TRUE(in_section) << "byte " << at << " outside every section opened";
        auto s = (*lazy)->search(base.view().slice(at % base.rows, 1), {.k = 5});
        ASSERT_FALSE(s) << "byte " << at;
        EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(s.error().message().find("section"), std::string::npos) << s.error().message();
        ++at_first_use;
    }
    EXPECT_EQ(at_first_use, sections[0].length);  // exactly the large section's bytes are deferred
    EXPECT_EQ(at_open + at_first_use, good.size());
}

INSTANTIATE_TEST_SUITE_P(BothKinds, PersistenceTest, ::testing::Values("flat", "hnsw"));

}  // namespace
}  // namespace quiver::index

namespace quiver::index {
namespace {

// Offsets inside an HNSW file (version 1, docs/formats.md): 16-byte container header, then the
// fixed header fields, then (aligned to 64) the level-0 records.
struct HnswLayout {
    static constexpr std::size_t kHeader = 16;
    static constexpr std::size_t kDim = kHeader + 0, kMetric = kHeader + 8, kM = kHeader + 16,
                                 kEfc = kHeader + 24, kSeed = kHeader + 32, kCount = kHeader + 40,
                                 kDeleted = kHeader + 48, kMaxLevel = kHeader + 56, kEntry = kHeader + 64,
                                 kStride = kHeader + 72, kLevel0 = 128;
    std::uint64_t count = 0, stride = 0;
    explicit HnswLayout(const std::string& bytes) {
        std::memcpy(&count, bytes.data() + kCount, 8);
        std::memcpy(&stride, bytes.data() + kStride, 8);
    }
    std::size_t record(std::size_t s) const { return kLevel0 + s * stride; }
    std::size_t labels() const { return kLevel0 + count * stride; }
    std::size_t levels() const { return labels() + count * 8; }
    std::size_t deleted() const { return levels() + count; }
    std::size_t upper_offsets() const { return (deleted() + count + 7) / 8 * 8; }
    std::size_t upper_words() const { return upper_offsets() + count * 8; }
};

using testing::reseal;

template <class T>
void put(std::string& bytes, std::size_t at, T v) {
    std::memcpy(bytes.data() + at, &v, sizeof(T));
}

TEST(HnswPersistence, ResealedMutationsAreRejectedOrSearchable) {
    testing::TempDir dir;
    auto base = testing::random_matrix(200, 8, 71);
    auto queries = testing::random_matrix(8, 8, 72);
    auto idx = *HnswIndex::create(8, Metric::kL2, {.M = 4, .ef_construction = 32, .threads = 1});
    ASSERT_TRUE(idx->add(base, sequential_labels(200)).ok());
    ASSERT_EQ(*idx->remove(std::vector<Label>{Label{3}}), 1u);
    ASSERT_GE(idx->max_level(), 1);  // upper levels exist, so their checks are exercised
    const std::string path = dir.file("h.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    const std::string good = testing::read_bytes(path);
    const HnswLayout lay(good);
    ASSERT_EQ(lay.count, 200u);

    std::size_t rejected = 0, opened = 0, rejected_lazily = 0;
    auto attempt = [&](const std::string& bytes) {
        testing::write_bytes(path, bytes);
        // Opened with verify, the verdict is the same as opening lazily and searching.
        auto v = HnswIndex::open(path, {.verify = true});
        auto r = HnswIndex::open(path);
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().to_string();
            EXPECT_FALSE(v);
            ++rejected;
            return;
        }
        auto s = (*r)->search(queries, {.k = 10, .ef = 40});
        if (!s) {  // a damaged level-0 link is found on first use
            EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss) << s.error().to_string();
            ASSERT_FALSE(v);
            EXPECT_EQ(v.error().message(), s.error().message());
            ++rejected;
            ++rejected_lazily;
            return;
        }
        ASSERT_TRUE(v) << v.error().to_string();
        ++opened;
        // Whatever opened must be searchable, unfiltered and filtered, and mutable.
        (void)(*r)->remove(std::vector<Label>{Label{7}});
        auto t = (*r)->search(queries, {.k = 5, .ef = 200});
        ASSERT_TRUE(t);
    };

    // Every header field with hostile values.
    const std::uint64_t hostile[] = {0, 1, 2, 31, 199, 200, 201, 0xFFFFFFFFull, 0x100000000ull,
                                     0x7FFFFFFFFFFFFFFFull, ~0ull};
    for (std::size_t field : {HnswLayout::kDim, HnswLayout::kMetric, HnswLayout::kM, HnswLayout::kEfc,
                              HnswLayout::kCount, HnswLayout::kDeleted, HnswLayout::kMaxLevel,
                              HnswLayout::kEntry, HnswLayout::kStride}) {
        for (std::uint64_t v : hostile) {
            std::string b = good;
            put<std::uint64_t>(b, field, v);
            reseal(b);
            attempt(b);
        }
    }
    // Entry point moved to a level-0 node (the crafted file that used to crash search).
    for (std::uint64_t s = 0; s < lay.count; ++s) {
        if (static_cast<std::uint8_t>(good[lay.levels() + s]) == 0) {
            std::string b = good;
            put<std::uint64_t>(b, HnswLayout::kEntry, s);
            reseal(b);
            testing::write_bytes(path, b);
            auto r = HnswIndex::open(path);
            ASSERT_FALSE(r);
            EXPECT_NE(r.error().message().find("entry point"), std::string::npos) << r.error().message();
            break;
        }
    }
    // Levels, upper offsets, link counts and links, labels: random hostile words, resealed.
    const std::size_t table_at = good.size() - storage::kFooterBytes - 8 -
                                 testing::sections_of(good).size() * storage::kSectionEntryBytes;
    std::mt19937_64 rng(73);
    for (int it = 0; it < 1500; ++it) {
        std::string b = good;
        const std::size_t s = rng() % lay.count;
        switch (it % 6) {
            case 0: b[lay.levels() + s] = static_cast<char>(rng() % 40); break;
            case 1: put<std::uint64_t>(b, lay.upper_offsets() + s * 8, hostile[rng() % 11] - (rng() % 3)); break;
            case 2: put<std::uint32_t>(b, lay.record(s) + 32, static_cast<std::uint32_t>(rng() % 12)); break;
            case 3: put<std::uint32_t>(b, lay.record(s) + 36 + 4 * (rng() % 8),
                                       static_cast<std::uint32_t>(hostile[rng() % 11] - (rng() % 2))); break;
            case 4: put<std::uint64_t>(b, lay.labels() + s * 8, rng() % 2 ? ~0ull : rng() % 200); break;
            default: {  // a random byte anywhere in the payload before the section table
                const std::size_t at = 16 + rng() % (table_at - 16);
                b[at] = static_cast<char>(rng());
                break;
            }
        }
        reseal(b);
        attempt(b);
    }
    EXPECT_GT(rejected, 500u);
    EXPECT_GT(rejected_lazily, 100u);  // link counts and links in the level-0 records
    EXPECT_GT(opened, 50u);  // harmless changes (a vector value, a valid link) still open
}

TEST(HnswPersistence, RemoveKeepsTheMappingAndRepairFindsCutOffNodes) {
    testing::TempDir dir;
    auto base = testing::clustered_matrix(600, 16, 6, 81);
    auto idx = *HnswIndex::create(16, Metric::kL2, {.M = 8, .ef_construction = 64, .threads = 1});
    ASSERT_TRUE(idx->add(base, sequential_labels(600)).ok());
    EXPECT_EQ(idx->unreachable_count(), 0u);
    const std::string path = dir.file("h.qvr");
    ASSERT_TRUE(idx->save(path).ok());
    std::string bytes = testing::read_bytes(path);
    const HnswLayout lay(bytes);
    std::uint64_t entry = 0;
    std::memcpy(&entry, bytes.data() + HnswLayout::kEntry, 8);

    // Cut off two level-0 nodes: drop every level-0 link to them.
    std::vector<std::uint32_t> victims;
    for (std::uint32_t s = 0; s < lay.count && victims.size() < 2; ++s) {
        if (bytes[lay.levels() + s] == 0 && s != entry) victims.push_back(s);
    }
    ASSERT_EQ(victims.size(), 2u);
    const std::size_t links_at = 16 * 4;  // after the vector
    for (std::size_t s = 0; s < lay.count; ++s) {
        std::uint32_t n = 0;
        std::memcpy(&n, bytes.data() + lay.record(s) + links_at, 4);
        std::vector<std::uint32_t> kept;
        for (std::uint32_t i = 0; i < n; ++i) {
            std::uint32_t t = 0;
            std::memcpy(&t, bytes.data() + lay.record(s) + links_at + 4 + 4 * i, 4);
            if (t != victims[0] && t != victims[1]) kept.push_back(t);
        }
        put<std::uint32_t>(bytes, lay.record(s) + links_at, static_cast<std::uint32_t>(kept.size()));
        for (std::size_t i = 0; i < kept.size(); ++i) put(bytes, lay.record(s) + links_at + 4 + 4 * i, kept[i]);
    }
    reseal(bytes);
    testing::write_bytes(path, bytes);
    auto opened = HnswIndex::open(path);
    ASSERT_TRUE(opened) << opened.error().to_string();
    HnswIndex& h = **opened;
    EXPECT_EQ(h.unreachable_count(), 2u);
    // Removing a label keeps the level-0 array mapped (no copy).
    ASSERT_TRUE(h.is_mapped());
    EXPECT_EQ(*h.remove(std::vector<Label>{Label{victims[0] == 0 ? 1u : 0u}}), 1u);
    EXPECT_TRUE(h.is_mapped());
    // A cut-off node is never found, even as its own query with the widest beam.
    auto before = *h.search(base.view().slice(victims[1], 1), {.k = 10, .ef = 600});
    for (std::size_t j = 0; j < 10; ++j) EXPECT_NE(to_int(before.label(0, j)), victims[1]);
    EXPECT_GE(h.repair_reachability(), 2u);
    EXPECT_FALSE(h.is_mapped());
    EXPECT_EQ(h.unreachable_count(), 0u);
    for (std::uint32_t v : victims) {
        auto r = *h.search(base.view().slice(v, 1), {.k = 1, .ef = 64});
        EXPECT_EQ(to_int(r.label(0, 0)), v);
    }
}

TEST(VectorIndexLabels, ReservedNoLabelIsRejected) {
    auto base = testing::random_matrix(4, 8, 91);
    std::vector<Label> labels = {Label{0}, Label{1}, kNoLabel, Label{3}};
    auto flat = *FlatIndex::create(8, Metric::kL2);
    auto hnsw = *HnswIndex::create(8, Metric::kL2);
    for (VectorIndex* idx : {static_cast<VectorIndex*>(flat.get()), static_cast<VectorIndex*>(hnsw.get())}) {
        Status s = idx->add(base, labels);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(s.error().message().find("reserved"), std::string::npos) << s.error().message();
        EXPECT_EQ(idx->info().size, 0u);  // nothing was added
    }
}

}  // namespace
}  // namespace quiver::index
