// Write-ahead log: checksummed records, torn-tail detection and truncation. See wal.h.
#include "quiver/storage/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "quiver/storage/file_format.h"

namespace quiver::storage {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);
    out.append(b, 4);
}
void put_u64(std::string& out, std::uint64_t v) {
    char b[8];
    std::memcpy(b, &v, 8);
    out.append(b, 8);
}
std::uint32_t get_u32(const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

Status write_all(int fd, const char* data, std::size_t size, const std::string& path) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("writing", path);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return ok_status();
}

std::string parent_dir(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

Status sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error("opening directory", dir);
    const int rc = ::fsync(fd);
    const int saved = errno;
    ::close(fd);
    if (rc != 0) {
        errno = saved;
        return errno_error("fsync of directory", dir);
    }
    return ok_status();
}

Result<WalContents> read_wal(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
    WalContents out;
    out.file_bytes = bytes.size();
    if (bytes.size() < kWalHeaderBytes) {
        // Torn while the header was being created: nothing in it was ever acknowledged.
        out.torn_tail = !bytes.empty();
        out.valid_bytes = 0;
        return out;
    }
    if (get_u32(bytes.data()) != kWalMagic) return data_loss("'" + path + "': not a quiver write-ahead log");
    const std::uint32_t version = get_u32(bytes.data() + 4);
    if (version > kWalVersion) {
        return failed_precondition("'" + path + "': log version " + std::to_string(version) +
                                   ", this build reads up to " + std::to_string(kWalVersion));
    }
    std::memcpy(&out.first_seq, bytes.data() + 8, 8);
    // Length of the intact record at `at`, or 0.
    auto intact = [&](std::size_t at) -> std::size_t {
        if (bytes.size() - at < 8) return 0;
        const std::uint32_t len = get_u32(bytes.data() + at);
        const std::uint32_t crc = get_u32(bytes.data() + at + 4);
        if (len == 0 || len > kWalMaxRecord || len > bytes.size() - at - 8) return 0;
        std::uint32_t actual = crc32(0, bytes.data() + at, 4);
        actual = crc32(actual, bytes.data() + at + 8, len);
        return actual == crc ? len : 0;
    };
    std::size_t pos = kWalHeaderBytes;
    while (const std::size_t len = intact(pos)) {
        out.records.emplace_back(bytes.data() + pos + 8, len);
        pos += 8 + len;
    }
    if (bytes.size() - pos >= 8) {
        const std::uint32_t len = get_u32(bytes.data() + pos);
        if (len > 0 && len <= bytes.size() - pos - 8 && intact(pos + 8 + len) != 0) {
            return data_loss("'" + path + "': damaged record at offset " + std::to_string(pos) +
                             " is followed by intact records (corruption, not a torn tail)");
        }
    }
    out.valid_bytes = pos;
    out.torn_tail = pos != bytes.size();
    return out;
}

Result<WalWriter> WalWriter::create(const std::string& path, std::uint64_t first_seq, WalSync sync) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return errno_error("creating log", path);
    WalWriter w;
    w.fd_ = fd;
    w.path_ = path;
    w.sync_ = sync;
    std::string header;
    put_u32(header, kWalMagic);
    put_u32(header, kWalVersion);
    put_u64(header, first_seq);
    QUIVER_TRY(write_all(fd, header.data(), header.size(), path));
    if (::fdatasync(fd) != 0) return errno_error("fsync", path);
    QUIVER_TRY(sync_directory(parent_dir(path)));
    w.size_ = header.size();
    return w;
}

Result<WalWriter> WalWriter::open_for_append(const std::string& path, std::uint64_t valid_bytes, WalSync sync) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno_error("opening log", path);
    WalWriter w;
    w.fd_ = fd;
    w.path_ = path;
    w.sync_ = sync;
    if (valid_bytes < kWalHeaderBytes) return data_loss("'" + path + "': log header is torn");
    if (::ftruncate(fd, static_cast<off_t>(valid_bytes)) != 0) return errno_error("truncating torn tail of", path);
    if (::fdatasync(fd) != 0) return errno_error("fsync", path);
    if (::lseek(fd, static_cast<off_t>(valid_bytes), SEEK_SET) < 0) return errno_error("seeking", path);
    w.size_ = valid_bytes;
    return w;
}

WalWriter::WalWriter(WalWriter&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), size_(o.size_), sync_(o.sync_) {}

WalWriter& WalWriter::operator=(WalWriter&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        path_ = std::move(o.path_);
        size_ = o.size_;
        sync_ = o.sync_;
    }
    return *this;
}

WalWriter::~WalWriter() {
    if (fd_ >= 0) ::close(fd_);
}

Status WalWriter::append(std::string_view payload) {
    if (fd_ < 0) return failed_precondition("append to a closed log");
    if (payload.empty() || payload.size() > kWalMaxRecord) {
        return invalid_argument("log record of " + std::to_string(payload.size()) + " bytes");
    }
    std::string rec;
    rec.reserve(payload.size() + 8);
    const auto len = static_cast<std::uint32_t>(payload.size());
    put_u32(rec, len);
    std::uint32_t crc = crc32(0, rec.data(), 4);
    crc = crc32(crc, payload.data(), payload.size());
    put_u32(rec, crc);
    rec.append(payload);
    Status st = write_all(fd_, rec.data(), rec.size(), path_);
    if (st && sync_ == WalSync::kEveryAppend && ::fdatasync(fd_) != 0) st = errno_error("fsync", path_);
    if (!st) {
        // Never leave a partial record that a later record would follow.
        if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
            (void)::lseek(fd_, static_cast<off_t>(size_), SEEK_SET);
        }
        return st;
    }
    size_ += rec.size();
    return ok_status();
}

Status WalWriter::sync() {
    if (fd_ < 0) return ok_status();
    if (::fdatasync(fd_) != 0) return errno_error("fsync", path_);
    return ok_status();
}

}  // namespace quiver::storage
