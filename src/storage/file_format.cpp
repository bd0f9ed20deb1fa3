#include "quiver/storage/file_format.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <utility>
#include <filesystem>
#include <limits>

#include "quiver/storage/fs.h"

namespace quiver::storage {

std::string fourcc_string(std::uint32_t code) {
    std::string s(4, '?');
    for (int i = 0; i < 4; ++i) {
        const auto c = static_cast<char>((code >> (8 * i)) & 0xFF);
        s[static_cast<std::size_t>(i)] = (c >= 32 && c < 127) ? c : '?';
    }
    return s;
}

std::uint32_t crc32(std::uint32_t crc, const void* bytes, std::size_t size) noexcept {
    const auto* p = static_cast<const Bytef*>(bytes);
    uLong c = crc;
    while (size > 0) {
        const uInt chunk = size > (1u << 30) ? (1u << 30) : static_cast<uInt>(size);
        c = ::crc32(c, p, chunk);
        p += chunk;
        size -= chunk;
    }
    return static_cast<std::uint32_t>(c);
}

// ---------------------------------------------------------------------------------------------
Result<MappedFile> MappedFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_error("opening", path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        Error e = errno_error("stat", path);
        ::close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        return invalid_argument(fmt::format("'{}' is a directory, expected a file", path));
    }
    MappedFile f;
    f.path_ = path;
    f.size_ = static_cast<std::size_t>(st.st_size);
    if (f.size_ > 0) {
        void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            Error e = errno_error("mmap", path);
            ::close(fd);
            return e;
        }
        f.data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
    return f;
}

void MappedFile::release(std::span<const std::byte> range) const noexcept {
    if (range.empty() || range.data() < data_ || range.data() + range.size() > data_ + size_) return;
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(range.data()) + page - 1) / page * page;
    const auto end = (reinterpret_cast<std::uintptr_t>(range.data()) + range.size()) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(o.data_), size_(o.size_), path_(std::move(o.path_)) {
    o.data_ = nullptr;
    o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
    if (this != &o) {
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = o.data_;
        size_ = o.size_;
        path_ = std::move(o.path_);
        o.data_ = nullptr;
        o.size_ = 0;
    }
    return *this;
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

Result<std::string> read_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return errno_error("opening", path);
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const std::size_t n = std::fread(buf, 1, sizeof(buf), f);
        out.append(buf, n);
        if (n < sizeof(buf)) break;
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return io_error(fmt::format("reading '{}' failed", path));
    return out;
}

// ---------------------------------------------------------------------------------------------
Result<FileWriter> FileWriter::create(const std::string& path, std::uint32_t kind,
                                      std::uint32_t format_version, std::uint32_t flags) {
    if ((flags & ~kFlagSections) != 0) return invalid_argument(fmt::format("unknown file flags 0x{:x}", flags));
    FileWriter w;
    w.flags_ = flags;
    w.path_ = path;
    w.tmp_path_ = path + ".tmp";
    w.kind_ = kind;
    w.version_ = format_version;
    w.fd_ = ::open(w.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd_ < 0) return file_error("creating", w.tmp_path_);
    w.buffer_.reserve(1 << 20);
    const std::uint32_t header[4] = {kFileMagic, kind, format_version, flags};
    QUIVER_TRY(w.write(header, sizeof(header)));
    return w;
}

FileWriter::FileWriter(FileWriter&& o) noexcept
    : fd_(o.fd_),
      path_(std::move(o.path_)),
      tmp_path_(std::move(o.tmp_path_)),
      kind_(o.kind_),
      version_(o.version_),
      crc_(o.crc_),
      offset_(o.offset_),
      file_bytes_(o.file_bytes_),
      writeback_from_(o.writeback_from_),
      buffer_(std::move(o.buffer_)),
      finished_(o.finished_),
      renamed_(o.renamed_),
      flags_(o.flags_),
      in_section_(o.in_section_),
      sections_(std::move(o.sections_)) {
    o.fd_ = -1;
    o.finished_ = true;
}

FileWriter::~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}


Status FileWriter::flush_buffer() {
    QUIVER_TRY(write_through(buffer_.data(), buffer_.size()));
    buffer_.clear();
    return {};
}

Status FileWriter::write_through(const char* bytes, std::size_t size) {
    while (size > 0) {
        const std::size_t piece = std::min(size, kWritebackBytes);
        QUIVER_TRY(write_all(fd_, bytes, piece, tmp_path_));
        // An error here is the write's (see the class comment); a file system without the call
        // (EINVAL, ENOSYS, EOPNOTSUPP) is only written back later.
        if (file_system().writeback(fd_, static_cast<off_t>(writeback_from_), static_cast<off_t>(file_bytes_),
                                    static_cast<off_t>(piece), tmp_path_) != 0 &&
            errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
            return file_error("writing back", tmp_path_);
        }
        writeback_from_ = file_bytes_;  // the piece the next one waits for
        file_bytes_ += piece;
        bytes += piece;
        size -= piece;
    }
    return {};
}

Status FileWriter::write(const void* bytes, std::size_t size) {
    if (size == 0) return {};
    if (in_section_) {
        sections_.back().crc = crc32(sections_.back().crc, bytes, size);
        sections_.back().length += size;
    } else {
        crc_ = crc32(crc_, bytes, size);
    }
    offset_ += size;
    if (buffer_.size() + size > kWritebackBytes) {
        QUIVER_TRY(flush_buffer());
        if (size >= kWritebackBytes) return write_through(static_cast<const char*>(bytes), size);
    }
    buffer_.append(static_cast<const char*>(bytes), size);
    return {};
}

Status FileWriter::write_string(std::string_view s) {
    QUIVER_TRY(write_pod<std::uint64_t>(s.size()));
    return write(s.data(), s.size());
}

Status FileWriter::align(std::size_t alignment) {
    static constexpr char kZeros[256] = {};
    const std::size_t pad = (alignment - offset_ % alignment) % alignment;
    return write(kZeros, pad);
}

Status FileWriter::begin_section(std::uint32_t name) {
    if ((flags_ & kFlagSections) == 0 || in_section_) {
        return failed_precondition(fmt::format("'{}': a section needs a file created with sections, and "
                                               "sections do not nest", path_));
    }
    sections_.push_back(Section{name, 0, offset_, 0});
    in_section_ = true;
    return {};
}

Status FileWriter::end_section() {
    if (!in_section_) return failed_precondition(fmt::format("'{}': end_section without begin_section", path_));
    in_section_ = false;
    return {};
}

Status FileWriter::finish() {
    if (in_section_) return failed_precondition(fmt::format("'{}': a section was not ended", path_));
    if ((flags_ & kFlagSections) != 0) {
        for (const Section& sec : sections_) {
            QUIVER_TRY(write_pod(sec.name));
            QUIVER_TRY(write_pod(sec.crc));
            QUIVER_TRY(write_pod(sec.offset));
            QUIVER_TRY(write_pod(sec.length));
        }
        QUIVER_TRY(write_pod<std::uint32_t>(static_cast<std::uint32_t>(sections_.size())));
        QUIVER_TRY(write_pod<std::uint32_t>(fourcc("SECT")));
    }
    const std::uint64_t payload = offset_ - kHeaderBytes;
    const std::uint32_t crc = crc_;
    struct {
        std::uint64_t payload_bytes;
        std::uint32_t crc, kind, version, magic;
    } footer{payload, crc, kind_, version_, kFooterMagic};
    static_assert(sizeof(footer) == kFooterBytes);
    buffer_.append(reinterpret_cast<const char*>(&footer), sizeof(footer));
    QUIVER_TRY(flush_buffer());
    QUIVER_TRY(sync_file(fd_, tmp_path_));
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return file_error("closing", tmp_path_);
    QUIVER_TRY(rename_file(tmp_path_, path_));
    finished_ = true;  // the temporary name is gone; nothing to remove any more
    renamed_ = true;
    // The rename is durable only once the directory is: until then a crash may leave the old file.
    return sync_directory(parent_directory(path_));
}

// ---------------------------------------------------------------------------------------------
Error BinaryReader::corrupt(std::string_view what) const {
    return data_loss(fmt::format("'{}': {} (at byte {})", path_, what, pos_));
}
Error BinaryReader::truncated(std::size_t wanted) const {
    return corrupt(fmt::format("record of {} bytes runs past the end of its section", wanted));
}
Error BinaryReader::misaligned() const { return corrupt("misaligned array section"); }

Result<std::string> BinaryReader::read_string(std::size_t max_len) {
    QUIVER_ASSIGN_OR_RETURN(std::uint64_t len, read_pod<std::uint64_t>());
    if (len > max_len || len > remaining()) return corrupt(fmt::format("string length {} is invalid", len));
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
}

Status BinaryReader::align(std::size_t alignment) {
    const std::size_t pad = (alignment - pos_ % alignment) % alignment;
    return skip(pad);
}

Status BinaryReader::skip(std::size_t n) {
    if (n > remaining()) return truncated(n);
    pos_ += n;
    return {};
}

namespace {

// The section table of a file whose header says it has one: validated against the file size only (the
// footer's CRC, which covers the table, is checked next). Returns the table's first byte.
Result<std::size_t> read_section_table(std::span<const std::byte> bytes, const std::string& path,
                                       std::vector<Section>& out) {
    const std::size_t end = bytes.size() - kFooterBytes;  // the trailer ends here
    auto damaged = [&](std::string_view what) {
        return data_loss(fmt::format("'{}' is corrupt: its section table {} (checksum not verifiable)", path, what));
    };
    if (end < kHeaderBytes + 8) return damaged("is missing");
    std::uint32_t trailer[2];
    std::memcpy(trailer, bytes.data() + end - 8, 8);
    if (trailer[1] != fourcc("SECT")) return damaged("has no end marker");
    const std::size_t n = trailer[0];
    if (n > (end - kHeaderBytes - 8) / kSectionEntryBytes) return damaged(fmt::format("count {} is invalid", n));
    const std::size_t table = end - 8 - n * kSectionEntryBytes;
    out.resize(n);
    std::uint64_t prev_end = kHeaderBytes;
    for (std::size_t i = 0; i < n; ++i) {
        const std::byte* e = bytes.data() + table + i * kSectionEntryBytes;
        std::memcpy(&out[i].name, e, 4);
        std::memcpy(&out[i].crc, e + 4, 4);
        std::memcpy(&out[i].offset, e + 8, 8);
        std::memcpy(&out[i].length, e + 16, 8);
        // Ascending, disjoint, inside the payload before the table (no sum formed before it is bounded).
        if (out[i].offset < prev_end || out[i].offset > table || out[i].length > table - out[i].offset) {
            return damaged(fmt::format("entry {} (offset {}, length {}) lies outside the payload or overlaps", i,
                                       out[i].offset, out[i].length));
        }
        prev_end = out[i].offset + out[i].length;
    }
    return table;
}

}  // namespace

Result<BinaryReader> open_payload(const MappedFile& file, std::uint32_t kind, std::uint32_t max_version,
                                  std::uint32_t* version_out, std::vector<Section>* sections_out) {
    const auto bytes = file.bytes();
    const std::string& path = file.path();
    if (bytes.size() == 0) return data_loss(fmt::format("'{}' is empty", path));
    if (bytes.size() < kHeaderBytes + kFooterBytes) {
        return data_loss(fmt::format("'{}' is truncated: {} bytes, a quiver file has at least {}", path,
                                     bytes.size(), kHeaderBytes + kFooterBytes));
    }
    std::uint32_t header[4];
    std::memcpy(header, bytes.data(), sizeof(header));
    struct {
        std::uint64_t payload_bytes;
        std::uint32_t crc, kind, version, magic;
    } footer;
    std::memcpy(&footer, bytes.data() + bytes.size() - kFooterBytes, kFooterBytes);
    if (header[0] != kFileMagic && footer.magic != kFooterMagic) {
        return invalid_argument(fmt::format("'{}' is not a quiver file (magic 0x{:08x}, expected 0x{:08x})",
                                            path, header[0], kFileMagic));
    }
    // Integrity first: a flipped bit in the kind or version fields is damage, not a newer format.
    const std::uint64_t expected_payload = bytes.size() - kHeaderBytes - kFooterBytes;
    if (footer.magic != kFooterMagic) {
        return data_loss(fmt::format("'{}' is truncated or damaged: no valid footer at its end", path));
    }
    if (footer.payload_bytes != expected_payload) {
        return data_loss(fmt::format("'{}' is damaged or truncated: footer says {} payload bytes, file holds {}",
                                     path, footer.payload_bytes, expected_payload));
    }
    // The footer's CRC covers everything before it but the sections' bytes. In a large file the pages
    // the check read are dropped from the process every 64 MiB (they stay in the page cache), so opening
    // never holds the whole file resident: readers that copy the payload out of the mapping, or touch
    // only part of it, keep their resident memory to what they use.
    constexpr std::size_t kReleaseAbove = std::size_t{256} << 20, kChunk = std::size_t{64} << 20;
    const bool release = bytes.size() > kReleaseAbove;
    auto crc_of = [&](std::uint32_t c, std::size_t at, std::size_t n) {
        while (n > 0) {
            const std::size_t m = release ? std::min(n, kChunk) : n;
            c = crc32(c, bytes.data() + at, m);
            if (release) file.release(bytes.subspan(at, m));
            at += m;
            n -= m;
        }
        return c;
    };
    std::vector<Section> sections;
    std::size_t payload_end = bytes.size() - kFooterBytes;
    std::uint32_t crc = 0;
    if ((header[3] & kFlagSections) != 0) {
        QUIVER_ASSIGN_OR_RETURN(payload_end, read_section_table(bytes, path, sections));
        std::uint64_t at = 0;
        for (const Section& sec : sections) {
            crc = crc_of(crc, static_cast<std::size_t>(at), static_cast<std::size_t>(sec.offset - at));
            at = sec.offset + sec.length;
        }
        crc = crc_of(crc, static_cast<std::size_t>(at), bytes.size() - kFooterBytes - static_cast<std::size_t>(at));
    } else {
        crc = crc_of(0, 0, bytes.size() - kFooterBytes);
    }
    if (crc != footer.crc) {
        return data_loss(fmt::format("'{}' is corrupt: checksum 0x{:08x}, expected 0x{:08x}", path, crc,
                                     footer.crc));
    }
    if (header[0] != kFileMagic || footer.kind != header[1] || footer.version != header[2]) {
        return data_loss(fmt::format("'{}' is damaged: header and footer disagree", path));
    }
    if ((header[3] & ~kFlagSections) != 0) {
        return data_loss(fmt::format("'{}' is damaged: unknown header flags 0x{:x}", path, header[3]));
    }
    if (header[1] != kind) {
        return invalid_argument(fmt::format("'{}' holds a '{}' file, expected '{}'", path,
                                            fourcc_string(header[1]), fourcc_string(kind)));
    }
    if (header[2] > max_version || header[2] == 0) {
        return failed_precondition(fmt::format("'{}' has format version {}, this build reads 1 to {}",
                                               path, header[2], max_version));
    }
    if (sections_out != nullptr) {
        *sections_out = std::move(sections);
    } else {
        for (const Section& sec : sections) QUIVER_TRY(verify_section(file, sec));
    }
    if (version_out) *version_out = header[2];
    return BinaryReader(bytes, kHeaderBytes, payload_end, path);
}

Status verify_section(const MappedFile& file, const Section& section) {
    const auto bytes = file.bytes();
    if (section.offset > bytes.size() || section.length > bytes.size() - section.offset) {
        return data_loss(fmt::format("'{}': section '{}' lies outside the file", file.path(),
                                     fourcc_string(section.name)));
    }
    const std::uint32_t crc = crc32(0, bytes.data() + section.offset, static_cast<std::size_t>(section.length));
    if (crc != section.crc) {
        return data_loss(fmt::format("'{}': section '{}' (bytes {} to {}) is corrupt: checksum 0x{:08x}, expected "
                                     "0x{:08x}",
                                     file.path(), fourcc_string(section.name), section.offset,
                                     section.offset + section.length, crc, section.crc));
    }
    return {};
}

Status verify_section_released(const MappedFile& file, const Section& section, std::uint64_t chunk) {
    const auto bytes = file.bytes();
    if (section.offset > bytes.size() || section.length > bytes.size() - section.offset || chunk == 0) {
        return verify_section(file, section);  // the same error (or no chunking)
    }
    std::uint32_t crc = 0;
    for (std::uint64_t at = 0; at < section.length; at += chunk) {
        const auto n = static_cast<std::size_t>(std::min(chunk, section.length - at));
        const std::byte* p = bytes.data() + section.offset + at;
        crc = crc32(crc, p, n);
        file.release({p, n});
    }
    if (crc != section.crc) return verify_section(file, section);  // the same message (re-reads once)
    return {};
}

Status DeferredCheck::run() const {
    if (done_.load(std::memory_order_acquire)) return outcome_;
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_.load(std::memory_order_relaxed)) {
        if (check_) outcome_ = check_();
        done_.store(true, std::memory_order_release);
    }
    return outcome_;
}

}  // namespace quiver::storage
