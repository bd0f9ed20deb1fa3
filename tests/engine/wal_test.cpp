#include "quiver/storage/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "testing/testing.h"

namespace quiver::storage {
namespace {

TEST(Wal, AppendsAndReadsBack) {
    testing::TempDir dir;
    const std::string path = dir.file("a.log");
    {
        auto w = WalWriter::create(path, 7, WalSync::kEveryAppend);
        ASSERT_TRUE(w) << w.error().to_string();
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(w->append("record " + std::to_string(i)));
    }
    auto c = read_wal(path);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->first_seq, 7u);
    ASSERT_EQ(c->records.size(), 10u);
    EXPECT_EQ(c->records[3], "record 3");
    EXPECT_FALSE(c->torn_tail);
}

TEST(Wal, DetectsAndTruncatesTornTails) {
    testing::TempDir dir;
    const std::string path = dir.file("a.log");
    {
        auto w = WalWriter::create(path, 1, WalSync::kNone);
        ASSERT_TRUE(w);
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(w->append(std::string(100, static_cast<char>('a' + i))));
    }
    const std::string full = testing::read_bytes(path);
    // Every possible cut inside the last record drops exactly that record.
    for (std::size_t cut = full.size() - 107; cut < full.size(); ++cut) {
        testing::write_bytes(path, full.substr(0, cut));
        auto c = read_wal(path);
        ASSERT_TRUE(c);
        EXPECT_EQ(c->records.size(), 4u) << cut;
        EXPECT_TRUE(c->torn_tail);
    }
    // Zeros after the valid prefix (a file extended but not written) and a flipped payload byte.
    testing::write_bytes(path, full + std::string(64, '\0'));
    EXPECT_EQ(read_wal(path)->records.size(), 5u);
    std::string flipped = full;
    flipped[full.size() - 5] ^= 0x20;
    testing::write_bytes(path, flipped);
    auto c = read_wal(path);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->records.size(), 4u);
    // Reopening truncates the torn record; new appends follow the valid prefix and read back.
    {
        auto w = WalWriter::open_for_append(path, c->valid_bytes, WalSync::kEveryAppend);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->append("after"));
    }
    auto again = read_wal(path);
    ASSERT_TRUE(again);
    ASSERT_EQ(again->records.size(), 5u);
    EXPECT_EQ(again->records[4], "after");
    EXPECT_FALSE(again->torn_tail);
}

TEST(Wal, DamageBeforeIntactRecordsIsDataLossNotATornTail) {
    testing::TempDir dir;
    const std::string path = dir.file("a.log");
    {
        auto w = WalWriter::create(path, 1, WalSync::kNone);
        ASSERT_TRUE(w);
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(w->append(std::string(50, static_cast<char>('a' + i))));
    }
    std::string bytes = testing::read_bytes(path);
    bytes[16 + 58 + 20] ^= 0x01;  // inside the second record's payload
    testing::write_bytes(path, bytes);
    auto c = read_wal(path);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code(), ErrorCode::kDataLoss);
}

TEST(Wal, RejectsForeignFilesAndHandlesTornHeader) {
    testing::TempDir dir;
    testing::write_bytes(dir.file("x.log"), std::string(32, 'x'));
    auto bad = read_wal(dir.file("x.log"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
    testing::write_bytes(dir.file("y.log"), "QWA");
    auto torn = read_wal(dir.file("y.log"));
    ASSERT_TRUE(torn);
    EXPECT_TRUE(torn->records.empty());
    EXPECT_TRUE(torn->torn_tail);
}

}  // namespace
}  // namespace quiver::storage
