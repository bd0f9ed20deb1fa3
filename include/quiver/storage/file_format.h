/// @file file_format.h
/// @brief The container every quiver file uses: a 16-byte header, a payload, a 24-byte footer.
///
/// Layout (all integers little-endian):
///   header  : u32 magic 'QVR1' | u32 kind (fourcc of the writer, e.g. 'HNSW') | u32 format_version | u32 0
///   payload : written by the file's owner through FileWriter, sections aligned as it asks
///   footer  : u64 payload_bytes | u32 crc32(header + payload) | u32 kind | u32 format_version | u32 'QEND'
///
/// Readers check, in order: the size (truncation), both magics, the kind, the version (newer than this
/// build reads is kFailedPrecondition naming both versions), the payload size, and the CRC-32 (kDataLoss).
/// Files are written to `<path>.tmp`, fsynced and renamed over `<path>`, so a crash never leaves a
/// half-written file under the final name. See docs/formats.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "quiver/core/result.h"

namespace quiver::storage {

inline constexpr std::uint32_t kFileMagic = 0x31525651;    // "QVR1"
inline constexpr std::uint32_t kFooterMagic = 0x444e4551;  // "QEND"
inline constexpr std::size_t kHeaderBytes = 16;
inline constexpr std::size_t kFooterBytes = 24;

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
class FileWriter {
public:
    static Result<FileWriter> create(const std::string& path, std::uint32_t kind,
                                     std::uint32_t format_version);
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
    /// Writes the footer, fsyncs, renames the temporary file over the final path and fsyncs the directory.
    /// Every step is checked. On failure before the rename the old file (if any) is untouched; on a
    /// failed directory fsync (`renamed()` is true) the new file is in place but may not survive a crash,
    /// so callers must keep whatever the old file referenced.
    Status finish();
    /// True once finish() renamed the file into place (even if the directory fsync then failed).
    bool renamed() const noexcept { return renamed_; }

private:
    FileWriter() = default;
    Status flush_buffer();

    int fd_ = -1;
    std::string path_;
    std::string tmp_path_;
    std::uint32_t kind_ = 0;
    std::uint32_t version_ = 0;
    std::uint32_t crc_ = 0;
    std::uint64_t offset_ = 0;
    std::string buffer_;
    bool finished_ = false;
    bool renamed_ = false;
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

/// Validates the container of a mapped file and returns a reader positioned at the payload start.
/// `max_version` is the newest format this build reads.
Result<BinaryReader> open_payload(const MappedFile& file, std::uint32_t kind,
                                  std::uint32_t max_version, std::uint32_t* version_out = nullptr);

}  // namespace quiver::storage
