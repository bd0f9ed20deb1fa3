/// @file store.h
/// @brief A data directory of named collections (one subdirectory each).
///
/// Names: 1-64 characters of [A-Za-z0-9_-], not starting with '-' (so `..`, `/` and hidden files are
/// impossible). Creating writes the collection into `.<name>.creating` and renames it into place.
/// Thread-safety: all methods are safe from many threads; collections are shared_ptrs, so a dropped
/// collection stays usable by calls already holding it (their writes then fail).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/engine/collection.h"

namespace quiver::engine {

bool valid_collection_name(std::string_view name) noexcept;

class Store {
public:
    /// Opens (creating if needed) `dir` and every collection in it.
    [[nodiscard]] static Result<std::unique_ptr<Store>> open(const std::string& dir,
                                                             const CollectionOptions& options = {});
    ~Store();

    [[nodiscard]] Result<std::shared_ptr<Collection>> create(const std::string& name, const Schema& schema);
    [[nodiscard]] Result<std::shared_ptr<Collection>> get(const std::string& name) const;
    [[nodiscard]] Status drop(const std::string& name);
    std::vector<std::string> list() const;
    const std::string& dir() const noexcept { return dir_; }

private:
    Store(std::string dir, CollectionOptions options) : dir_(std::move(dir)), options_(options) {}
    std::string dir_;
    CollectionOptions options_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Collection>> collections_;
};

}  // namespace quiver::engine
