/// @file wal.h
/// @brief A write-ahead log: an append-only file of checksummed records.
///
/// File layout (little-endian): a 16-byte header `u32 magic 'QWAL' | u32 version | u64 first_seq`,
/// then records `u32 length | u32 crc32(length bytes + payload) | payload[length]`.
/// A record is acknowledged only after `append` returns, which is after the bytes reached the disk
/// (`fdatasync`) under `WalSync::kEveryAppend`. A crash can leave a torn tail: a short length field, a
/// length running past the end of the file, zeros, or a checksum mismatch. `read_wal` stops at the first
/// such record and reports where the valid prefix ends; `WalWriter::open` truncates the file there (and
/// fsyncs) before appending, so garbage is never replayed nor followed by new records.
///
/// Thread-safety: a WalWriter is not thread-safe; the collection serialises appends under its writer lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::storage {

inline constexpr std::uint32_t kWalMagic = 0x4c415751;  // "QWAL"
inline constexpr std::uint32_t kWalVersion = 1;
inline constexpr std::size_t kWalHeaderBytes = 16;
/// Largest record accepted (a bigger length field is treated as a torn tail).
inline constexpr std::uint32_t kWalMaxRecord = 1u << 30;

/// When appends reach stable storage.
enum class WalSync : std::uint8_t {
    kEveryAppend,  ///< fdatasync after every record, before append returns (the default)
    kNone,         ///< leave it to the OS (tests and bulk loads that can redo their work)
};

struct WalContents {
    std::uint64_t first_seq = 0;       ///< from the header
    std::vector<std::string> records;  ///< payloads of the valid prefix, in order
    std::uint64_t valid_bytes = 0;     ///< file offset where the valid prefix ends
    std::uint64_t file_bytes = 0;      ///< size of the file as found
    bool torn_tail = false;            ///< bytes after the valid prefix were dropped
};

/// Reads a log. A header-less (torn at creation) file is an empty log with `torn_tail`; a wrong magic or
/// newer version is kDataLoss / kFailedPrecondition. A damaged record followed by an intact one cannot
/// be a torn tail (appends are sequential and synced): that is kDataLoss naming the offset, so recovery
/// never truncates away acknowledged records after bit rot.
[[nodiscard]] Result<WalContents> read_wal(const std::string& path);

class WalWriter {
public:
    /// Creates a new log with `first_seq` in its header (fails if the file exists), fsyncs it and its dir.
    [[nodiscard]] static Result<WalWriter> create(const std::string& path, std::uint64_t first_seq, WalSync sync);
    /// Opens an existing log for appending after truncating it to `valid_bytes` (from read_wal).
    [[nodiscard]] static Result<WalWriter> open_for_append(const std::string& path, std::uint64_t valid_bytes,
                                                           WalSync sync);

    WalWriter(WalWriter&& o) noexcept;
    WalWriter& operator=(WalWriter&& o) noexcept;
    WalWriter(const WalWriter&) = delete;
    WalWriter& operator=(const WalWriter&) = delete;
    ~WalWriter();

    /// Appends one record and, under kEveryAppend, makes it durable before returning. On failure the
    /// file is truncated back to its previous size so a later append never follows a partial record.
    [[nodiscard]] Status append(std::string_view payload);
    /// Forces everything appended so far to disk.
    [[nodiscard]] Status sync();
    std::uint64_t bytes() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }

private:
    WalWriter() = default;
    int fd_ = -1;
    std::string path_;
    std::uint64_t size_ = 0;
    WalSync sync_ = WalSync::kEveryAppend;
};

/// fsyncs a directory (after creating, renaming or removing entries in it).
[[nodiscard]] Status sync_directory(const std::string& dir);

}  // namespace quiver::storage
