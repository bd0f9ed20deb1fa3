/// @file store.h
/// @brief A data directory of named collections (one subdirectory each).
///
/// Names: 1-64 characters of [A-Za-z0-9_-], not starting with '-' (so `..`, `/` and hidden files
/// are impossible). Creating writes the collection into `.<name>.creating` and renames it into
/// place.
///
/// Broken collections: `open` starts even when some collections cannot be opened (damaged files,
/// kDataLoss naming the file); those are listed by `unavailable()` with their error, `get` on them
/// returns kUnavailable carrying that error, and `drop` removes them. The others are served
/// normally.
///
/// Thread-safety: all methods are safe from many threads. The store-wide mutex guards only the name
/// map: opening, creating, closing and removing a collection (model loading, fsyncs, merger joins,
/// directory removal) run outside it, so one collection's slow operation never stalls requests to
/// others. Collections are shared_ptrs, so a dropped collection stays usable by calls already
/// holding it (their writes then fail).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/collection.h"

namespace quiver::engine {

bool valid_collection_name(std::string_view name) noexcept;

/// A collection that could not be opened, and why.
struct UnavailableCollection {
    std::string name;
    Error error;
};

class Store {
public:
    /// Opens (creating if needed) `dir` and every collection in it. Fails only if the directory
    /// itself cannot be created or listed; collections that fail to open are reported by
    /// unavailable().
    [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::string& dir,
                                                             const CollectionOptions& options = {});
    ~Store();

    [[nodiscard]] Result<std::shared_ptr<Collection>> create(const std::string& name,
                                                             const Schema& schema);
    [[nodiscard]] Result<std::shared_ptr<Collection>> get(const std::string& name) const;
    /// Drops a collection (open or unavailable): its directory is renamed away, then removed.
    [[nodiscard]] Status drop(const std::string& name);
    /// Names of the open collections.
    std::vector<std::string> list() const;
    /// Collections that failed to open, with their errors (name order).
    std::vector<UnavailableCollection> unavailable() const;
    const std::string& dir() const noexcept { return dir_; }

private:
    Store(std::string dir, CollectionOptions options) : dir_(std::move(dir)), options_(options) {}
    std::string dir_;
    CollectionOptions options_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Collection>> collections_;
    std::map<std::string, Error> broken_;
    std::set<std::string> busy_;  // names being created or dropped (their I/O runs outside mu_)
};

}  // namespace quiver::engine
