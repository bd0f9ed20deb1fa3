/// @file wal.h
/// @brief A write-ahead log: an append-only file of checksummed, sequence-numbered records.
///
/// File layout, version 2 (little-endian):
///   header : u32 magic 'QWAL' | u32 version | u64 first_seq | u32 crc32(previous 16 bytes) | u32 0
///   record : u32 magic 'QREC' | u32 length | u64 seq | u32 crc32(previous 16 bytes)
///            | u32 crc32(payload) | payload[length] | u32 end marker 'QRND'
/// Records carry consecutive sequence numbers starting at the header's `first_seq`. The header
/// checksum lets a reader tell a damaged length field from a record cut short; the record magic
/// lets it find the intact records that follow a damaged one; the non-zero end marker makes a
/// complete record distinguishable from one whose end was never written. Version 1 logs (no record
/// headers beyond length + CRC) are still read.
///
/// Acknowledgement: under `WalSync::kEveryAppend` a record is acknowledged only when `append`
/// returns, after `fdatasync`. A crash can then only leave a *true tail* after the last
/// acknowledged record: bytes that are a prefix of one record (a short header, a length running
/// past the end of the file), possibly followed by zeros (blocks allocated but never written).
/// `read_wal` accepts exactly that and reports it; any other damage — a checksum or length mismatch
/// with an intact record anywhere after it, a complete record with a bad checksum, a damaged
/// header, a sequence gap — is kDataLoss naming the file and the byte offset. Whether a true tail
/// may be dropped is the caller's decision: only in the newest log of a collection.
///
/// Errors: after a failed write the file is truncated back to the last complete record; if that (or
/// an fsync) fails the writer is *poisoned*: no later append is acknowledged on this file, and
/// every call returns the first error. A full disk or exceeded size limit (ENOSPC, EDQUOT, EFBIG)
/// whose partial record was removed leaves the writer usable: the append fails with
/// kResourceExhausted and a later append can succeed once space returns.
///
/// Thread-safety: a WalWriter is not thread-safe; the collection serialises appends under its
/// writer lock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/storage/fs.h"

namespace quiver::storage {

inline constexpr std::uint32_t kWalMagic = 0x4c415751;        // "QWAL"
inline constexpr std::uint32_t kWalRecordMagic = 0x43455251;  // "QREC"
inline constexpr std::uint32_t kWalEndMarker = 0x444e5251;    // "QRND"
inline constexpr std::uint32_t kWalVersion = 2;
inline constexpr std::size_t kWalHeaderBytes = 24;  ///< version 2 (version 1: 16)
inline constexpr std::size_t kWalRecordHeaderBytes =
    24;  ///< magic, length, seq, header crc, payload crc
inline constexpr std::size_t kWalRecordOverhead = kWalRecordHeaderBytes + 4;
/// Largest record payload accepted.
inline constexpr std::uint32_t kWalMaxRecord = 1u << 30;

/// When appends reach stable storage.
enum class WalSync : std::uint8_t {
    kEveryAppend,  ///< fdatasync after every record, before append returns (the default)
    kNone,         ///< leave it to the OS (tests and bulk loads that can redo their work)
};

struct WalRecord {
    std::uint64_t seq = 0;
    std::uint64_t offset = 0;  ///< file offset of the record
    std::string payload;
};

struct WalContents {
    std::uint32_t version = 0;       ///< 0 when the header itself was torn
    std::uint64_t first_seq = 0;     ///< from the header (0 when torn)
    std::vector<WalRecord> records;  ///< the intact records, in order
    std::uint64_t valid_bytes = 0;   ///< file offset where the intact prefix ends
    std::uint64_t file_bytes = 0;    ///< size of the file as found
    bool torn_tail = false;          ///< bytes after the intact prefix form a true tail (see above)
    bool torn_header = false;  ///< the file holds only a prefix of its header (torn at creation)
    std::uint64_t tail_records = 0;  ///< partial records in the tail (0 when it is only zeros)
};

/// Reads a log (see the file comment for what is accepted). A wrong magic is kDataLoss, a newer
/// version with an intact header is kFailedPrecondition.
[[nodiscard]] Result<WalContents> read_wal(const std::string& path);

/// What `salvage_wal` recovers from a damaged log: every intact record (found by scanning past
/// damage) and the byte ranges it had to skip.
struct WalSalvage {
    std::uint64_t first_seq = 0;
    std::vector<WalRecord> records;
    std::vector<std::pair<std::uint64_t, std::uint64_t>>
        skipped;  ///< [begin, end) byte ranges dropped
};
/// Reads every intact record of a (possibly damaged) log, for `quiver repair`. Never fails on
/// damage; errors are only for unreadable files.
[[nodiscard]] Result<WalSalvage> salvage_wal(const std::string& path);

class WalWriter {
public:
    /// Creates a new log whose first record will carry `first_seq` (fails if the file exists), and
    /// fsyncs it and its directory.
    [[nodiscard]] static Result<WalWriter> create(const std::string& path, std::uint64_t first_seq,
                                                  WalSync sync);

    WalWriter(WalWriter&& o) noexcept;
    WalWriter& operator=(WalWriter&& o) noexcept;
    WalWriter(const WalWriter&) = delete;
    WalWriter& operator=(const WalWriter&) = delete;
    ~WalWriter();

    /// Appends one record carrying `next_seq()` and, under kEveryAppend, makes it durable before
    /// returning; only then is the sequence number consumed. See the file comment for failures.
    [[nodiscard]] Status append(std::string_view payload);
    /// Appends `payloads` as consecutive records (sequence numbers from `next_seq()`) with one write
    /// (and, under kEveryAppend, one fsync): all of them or, on failure, none (as `append`).
    [[nodiscard]] Status append_many(std::span<const std::string_view> payloads);
    /// Forces everything appended so far to disk (a failure poisons the writer).
    [[nodiscard]] Status sync();
    std::uint64_t bytes() const noexcept { return size_; }
    std::uint64_t next_seq() const noexcept { return next_seq_; }
    const std::string& path() const noexcept { return path_; }
    /// Set after an error that leaves the file's contents uncertain: no further appends on this
    /// file.
    bool poisoned() const noexcept { return poison_.has_value(); }
    /// The error that poisoned the writer (nullopt while it is usable).
    const std::optional<Error>& failure() const noexcept { return poison_; }
    /// True when the file still ends at its last complete record (a poisoned log may be followed by
    /// a new log starting at `next_seq()` without a gap or an overlap).
    bool clean_end() const noexcept { return clean_end_; }

private:
    WalWriter() = default;
    Status poison(Error e);
    int fd_ = -1;
    std::string path_;
    std::uint64_t size_ = 0;
    std::uint64_t next_seq_ = 0;
    WalSync sync_ = WalSync::kEveryAppend;
    std::optional<Error> poison_;
    bool clean_end_ = true;
};

/// Truncates a log to `valid_bytes` (dropping a true tail found by read_wal) and fsyncs it.
[[nodiscard]] Status truncate_wal(const std::string& path, std::uint64_t valid_bytes);

}  // namespace quiver::storage
