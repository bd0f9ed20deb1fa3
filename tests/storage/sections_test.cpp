// Sectioned containers: per-section CRCs left out of the footer's, checked on demand (DeferredCheck).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "index/reseal.h"
#include "quiver/storage/file_format.h"
#include "testing/testing.h"

namespace quiver::storage {
namespace {

constexpr std::uint32_t kKind = fourcc("TSEC");

// header fields | section "BIG1" (4 KiB) | u32 between | section "BIG2" (1 KiB) | u32 tail
Status write_sectioned(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(FileWriter w, FileWriter::create(path, kKind, 1, kFlagSections));
    QUIVER_TRY(w.write_pod<std::uint64_t>(7));
    QUIVER_TRY(w.align(64));
    QUIVER_TRY(w.begin_section(fourcc("BIG1")));
    std::vector<float> a(1024);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
    QUIVER_TRY(w.write_span(std::span<const float>(a)));
    QUIVER_TRY(w.end_section());
    QUIVER_TRY(w.write_pod<std::uint32_t>(0xABCD));
    QUIVER_TRY(w.begin_section(fourcc("BIG2")));
    std::vector<std::uint8_t> b(1024, 0x5A);
    QUIVER_TRY(w.write_span(std::span<const std::uint8_t>(b)));
    QUIVER_TRY(w.end_section());
    QUIVER_TRY(w.write_pod<std::uint32_t>(0x1234));
    return w.finish();
}

TEST(Sections, RoundTripListsSectionsAndReadsAroundThem) {
    testing::TempDir dir;
    const auto path = dir.file("s.qvr");
    ASSERT_TRUE(write_sectioned(path).ok());
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file);
    std::vector<Section> sections;
    auto r = open_payload(*file, kKind, 1, nullptr, &sections);
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_EQ(sections.size(), 2u);
    EXPECT_EQ(sections[0].name, fourcc("BIG1"));
    EXPECT_EQ(sections[0].offset, 64u);
    EXPECT_EQ(sections[0].length, 4096u);
    EXPECT_EQ(sections[1].name, fourcc("BIG2"));
    EXPECT_EQ(sections[1].offset, 64u + 4096u + 4u);
    EXPECT_EQ(sections[1].length, 1024u);
    for (const auto& s : sections) EXPECT_TRUE(verify_section(*file, s).ok());
    EXPECT_EQ(*r->read_pod<std::uint64_t>(), 7u);
    ASSERT_TRUE(r->align(64).ok());
    EXPECT_EQ((*r->read_span<float>(1024))[1023], 1023.f);
    EXPECT_EQ(*r->read_pod<std::uint32_t>(), 0xABCDu);
    ASSERT_TRUE(r->skip(1024).ok());
    EXPECT_EQ(*r->read_pod<std::uint32_t>(), 0x1234u);
    EXPECT_EQ(r->remaining(), 0u);  // the reader ends before the section table
    // The table: 2 entries + count + marker before the footer.
    EXPECT_EQ(file->bytes().size(), 64u + 4096u + 4u + 1024u + 4u + 2 * kSectionEntryBytes + 8 + kFooterBytes);
}

TEST(Sections, EveryByteFlipIsFoundAtOpenOrBySectionCheck) {
    testing::TempDir dir;
    const auto path = dir.file("s.qvr");
    ASSERT_TRUE(write_sectioned(path).ok());
    const std::string good = testing::read_bytes(path);
    std::size_t at_open = 0, in_sections = 0;
    for (std::size_t at = 0; at < good.size(); ++at) {
        const auto mask = static_cast<unsigned char>(1u << (at % 8));
        testing::flip_byte(path, at, mask);
        struct Restore {
            const std::string& p;
            std::size_t at;
            unsigned char mask;
            ~Restore() { testing::flip_byte(p, at, mask); }
        } restore{path, at, mask};
        auto file = MappedFile::open(path);
        ASSERT_TRUE(file);
        // Without a section list, open_payload verifies every section itself.
        auto eager = open_payload(*file, kKind, 1);
        ASSERT_FALSE(eager) << at;
        EXPECT_EQ(eager.error().code(), ErrorCode::kDataLoss) << at << ": " << eager.error().message();
        std::vector<Section> sections;
        auto lazy = open_payload(*file, kKind, 1, nullptr, &sections);
        if (!lazy) {
            EXPECT_EQ(lazy.error().code(), ErrorCode::kDataLoss) << at;
            ++at_open;
            continue;
        }
        std::size_t failed = 0;
        for (const auto& s : sections) {
            Status st = verify_section(*file, s);
            // The chunked check that releases pages as it goes (1,000-byte chunks: several per section,
            // not page multiples) gives the same answer and message.
            Status chunked = verify_section_released(*file, s, 1000);
            EXPECT_EQ(chunked.ok(), st.ok()) << at;
            if (!st.ok() && !chunked.ok()) {
                EXPECT_EQ(chunked.error().message(), st.error().message());
            }
            if (st.ok()) continue;
            ++failed;
            EXPECT_EQ(st.error().code(), ErrorCode::kDataLoss);
            EXPECT_TRUE(at >= s.offset && at < s.offset + s.length) << at;
            EXPECT_NE(st.error().message().find("section '" + fourcc_string(s.name) + "'"), std::string::npos)
                << st.error().message();
            EXPECT_NE(st.error().message().find(path), std::string::npos);
        }
        EXPECT_EQ(failed, 1u) << at;
        ++in_sections;
    }
    EXPECT_EQ(in_sections, 4096u + 1024u);
    EXPECT_EQ(at_open + in_sections, good.size());
}

TEST(Sections, TruncationsAndHostileTablesAreDataLoss) {
    testing::TempDir dir;
    const auto path = dir.file("s.qvr");
    ASSERT_TRUE(write_sectioned(path).ok());
    const std::string good = testing::read_bytes(path);
    for (std::size_t keep = 0; keep < good.size(); keep += 13) {
        testing::write_bytes(path, good.substr(0, keep));
        auto file = MappedFile::open(path);
        std::vector<Section> sections;
        auto r = open_payload(*file, kKind, 1, nullptr, &sections);
        ASSERT_FALSE(r) << keep;
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << keep;
    }
    // Re-sealed hostile tables (footer CRC recomputed): overlapping, out of range, absurd counts.
    const std::size_t end = good.size() - kFooterBytes;
    const std::size_t table = end - 8 - 2 * kSectionEntryBytes;
    // The footer CRC as a reader computes it from the (hostile) table, when the table's ranges can be read.
    auto reseal = [&](std::string& b) {
        std::uint32_t n = 0;
        std::memcpy(&n, b.data() + end - 8, 4);
        if (n != 2) return;
        std::uint32_t crc = 0;
        std::uint64_t at = 0;
        for (std::size_t i = 0; i < 2; ++i) {
            std::uint64_t off = 0, len = 0;
            std::memcpy(&off, b.data() + table + i * kSectionEntryBytes + 8, 8);
            std::memcpy(&len, b.data() + table + i * kSectionEntryBytes + 16, 8);
            if (off < at || off > table || len > table - off) return;
            crc = crc32(crc, b.data() + at, off - at);
            at = off + len;
        }
        crc = crc32(crc, b.data() + at, end - at);
        std::memcpy(b.data() + end + 8, &crc, 4);
    };
    const std::uint64_t hostile[] = {0, 15, 63, 4160, 0xFFFFFFFFFFFFFFFFull, good.size(), table, table + 1};
    for (int field = 0; field < 4; ++field) {
        for (std::uint64_t v : hostile) {
            std::string b = good;
            const std::size_t at = table + kSectionEntryBytes + (field < 2 ? 8 : 16);  // entry 1 offset / length
            std::memcpy(b.data() + at, &v, 8);
            if (field % 2 == 1) std::memcpy(b.data() + end - 8, &v, 4);  // and the count
            reseal(b);
            testing::write_bytes(path, b);
            auto file = MappedFile::open(path);
            std::vector<Section> sections;
            auto r = open_payload(*file, kKind, 1, nullptr, &sections);
            if (r) {  // accepted only when the table still describes disjoint ranges inside the payload
                std::uint64_t prev = kHeaderBytes;
                for (const auto& sec : sections) {
                    EXPECT_GE(sec.offset, prev);
                    EXPECT_LE(sec.offset + sec.length, table);
                    prev = sec.offset + sec.length;
                    (void)verify_section(*file, sec);  // must not read outside the file
                }
                // A moved or resized section no longer matches its CRC.
                EXPECT_FALSE(verify_section(*file, sections[1]).ok());
            } else {
                EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().message();
            }
        }
    }
}

TEST(Sections, WriterRejectsMisuse) {
    testing::TempDir dir;
    auto plain = FileWriter::create(dir.file("p.qvr"), kKind, 1);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->begin_section(fourcc("NOPE")).error().code(), ErrorCode::kFailedPrecondition);
    auto w = FileWriter::create(dir.file("w.qvr"), kKind, 1, kFlagSections);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->end_section().error().code(), ErrorCode::kFailedPrecondition);
    ASSERT_TRUE(w->begin_section(fourcc("ONE1")).ok());
    EXPECT_EQ(w->begin_section(fourcc("TWO2")).error().code(), ErrorCode::kFailedPrecondition);  // no nesting
    EXPECT_EQ(w->finish().error().code(), ErrorCode::kFailedPrecondition);                       // not ended
    EXPECT_EQ(FileWriter::create(dir.file("f.qvr"), kKind, 1, 6).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Sections, UnsectionedFilesStillOpenAndUnknownFlagsAreDamage) {
    testing::TempDir dir;
    const auto path = dir.file("old.qvr");
    {
        auto w = FileWriter::create(path, kKind, 1);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->write_pod<std::uint64_t>(9).ok());
        ASSERT_TRUE(w->finish().ok());
    }
    auto file = MappedFile::open(path);
    std::vector<Section> sections = {Section{}};
    auto r = open_payload(*file, kKind, 1, nullptr, &sections);
    ASSERT_TRUE(r);
    EXPECT_TRUE(sections.empty());
    EXPECT_EQ(*r->read_pod<std::uint64_t>(), 9u);
    // A flags word with an unknown bit, re-sealed: damage, not a silently ignored feature.
    std::string b = testing::read_bytes(path);
    const std::uint32_t flags = 4;
    std::memcpy(b.data() + 12, &flags, 4);
    const std::uint32_t crc = crc32(0, b.data(), b.size() - kFooterBytes);
    std::memcpy(b.data() + b.size() - kFooterBytes + 8, &crc, 4);
    testing::write_bytes(path, b);
    auto f2 = MappedFile::open(path);
    auto bad = open_payload(*f2, kKind, 1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    EXPECT_NE(bad.error().message().find("flags"), std::string::npos) << bad.error().message();
}

TEST(DeferredCheck, RunsOnceFromManyThreadsAndKeepsTheOutcome) {
    std::atomic<int> calls{0};
    DeferredCheck failing([&]() -> Status {
        calls.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return data_loss("section 'VECS' is corrupt");
    });
    EXPECT_FALSE(failing.done());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            Status s = failing.run();
            if (!s.ok() && s.error().code() == ErrorCode::kDataLoss) failures.fetch_add(1);
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(failures.load(), 8);
    EXPECT_TRUE(failing.done());
    EXPECT_EQ(failing.run().error().message(), "section 'VECS' is corrupt");
    DeferredCheck nothing;
    EXPECT_TRUE(nothing.run().ok());
}

}  // namespace
}  // namespace quiver::storage
