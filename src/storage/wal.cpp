// Write-ahead log: checksummed, sequence-numbered records; true-tail detection; poisoning. See
// wal.h.
#include "quiver/storage/wal.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "quiver/storage/file_format.h"

namespace quiver::storage {
namespace {

constexpr std::size_t kV1HeaderBytes = 16;

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
std::uint64_t get_u64(const char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// End of `bytes` with trailing zero bytes removed (never below `floor`).
std::size_t nonzero_end(std::string_view bytes, std::size_t floor) {
    std::size_t end = bytes.size();
    while (end > floor && bytes[end - 1] == '\0') --end;
    return end;
}

// True when the first `n` bytes at `p` equal the first `n` bytes of the little-endian `magic`.
bool magic_prefix(const char* p, std::size_t n, std::uint32_t magic) {
    char m[4];
    std::memcpy(m, &magic, 4);
    return std::memcmp(p, m, n < 4 ? n : 4) == 0;
}

// Version 2 framing over a whole file image.
struct V2 {
    std::string_view bytes;

    // Length of the payload of the intact record at `at`, or nullopt.
    std::optional<std::uint32_t> intact(std::size_t at) const {
        if (at > bytes.size() || bytes.size() - at < kWalRecordOverhead) return std::nullopt;
        const char* p = bytes.data() + at;
        if (get_u32(p) != kWalRecordMagic || crc32(0, p, 16) != get_u32(p + 16))
            return std::nullopt;
        const std::uint32_t len = get_u32(p + 4);
        if (len == 0 || len > kWalMaxRecord || len > bytes.size() - at - kWalRecordOverhead)
            return std::nullopt;
        if (crc32(0, p + kWalRecordHeaderBytes, len) != get_u32(p + 20)) return std::nullopt;
        if (get_u32(p + kWalRecordHeaderBytes + len) != kWalEndMarker) return std::nullopt;
        return len;
    }
    bool header_ok(std::size_t at) const {
        if (bytes.size() - at < kWalRecordHeaderBytes) return false;
        const char* p = bytes.data() + at;
        return get_u32(p) == kWalRecordMagic && crc32(0, p, 16) == get_u32(p + 16);
    }
    // The first offset > `from` holding an intact record, or nullopt.
    std::optional<std::size_t> next_intact(std::size_t from) const {
        char m[4];
        std::memcpy(m, &kWalRecordMagic, 4);
        const std::string_view needle(m, 4);
        for (std::size_t q = bytes.find(needle, from + 1); q != std::string_view::npos;
             q = bytes.find(needle, q + 1)) {
            if (intact(q)) return q;
        }
        return std::nullopt;
    }
};

// The v1 reader (logs written before version 2): length + CRC records, no sequence numbers.
Result<WalContents> read_v1(const std::string& path, const std::string& bytes, WalContents out) {
    auto intact = [&](std::size_t at) -> std::size_t {
        if (bytes.size() - at < 8) return 0;
        const std::uint32_t len = get_u32(bytes.data() + at);
        const std::uint32_t crc = get_u32(bytes.data() + at + 4);
        if (len == 0 || len > kWalMaxRecord || len > bytes.size() - at - 8) return 0;
        std::uint32_t actual = crc32(0, bytes.data() + at, 4);
        actual = crc32(actual, bytes.data() + at + 8, len);
        return actual == crc ? len : 0;
    };
    std::size_t pos = kV1HeaderBytes;
    std::uint64_t seq = out.first_seq;
    while (const std::size_t len = intact(pos)) {
        out.records.push_back({seq++, pos, std::string(bytes.data() + pos + 8, len)});
        pos += 8 + len;
    }
    // A damaged record followed anywhere by an intact one is corruption.
    for (std::size_t q = pos + 1; pos < bytes.size() && q + 8 <= bytes.size(); ++q) {
        if (intact(q) != 0) {
            return data_loss(
                fmt::format("'{}': damaged record at offset {} is followed by an intact record at "
                            "offset {} (corruption, not a torn tail)",
                            path, pos, q));
        }
    }
    out.valid_bytes = pos;
    out.torn_tail = pos != bytes.size();
    out.tail_records = nonzero_end(bytes, pos) > pos ? 1 : 0;
    return out;
}

}  // namespace

Result<WalContents> read_wal(const std::string& path) {
    QUIVER_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
    WalContents out;
    out.file_bytes = bytes.size();
    const std::size_t nz = nonzero_end(bytes, 0);
    auto torn_header = [&]() -> Result<WalContents> {
        out.torn_header = true;
        out.torn_tail = !bytes.empty();
        out.valid_bytes = 0;
        return out;
    };
    // A header cut short at creation: a prefix of the magic, then perhaps zeros.
    if (nz < 4) {
        if (magic_prefix(bytes.data(), nz, kWalMagic)) return torn_header();
        return data_loss(fmt::format("'{}': not a quiver write-ahead log (offset 0)", path));
    }
    if (get_u32(bytes.data()) != kWalMagic) {
        return data_loss(fmt::format(
            "'{}': not a quiver write-ahead log, or its header is damaged (offset 0)", path));
    }
    if (nz < 8) return torn_header();
    const std::uint32_t version = get_u32(bytes.data() + 4);
    if (version == 1) {
        if (bytes.size() < kV1HeaderBytes) return torn_header();
        out.version = 1;
        out.first_seq = get_u64(bytes.data() + 8);
        return read_v1(path, bytes, std::move(out));
    }
    if (bytes.size() < kWalHeaderBytes) return torn_header();
    if (crc32(0, bytes.data(), 16) != get_u32(bytes.data() + 16) ||
        get_u32(bytes.data() + 20) != 0) {
        if (nz < kWalHeaderBytes) return torn_header();
        return data_loss(fmt::format("'{}': the log header is damaged (offset 0)", path));
    }
    if (version != kWalVersion) {
        if (version == 0) return data_loss(fmt::format("'{}': log version 0 (offset 4)", path));
        return failed_precondition(fmt::format("'{}': log version {}, this build reads up to {}",
                                               path, version, kWalVersion));
    }
    out.version = version;
    out.first_seq = get_u64(bytes.data() + 8);
    const V2 v2{bytes};
    std::size_t pos = kWalHeaderBytes;
    std::uint64_t expected = out.first_seq;
    while (const auto len = v2.intact(pos)) {
        const std::uint64_t seq = get_u64(bytes.data() + pos + 8);
        if (seq != expected) {
            return data_loss(
                fmt::format("'{}': record at offset {} carries sequence number {}, expected {} "
                            "(records are missing or out of order)",
                            path, pos, seq, expected));
        }
        out.records.push_back(
            {seq, pos, std::string(bytes.data() + pos + kWalRecordHeaderBytes, *len)});
        pos += kWalRecordOverhead + *len;
        ++expected;
    }
    out.valid_bytes = pos;
    if (pos == bytes.size()) return out;
    // Damage at `pos`. It is a true tail only if nothing intact follows and the bytes are the
    // prefix of one record, possibly followed by zeros.
    if (const auto q = v2.next_intact(pos)) {
        return data_loss(fmt::format(
            "'{}': damaged record at offset {} is followed by an intact record at offset "
            "{} (corruption, not a torn tail)",
            path, pos, *q));
    }
    const std::size_t end = nonzero_end(bytes, pos);
    out.torn_tail = true;
    if (end == pos) return out;  // only zeros: blocks allocated but never written
    const std::size_t prefix = end - pos;
    if (prefix < kWalRecordHeaderBytes) {
        if (!magic_prefix(bytes.data() + pos, prefix, kWalRecordMagic)) {
            return data_loss(fmt::format("'{}': damaged record header at offset {}", path, pos));
        }
    } else {
        if (!v2.header_ok(pos)) {
            return data_loss(
                fmt::format("'{}': damaged record header (magic, length or sequence field) at "
                            "offset {}",
                            path, pos));
        }
        const std::uint32_t len = get_u32(bytes.data() + pos + 4);
        const std::uint64_t seq = get_u64(bytes.data() + pos + 8);
        if (len == 0 || len > kWalMaxRecord || seq != expected) {
            return data_loss(
                fmt::format("'{}': implausible record header at offset {}", path, pos));
        }
        if (kWalRecordOverhead + std::uint64_t{len} <= prefix) {
            return data_loss(fmt::format(
                "'{}': the record at offset {} is complete but fails its checksum", path, pos));
        }
    }
    out.tail_records = 1;
    return out;
}

Result<WalSalvage> salvage_wal(const std::string& path) {
    auto file = read_file(path);
    if (!file) return std::move(file).error();
    const std::string& bytes = *file;
    WalSalvage out;
    const std::string_view view(bytes);
    if (view.size() >= kV1HeaderBytes && get_u32(view.data()) == kWalMagic &&
        get_u32(view.data() + 4) == 1) {
        // Version 1: only the intact prefix can be located.
        WalContents v1;
        v1.version = 1;
        v1.first_seq = get_u64(view.data() + 8);
        auto c = read_v1(path, bytes, std::move(v1));
        if (c) {
            out.first_seq = c->first_seq;
            out.records = std::move(c->records);
            if (c->valid_bytes < bytes.size())
                out.skipped.emplace_back(c->valid_bytes, bytes.size());
            return out;
        }
        out.skipped.emplace_back(kV1HeaderBytes, bytes.size());
        return out;
    }
    std::size_t pos = std::min(bytes.size(), kWalHeaderBytes);
    if (bytes.size() >= kWalHeaderBytes && get_u32(bytes.data()) == kWalMagic &&
        crc32(0, bytes.data(), 16) == get_u32(bytes.data() + 16)) {
        out.first_seq = get_u64(bytes.data() + 8);
    } else if (pos > 0) {
        out.skipped.emplace_back(0, pos);
    }
    const V2 v2{bytes};
    while (pos < bytes.size()) {
        if (const auto len = v2.intact(pos)) {
            out.records.push_back({get_u64(bytes.data() + pos + 8), pos,
                                   std::string(bytes.data() + pos + kWalRecordHeaderBytes, *len)});
            pos += kWalRecordOverhead + *len;
            continue;
        }
        const auto q = v2.next_intact(pos);
        const std::size_t stop = q ? *q : bytes.size();
        out.skipped.emplace_back(pos, stop);
        pos = stop;
    }
    return out;
}

Result<WalWriter> WalWriter::create(const std::string& path, std::uint64_t first_seq,
                                    WalSync sync) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return file_error("creating log", path);
    WalWriter w;
    w.fd_ = fd;
    w.path_ = path;
    w.sync_ = sync;
    w.next_seq_ = first_seq;
    std::string header;
    put_u32(header, kWalMagic);
    put_u32(header, kWalVersion);
    put_u64(header, first_seq);
    put_u32(header, crc32(0, header.data(), header.size()));
    put_u32(header, 0);
    Status st = write_all(fd, header.data(), header.size(), path);
    if (st) st = datasync_file(fd, path);
    if (st) st = sync_directory(parent_directory(path));
    if (!st) {
        ::close(std::exchange(w.fd_, -1));
        ::unlink(path.c_str());  // never a half-made log beside the live one
        return st.error();
    }
    w.size_ = header.size();
    return w;
}

Status truncate_wal(const std::string& path, std::uint64_t valid_bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return file_error("opening log", path);
    Status st = truncate_file(fd, valid_bytes, path);
    if (st) st = datasync_file(fd, path);
    ::close(fd);
    return st;
}

WalWriter::WalWriter(WalWriter&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      path_(std::move(o.path_)),
      size_(o.size_),
      next_seq_(o.next_seq_),
      sync_(o.sync_),
      poison_(std::move(o.poison_)),
      clean_end_(o.clean_end_) {}

WalWriter& WalWriter::operator=(WalWriter&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
        path_ = std::move(o.path_);
        size_ = o.size_;
        next_seq_ = o.next_seq_;
        sync_ = o.sync_;
        poison_ = std::move(o.poison_);
        clean_end_ = o.clean_end_;
    }
    return *this;
}

WalWriter::~WalWriter() {
    if (fd_ >= 0) ::close(fd_);
}

Status WalWriter::poison(Error e) {
    poison_ = Error(e.code(), fmt::format("write-ahead log '{}' is unusable after an I/O error: {}",
                                          path_, e.message()));
    return e;
}

Status WalWriter::append(std::string_view payload) { return append_many(std::span<const std::string_view>(&payload, 1)); }

Status WalWriter::append_many(std::span<const std::string_view> payloads) {
    if (poison_) return *poison_;
    if (fd_ < 0) return failed_precondition("append to a closed log");
    if (payloads.empty()) return ok_status();
    std::size_t total = 0;
    for (const std::string_view payload : payloads) {
        if (payload.empty() || payload.size() > kWalMaxRecord) {
            return invalid_argument("log record of " + std::to_string(payload.size()) + " bytes");
        }
        total += payload.size() + kWalRecordOverhead;
    }
    // All records framed into one buffer and written with one write: a group costs one system call.
    std::string rec;
    rec.reserve(total);
    std::uint64_t seq = next_seq_;
    for (const std::string_view payload : payloads) {
        const std::size_t at = rec.size();
        put_u32(rec, kWalRecordMagic);
        put_u32(rec, static_cast<std::uint32_t>(payload.size()));
        put_u64(rec, seq++);
        put_u32(rec, crc32(0, rec.data() + at, 16));
        put_u32(rec, crc32(0, payload.data(), payload.size()));
        rec.append(payload);
        put_u32(rec, kWalEndMarker);
    }
    // Cuts the file back to its last complete record (and makes that durable).
    auto cut_back = [&]() -> Status {
        QUIVER_TRY(truncate_file(fd_, size_, path_));
        if (::lseek(fd_, static_cast<off_t>(size_), SEEK_SET) < 0)
            return file_error("seeking", path_);
        return datasync_file(fd_, path_);
    };
    if (Status st = write_all(fd_, rec.data(), rec.size(), path_); !st) {
        const bool space = st.error().code() == ErrorCode::kResourceExhausted;
        if (!cut_back()) {
            clean_end_ = false;
            return poison(st.error());
        }
        if (!space) return poison(st.error());
        return st;  // a full disk: nothing partial remains, a later append may succeed
    }
    if (sync_ == WalSync::kEveryAppend) {
        if (Status st = datasync_file(fd_, path_); !st) {
            // What failed to reach the disk may be gone from the page cache too: the file's state
            // is unknown. Remove the unacknowledged records if we can, and never append here again.
            clean_end_ = cut_back().ok();
            return poison(st.error());
        }
    }
    size_ += rec.size();
    next_seq_ = seq;
    return ok_status();
}

Status WalWriter::sync() {
    if (poison_) return *poison_;
    if (fd_ < 0) return ok_status();
    if (Status st = datasync_file(fd_, path_); !st) {
        clean_end_ = false;  // unsynced records of kNone may be lost: their outcome is unknown
        return poison(st.error());
    }
    return ok_status();
}

}  // namespace quiver::storage
