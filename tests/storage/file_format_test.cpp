#include "quiver/storage/file_format.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <numeric>
#include <vector>

#include "quiver/storage/fs.h"

#include "testing/testing.h"

namespace quiver::storage {
namespace {

constexpr std::uint32_t kKind = fourcc("TEST");

Status write_sample(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(FileWriter w, FileWriter::create(path, kKind, 2));
    QUIVER_TRY(w.write_pod<std::uint32_t>(42));
    QUIVER_TRY(w.write_string("hello"));
    QUIVER_TRY(w.align(64));
    std::vector<float> v = {1.f, 2.f, 3.f};
    QUIVER_TRY(w.write_span(std::span<const float>(v)));
    return w.finish();
}

TEST(FileFormat, RoundTrip) {
    testing::TempDir dir;
    const auto path = dir.file("a.qvr");
    ASSERT_TRUE(write_sample(path).ok());
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file);
    std::uint32_t version = 0;
    auto r = open_payload(*file, kKind, 2, &version);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(version, 2u);
    EXPECT_EQ(*r->read_pod<std::uint32_t>(), 42u);
    EXPECT_EQ(*r->read_string(), "hello");
    ASSERT_TRUE(r->align(64).ok());
    auto span = r->read_span<float>(3);
    ASSERT_TRUE(span);
    EXPECT_EQ((*span)[2], 3.f);
    EXPECT_FALSE(r->read_pod<std::uint32_t>());  // past the end
}

TEST(FileFormat, DetectsCorruptionTruncationAndWrongKind) {
    testing::TempDir dir;
    const auto path = dir.file("a.qvr");
    ASSERT_TRUE(write_sample(path).ok());
    const std::string good = testing::read_bytes(path);

    // Flip one payload byte: checksum error naming the file.
    std::string bad = good;
    bad[20] = static_cast<char>(bad[20] ^ 0x40);
    testing::write_bytes(path, bad);
    {
        auto f = MappedFile::open(path);
        auto r = open_payload(*f, kKind, 2);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);
        EXPECT_NE(r.error().message().find("checksum"), std::string::npos);
        EXPECT_NE(r.error().message().find(path), std::string::npos);
    }
    // Truncated.
    for (std::size_t keep : {good.size() - 1, good.size() / 2, std::size_t{10}, std::size_t{0}}) {
        testing::write_bytes(path, good.substr(0, keep));
        auto f = MappedFile::open(path);
        ASSERT_TRUE(f);
        auto r = open_payload(*f, kKind, 2);
        ASSERT_FALSE(r) << keep;
        EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().to_string();
    }
    // Newer version than we read.
    testing::write_bytes(path, good);
    {
        auto f = MappedFile::open(path);
        auto r = open_payload(*f, kKind, 1);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
    }
    // Wrong kind / not ours.
    {
        auto f = MappedFile::open(path);
        auto r = open_payload(*f, fourcc("HNSW"), 2);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("'TEST'"), std::string::npos);
    }
    testing::write_bytes(path, std::string(100, 'x'));
    {
        auto f = MappedFile::open(path);
        auto r = open_payload(*f, kKind, 2);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("not a quiver file"), std::string::npos);
    }
}

TEST(FileFormat, MissingFileIsNotFound) {
    auto f = MappedFile::open("/nonexistent/dir/x.qvr");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
}

TEST(FileFormat, UnfinishedWriterLeavesNothing) {
    testing::TempDir dir;
    const auto path = dir.file("b.qvr");
    {
        auto w = FileWriter::create(path, kKind, 1);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->write_pod<int>(1).ok());
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}


// Every byte reaches the file in pieces of at most kWritebackBytes, each handed to writeback right
// after it is written and only once the piece before it is on the disk (at most two in flight), so
// finish()'s fsync never has a whole large file to flush (file_format.h).
TEST(FileFormat, WritesReachWritebackInPiecesOfAMebibyte) {
    struct Call {
        off_t wait_from, offset, size;
    };
    class RecordingFs : public FileSystem {
    public:
        std::vector<std::size_t> writes;
        std::vector<Call> writebacks;
        ssize_t write(int fd, const void* bytes, std::size_t size, const std::string& path) override {
            writes.push_back(size);
            return FileSystem::write(fd, bytes, size, path);
        }
        int writeback(int fd, off_t wait_from, off_t offset, off_t size, const std::string& path) override {
            writebacks.push_back({wait_from, offset, size});
            return FileSystem::writeback(fd, wait_from, offset, size, path);
        }
    } fs;
    testing::TempDir dir;
    const auto path = dir.file("big.qvr");
    constexpr std::size_t kMiB = FileWriter::kWritebackBytes;
    std::vector<std::uint8_t> big(3 * kMiB + kMiB / 2), chunk(100000);
    std::iota(big.begin(), big.end(), std::uint8_t{7});
    std::iota(chunk.begin(), chunk.end(), std::uint8_t{1});
    {
        ScopedFileSystem use(fs);
        auto w = FileWriter::create(path, kKind, 1);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->write_pod<std::uint32_t>(5).ok());
        ASSERT_TRUE(w->write_span(std::span<const std::uint8_t>(big)).ok());  // one call of 3.5 MiB
        for (int i = 0; i < 25; ++i) ASSERT_TRUE(w->write_span(std::span<const std::uint8_t>(chunk)).ok());
        ASSERT_TRUE(w->finish().ok());
    }
    const auto file_size = static_cast<off_t>(std::filesystem::file_size(path));
    ASSERT_GT(file_size, static_cast<off_t>(5 * kMiB));
    for (const std::size_t n : fs.writes) EXPECT_LE(n, kMiB);
    ASSERT_GE(fs.writebacks.size(), 7u);
    off_t next = 0;
    for (std::size_t i = 0; i < fs.writebacks.size(); ++i) {
        const Call& c = fs.writebacks[i];
        EXPECT_EQ(c.offset, next) << "piece " << i;  // contiguous, in order
        EXPECT_GT(c.size, 0);
        EXPECT_LE(c.size, static_cast<off_t>(kMiB));
        EXPECT_EQ(c.wait_from, i == 0 ? 0 : fs.writebacks[i - 1].offset) << "piece " << i;  // the one before
        next = c.offset + c.size;
    }
    EXPECT_EQ(next, file_size);  // every byte, the footer included
    auto file = MappedFile::open(path);
    ASSERT_TRUE(file);
    auto r = open_payload(*file, kKind, 1);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(*r->read_pod<std::uint32_t>(), 5u);
    auto back = r->read_span<std::uint8_t>(big.size());
    ASSERT_TRUE(back);
    EXPECT_TRUE(std::equal(back->begin(), back->end(), big.begin()));
    for (int i = 0; i < 25; ++i) {
        auto c = r->read_span<std::uint8_t>(chunk.size());
        ASSERT_TRUE(c);
        ASSERT_TRUE(std::equal(c->begin(), c->end(), chunk.begin())) << i;
    }
}

// A writeback error fails the write that met it (Linux reports it once per open file, so finish()'s
// fsync would not); ENOSPC from delayed allocation is a full disk. A file system without the call
// only loses the early writeback.
TEST(FileFormat, WritebackErrorsFailTheWrite) {
    class FailingWriteback : public FileSystem {
    public:
        int error = 0;
        int writeback(int, off_t, off_t, off_t, const std::string&) override {
            errno = error;
            return error == 0 ? 0 : -1;
        }
    } fs;
    testing::TempDir dir;
    std::vector<std::uint8_t> big(2 * FileWriter::kWritebackBytes, 3);
    for (const int error : {EIO, ENOSPC, EINVAL}) {
        fs.error = error;
        std::string name = "w";
        name += std::to_string(error);
        const auto path = dir.file(name);
        ScopedFileSystem use(fs);
        auto w = FileWriter::create(path, kKind, 1);
        ASSERT_TRUE(w);
        const Status st = w->write_span(std::span<const std::uint8_t>(big));
        if (error == EINVAL) {
            EXPECT_TRUE(st.ok()) << st.error().to_string();
            EXPECT_TRUE(w->finish().ok());
            EXPECT_TRUE(std::filesystem::exists(path));
            continue;
        }
        ASSERT_FALSE(st.ok()) << error;
        EXPECT_EQ(st.error().code(), error == ENOSPC ? ErrorCode::kResourceExhausted : ErrorCode::kIoError);
        EXPECT_NE(st.error().message().find(path + ".tmp"), std::string::npos) << st.error().to_string();
    }
}

}  // namespace
}  // namespace quiver::storage
