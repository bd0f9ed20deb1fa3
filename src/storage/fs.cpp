// The durable-write seam and its Status helpers. See fs.h.
#include "quiver/storage/fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace quiver::storage {
namespace {

FileSystem& posix_file_system() {
    static FileSystem fs;
    return fs;
}

std::atomic<FileSystem*> g_active{nullptr};

}  // namespace

ssize_t FileSystem::write(int fd, const void* bytes, std::size_t size, const std::string&) {
    return ::write(fd, bytes, size);
}
int FileSystem::fsync(int fd, const std::string&) { return ::fsync(fd); }
int FileSystem::fdatasync(int fd, const std::string&) { return ::fdatasync(fd); }
int FileSystem::fsync_dir(int fd, const std::string&) { return ::fsync(fd); }
int FileSystem::rename(const std::string& from, const std::string& to) {
    return std::rename(from.c_str(), to.c_str());
}
int FileSystem::ftruncate(int fd, off_t size, const std::string&) { return ::ftruncate(fd, size); }
int FileSystem::writeback(int fd, off_t wait_from, off_t offset, off_t size, const std::string&) {
    if (wait_from < offset && ::sync_file_range(fd, wait_from, offset - wait_from,
                                                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                    SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        return -1;
    }
    return ::sync_file_range(fd, offset, size, SYNC_FILE_RANGE_WRITE);
}

FileSystem& file_system() noexcept {
    FileSystem* fs = g_active.load(std::memory_order_acquire);
    return fs != nullptr ? *fs : posix_file_system();
}

ScopedFileSystem::ScopedFileSystem(FileSystem& fs) noexcept : previous_(g_active.exchange(&fs)) {}
ScopedFileSystem::~ScopedFileSystem() { g_active.store(previous_); }

bool is_space_errno(int e) noexcept { return e == ENOSPC || e == EDQUOT || e == EFBIG; }

Error file_error(std::string_view what, std::string_view path) {
    const int e = errno;
    if (is_space_errno(e)) {
        return resource_exhausted(fmt::format("{} '{}': {}", what, path, std::strerror(e)));
    }
    return errno_error(what, path);
}

Status write_all(int fd, const void* bytes, std::size_t size, const std::string& path) {
    const char* p = static_cast<const char*>(bytes);
    while (size > 0) {
        const ssize_t n = file_system().write(fd, p, size, path);
        if (n < 0) {
            if (errno == EINTR) continue;
            return file_error("writing", path);
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return ok_status();
}

Status sync_file(int fd, const std::string& path) {
    if (file_system().fsync(fd, path) != 0) return file_error("fsync of", path);
    return ok_status();
}

Status datasync_file(int fd, const std::string& path) {
    if (file_system().fdatasync(fd, path) != 0) return file_error("fsync of", path);
    return ok_status();
}

Status truncate_file(int fd, std::uint64_t size, const std::string& path) {
    if (file_system().ftruncate(fd, static_cast<off_t>(size), path) != 0)
        return file_error("truncating", path);
    return ok_status();
}

Status rename_file(const std::string& from, const std::string& to) {
    if (file_system().rename(from, to) != 0)
        return file_error(fmt::format("renaming '{}' to", from), to);
    return ok_status();
}

Status sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_error("opening directory", dir);
    const int rc = file_system().fsync_dir(fd, dir);
    const int saved = errno;
    ::close(fd);
    if (rc != 0) {
        errno = saved;
        return file_error("fsync of directory", dir);
    }
    return ok_status();
}

std::string parent_directory(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace quiver::storage
