/// @file fs.h
/// @brief The file-system calls that make data durable, behind one small seam.
///
/// Every durable write path (`FileWriter`, `WalWriter`, collections' MANIFEST and segment commits)
/// writes, fsyncs, renames and truncates through `file_system()`. The default forwards to POSIX; a
/// test installs its own `FileSystem` (for example one that fails the Nth fsync with EIO) with
/// `ScopedFileSystem`. Methods follow the POSIX convention: -1 (or a short count) with `errno` set.
///
/// The helpers below turn failures into `Status` values. `ENOSPC`, `EDQUOT` and `EFBIG` (a full
/// disk, a quota, `RLIMIT_FSIZE`) are kResourceExhausted (HTTP 507); other errors are kIoError.
///
/// Thread-safety: the active instance is read atomically; installing one is for tests (install it
/// before the threads that use it start, and keep it alive while they run).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "quiver/core/result.h"

namespace quiver::storage {

class FileSystem {
public:
    virtual ~FileSystem() = default;
    virtual ssize_t write(int fd, const void* bytes, std::size_t size, const std::string& path);
    virtual int fsync(int fd, const std::string& path);      ///< data and metadata of a file
    virtual int fdatasync(int fd, const std::string& path);  ///< data (and the size) of a file
    virtual int fsync_dir(int fd, const std::string& dir);   ///< entries of a directory
    virtual int rename(const std::string& from, const std::string& to);
    virtual int ftruncate(int fd, off_t size, const std::string& path);
    /// Waits until bytes [wait_from, offset) are on the disk (none when wait_from >= offset), then
    /// starts the writeback of [offset, offset + size) (Linux sync_file_range). Nothing is durable
    /// until an fsync; an error the wait reports (EIO, ENOSPC) is not reported again by that fsync.
    virtual int writeback(int fd, off_t wait_from, off_t offset, off_t size, const std::string& path);
};

/// The active file system (the POSIX one unless a test installed another).
FileSystem& file_system() noexcept;

/// Installs `fs` for its lifetime, then restores the previous one.
class ScopedFileSystem {
public:
    explicit ScopedFileSystem(FileSystem& fs) noexcept;
    ~ScopedFileSystem();
    ScopedFileSystem(const ScopedFileSystem&) = delete;
    ScopedFileSystem& operator=(const ScopedFileSystem&) = delete;

private:
    FileSystem* previous_;
};

/// An error for the current `errno`: kResourceExhausted for ENOSPC/EDQUOT/EFBIG, else as
/// errno_error.
Error file_error(std::string_view what, std::string_view path);
/// True for the errors of a full disk or an exceeded size limit (the write can succeed later).
bool is_space_errno(int e) noexcept;

/// write(2) until every byte is out (retrying EINTR and short writes).
[[nodiscard]] Status write_all(int fd, const void* bytes, std::size_t size,
                               const std::string& path);
[[nodiscard]] Status sync_file(int fd, const std::string& path);
[[nodiscard]] Status datasync_file(int fd, const std::string& path);
[[nodiscard]] Status truncate_file(int fd, std::uint64_t size, const std::string& path);
[[nodiscard]] Status rename_file(const std::string& from, const std::string& to);
/// fsyncs a directory (after creating, renaming or removing entries in it).
[[nodiscard]] Status sync_directory(const std::string& dir);
/// The directory part of `path` ("." when there is none).
std::string parent_directory(const std::string& path);

}  // namespace quiver::storage
