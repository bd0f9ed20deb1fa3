/// @file file_format.h
/// @brief The container every quiver file uses: a 16-byte header, a payload, a 24-byte footer.
///
/// Layout (all integers little-endian):
///   header  : u32 magic 'QVR1' | u32 kind (fourcc of the writer, e.g. 'HNSW') | u32 format_version | u32 flags
///   payload : written by the file's owner through FileWriter, sections aligned as it asks
///   [flags bit 0 (kFlagSections): section table, n x {u32 name, u32 crc32, u64 offset, u64 length},
///    then u32 n | u32 'SECT'; counted in the payload]
///   footer  : u64 payload_bytes | u32 crc32 | u32 kind | u32 format_version | u32 'QEND'
///
/// The footer's CRC-32 covers every byte before the footer, except the bytes of the listed sections:
/// each section (a large array: vectors, codes, a graph) carries its own CRC-32 in the table, so a
/// reader can check the header and the small metadata at open and a large section when it first uses
/// it (`DeferredCheck`), instead of reading the whole file to open it. Files without the flag (every
/// file before sections existed, and kinds that do not use them) have one CRC over everything.
///
/// Readers check, in order: the size (truncation), both magics, the payload size and the footer
/// CRC-32 (kDataLoss), the kind, the version (newer than this build reads is kFailedPrecondition naming
/// both versions); the sections' own CRCs when asked (`verify_section`), or at open by callers that do
/// not defer them.
/// Files are written to `<path>.tmp`, fsynced and renamed over `<path>`, so a crash never leaves a
/// half-written file under the final name. See docs/formats.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::storage {

inline constexpr std::uint32_t kFileMagic = 0x31525651;    // "QVR1"
inline constexpr std::uint32_t kFooterMagic = 0x444e4551;  // "QEND"
inline constexpr std::size_t kHeaderBytes = 16;
inline constexpr std::size_t kFooterBytes = 24;

/// Header flags (word 3 of the header).
inline constexpr std::uint32_t kFlagSections = 1;  ///< the payload ends with a section table
inline constexpr std::size_t kSectionEntryBytes = 24;

/// A byte range of a file with its own CRC-32 (see the file comment).
struct Section {
    std::uint32_t name = 0;    ///< fourcc, for error messages ("L0RC", "VECS", ...)
    std::uint32_t crc = 0;     ///< CRC-32 of the section's bytes
    std::uint64_t offset = 0;  ///< file offset of its first byte
    std::uint64_t length = 0;  ///< bytes
};

/// Builds a fourcc from four characters: fourcc("HNSW").
constexpr std::uint32_t fourcc(const char (&s)[5]) noexcept {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[0])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[3])) << 24;
}
std::string fourcc_string(std::uint32_t code);

/// CRC-32 (zlib polynomial) of `bytes`, continuing from `crc` (start with 0).
std::uint32_t crc32(std::uint32_t crc, const void* bytes, std::size_t size) noexcept;

/// A read-only memory mapping of a whole file. Movable; unmaps on destruction.
class MappedFile {
public:
    /// Maps `path` read-only. Empty files map to an empty span.
    static Result<MappedFile> open(const std::string& path);

    MappedFile() = default;
    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&& o) noexcept;
    ~MappedFile();

    std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    const std::string& path() const noexcept { return path_; }
    /// Drops the whole pages inside `range` (a part of bytes()) from this process's resident memory
    /// (madvise MADV_DONTNEED): they stay in the page cache and are mapped again if read. For sections
    /// nothing reads through the mapping after validation (float vectors left on disk for pread).
    void release(std::span<const std::byte> range) const noexcept;

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::string path_;
};

/// Reads a whole file into memory (for small text files and non-mmap callers).
Result<std::string> read_file(const std::string& path);

/// Writes a quiver file: header, then payload through write()/align(), then footer on finish().
/// Not thread-safe. If finish() is never called, the temporary file is removed by the destructor.
///
/// Bytes reach the file in pieces of at most kWritebackBytes, and each piece is handed to the
/// kernel's writeback as soon as it is written, after waiting for the piece before it (RocksDB's
/// bytes_per_sync): a large file never sits in the page cache until finish()'s fsync. On ext4
/// (ordered data) a journal commit waits for every file's newly allocated data, so a segment of
/// tens of megabytes flushed at once held up other files' fsyncs, a collection's log among them:
/// under issue 10's mixed load, group-commit fsyncs of 220-350 ms, while the writer lock was held
/// (docs/collections.md). Durability is still finish()'s fsync. A writeback error (EIO, or ENOSPC
/// from delayed allocation) fails the write that met it: Linux reports a writeback error once per
/// open file, so the fsync would not report it again.
class FileWriter {
public:
    /// `flags`: kFlagSections to write a section table (begin_section / end_section), else 0.
    static Result<FileWriter> create(const std::string& path, std::uint32_t kind,
                                     std::uint32_t format_version, std::uint32_t flags = 0);
    FileWriter(FileWriter&& o) noexcept;
    FileWriter& operator=(FileWriter&&) = delete;
    ~FileWriter();

    Status write(const void* bytes, std::size_t size);
    template <class T>
    Status write_pod(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(&v, sizeof(T));
    }
    template <class T>
    Status write_span(std::span<const T> v) {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(v.data(), v.size_bytes());
    }
    /// u64 length + bytes.
    Status write_string(std::string_view s);
    /// Pads with zeros so that the next byte's file offset is a multiple of `alignment`.
    Status align(std::size_t alignment);
    /// Bytes written so far, header included.
    std::uint64_t offset() const noexcept { return offset_; }
    /// Bytes written from here to end_section() form a section named `name` with its own CRC-32,
    /// left out of the footer's (the file must be created with kFlagSections; sections do not nest).
    /// Align before beginning a section whose readers map it in place.
    Status begin_section(std::uint32_t name);
    Status end_section();
    /// Writes the footer, fsyncs, renames the temporary file over the final path and fsyncs the directory.
    /// Every step is checked. On failure before the rename the old file (if any) is untouched; on a
    /// failed directory fsync (`renamed()` is true) the new file is in place but may not survive a crash,
    /// so callers must keep whatever the old file referenced.
    Status finish();
    /// True once finish() renamed the file into place (even if the directory fsync then failed).
    bool renamed() const noexcept { return renamed_; }
    static constexpr std::size_t kWritebackBytes = std::size_t{1} << 20;

private:
    FileWriter() = default;
    Status flush_buffer();
    /// Writes `size` bytes at the end of the file, in pieces of at most kWritebackBytes, each handed
    /// to writeback.
    Status write_through(const char* bytes, std::size_t size);

    int fd_ = -1;
    std::string path_;
    std::string tmp_path_;
    std::uint32_t kind_ = 0;
    std::uint32_t version_ = 0;
    std::uint32_t crc_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t file_bytes_ = 0;  // bytes written to fd_ (offset_ less the buffer)
    std::uint64_t writeback_from_ = 0;  // start of the last piece handed to writeback
    std::string buffer_;
    bool finished_ = false;
    bool renamed_ = false;
    std::uint32_t flags_ = 0;
    bool in_section_ = false;
    std::vector<Section> sections_;
};

/// Bounds-checked cursor over a validated payload. Every read past the end is kDataLoss naming `path`.
class BinaryReader {
public:
    BinaryReader(std::span<const std::byte> file_bytes, std::size_t begin, std::size_t end,
                 std::string path)
        : bytes_(file_bytes), pos_(begin), end_(end), path_(std::move(path)) {}

    template <class T>
    Result<T> read_pod() {
        static_assert(std::is_trivially_copyable_v<T>);
        if (end_ - pos_ < sizeof(T)) return truncated(sizeof(T));
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    /// A zero-copy view of `count` Ts; the current offset must be aligned to alignof(T).
    template <class T>
    Result<std::span<const T>> read_span(std::size_t count) {
        static_assert(std::is_trivially_copyable_v<T>);
        if (count > (end_ - pos_) / (sizeof(T) == 0 ? 1 : sizeof(T))) return truncated(count * sizeof(T));
        const std::byte* p = bytes_.data() + pos_;
        if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0) return misaligned();
        pos_ += count * sizeof(T);
        return std::span<const T>(reinterpret_cast<const T*>(p), count);
    }
    Result<std::string> read_string(std::size_t max_len = (1u << 30));
    Status align(std::size_t alignment);
    Status skip(std::size_t n);
    std::size_t offset() const noexcept { return pos_; }
    std::size_t remaining() const noexcept { return end_ - pos_; }
    const std::string& path() const noexcept { return path_; }
    /// A kDataLoss error naming the file: "'x.qvr': <what>".
    Error corrupt(std::string_view what) const;

private:
    Error truncated(std::size_t wanted) const;
    Error misaligned() const;

    std::span<const std::byte> bytes_;
    std::size_t pos_;
    std::size_t end_;
    std::string path_;
};

/// Validates the container of a mapped file and returns a reader positioned at the payload start
/// (its end excludes the section table). `max_version` is the newest format this build reads.
/// Sections: with `sections_out`, their table is validated (inside the payload, ascending, disjoint)
/// and returned, and their CRCs are left to the caller (`verify_section`); without it, every section
/// is verified here.
Result<BinaryReader> open_payload(const MappedFile& file, std::uint32_t kind,
                                  std::uint32_t max_version, std::uint32_t* version_out = nullptr,
                                  std::vector<Section>* sections_out = nullptr);

/// Checks one section's CRC-32 through the mapping: kDataLoss "'<path>': section 'VECS' (bytes a to
/// b) is corrupt: checksum ..., expected ..." on a mismatch.
Status verify_section(const MappedFile& file, const Section& section);
/// verify_section that drops the section's pages from the process (`MappedFile::release`) every `chunk`
/// bytes (64 MiB) as it goes, so checking a section that is otherwise read with `pread` (vectors left on
/// disk) adds at most one chunk to the resident set instead of the whole section. Same result and message.
Status verify_section_released(const MappedFile& file, const Section& section,
                               std::uint64_t chunk = std::uint64_t{64} << 20);

/// A check run once, on first use, from any thread: the first `run()` calls the function (e.g. the
/// CRCs of a file's large sections and the structural checks of their contents) and every call
/// returns its outcome. Thread-safe; a default-constructed DeferredCheck has nothing to check.
class DeferredCheck {
public:
    DeferredCheck() = default;
    explicit DeferredCheck(std::function<Status()> check) : check_(std::move(check)) {}
    DeferredCheck(const DeferredCheck&) = delete;
    DeferredCheck& operator=(const DeferredCheck&) = delete;

    Status run() const;
    /// Whether run() has completed (successfully or not).
    bool done() const noexcept { return done_.load(std::memory_order_acquire); }

private:
    std::function<Status()> check_;
    mutable std::mutex mu_;
    mutable std::atomic<bool> done_{false};
    mutable Status outcome_;
};

}  // namespace quiver::storage
