/// @file owner.h
/// @brief One process owns a data directory: `<dir>/OWNER`, flock'ed exclusively while the owner runs.
///
/// `quiver serve` takes ownership before opening the store and records its address, so `quiver ingest`
/// and `quiver query` can find the server and talk to it over HTTP instead of failing on the
/// per-collection locks; embedded CLI runs take ownership too (with no address), so a server cannot
/// start under them. The file holds `pid <pid>\naddress <url>\n`; it is never removed (a stale file is
/// harmless: ownership is the flock, which the kernel drops when the process exits, even on kill -9).
///
/// Thread-safety: DirectoryOwner is a move-only handle; find_owner is safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "quiver/core/result.h"

namespace quiver::engine {

struct OwnerInfo {
    long pid = 0;
    std::string address;  ///< "http://host:port", or empty for an embedded (CLI) owner
};

class DirectoryOwner {
public:
    /// Creates `dir` if needed and takes ownership for this process, recording `address` (may be
    /// empty). kFailedPrecondition naming the owner's pid and address when another process owns it.
    [[nodiscard]] static Result<DirectoryOwner> acquire(const std::string& dir, std::string_view address);
    /// Rewrites the recorded address (a server knows its port only after binding).
    [[nodiscard]] Status set_address(std::string_view address);

    DirectoryOwner(DirectoryOwner&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    DirectoryOwner& operator=(DirectoryOwner&& o) noexcept;
    DirectoryOwner(const DirectoryOwner&) = delete;
    DirectoryOwner& operator=(const DirectoryOwner&) = delete;
    ~DirectoryOwner();  ///< releases ownership

private:
    explicit DirectoryOwner(int fd) : fd_(fd) {}
    int fd_ = -1;
};

/// The process owning `dir` right now, or nullopt when none does (no file, or nobody holds the lock).
[[nodiscard]] Result<std::optional<OwnerInfo>> find_owner(const std::string& dir);

}  // namespace quiver::engine
