// Data-directory ownership: an flock on <dir>/OWNER plus the owner's pid and address. See owner.h.
#include "quiver/engine/owner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace quiver::engine {
namespace {

std::string owner_path(const std::string& dir) { return dir + "/OWNER"; }

Result<OwnerInfo> read_info(int fd, const std::string& path) {
    std::string text;
    char buf[512];
    off_t off = 0;
    while (true) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("reading", path);
        }
        if (n == 0 || text.size() > 4096) break;
        text.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
    OwnerInfo info;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("pid ", 0) == 0) info.pid = std::strtol(line.c_str() + 4, nullptr, 10);
        if (line.rfind("address ", 0) == 0) info.address = line.substr(8);
    }
    return info;
}

std::string describe(const OwnerInfo& info) {
    std::string s = "pid " + std::to_string(info.pid);
    s += info.address.empty() ? " (an embedded quiver command)" : " (a server at " + info.address + ")";
    return s;
}

}  // namespace

DirectoryOwner& DirectoryOwner::operator=(DirectoryOwner&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

DirectoryOwner::~DirectoryOwner() {
    if (fd_ >= 0) ::close(fd_);  // drops the flock
}

Result<DirectoryOwner> DirectoryOwner::acquire(const std::string& dir, std::string_view address) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return io_error("creating data directory '" + dir + "': " + ec.message());
    const std::string path = owner_path(dir);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno_error("opening", path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        auto info = read_info(fd, path);
        ::close(fd);
        if (err != EWOULDBLOCK) {
            errno = err;
            return errno_error("locking", path);
        }
        return failed_precondition("data directory '" + dir + "' is in use by " +
                                   (info ? describe(*info) : std::string("another process")));
    }
    DirectoryOwner owner(fd);
    QUIVER_TRY(owner.set_address(address));
    return owner;
}

Status DirectoryOwner::set_address(std::string_view address) {
    const std::string text = "pid " + std::to_string(::getpid()) + "\naddress " + std::string(address) + "\n";
    if (::ftruncate(fd_, 0) != 0) return errno_error("truncating", "OWNER");
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::pwrite(fd_, text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("writing", "OWNER");
        }
        done += static_cast<std::size_t>(n);
    }
    return ok_status();
}

Result<std::optional<OwnerInfo>> find_owner(const std::string& dir) {
    const std::string path = owner_path(dir);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<OwnerInfo>{};
        return errno_error("opening", path);
    }
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {  // nobody holds it: no live owner
        ::close(fd);
        return std::optional<OwnerInfo>{};
    }
    const int err = errno;
    auto info = read_info(fd, path);
    ::close(fd);
    if (err != EWOULDBLOCK) {
        errno = err;
        return errno_error("locking", path);
    }
    if (!info) return std::move(info).error();
    return std::optional<OwnerInfo>(std::move(*info));
}

}  // namespace quiver::engine
