// A data directory of collections. See store.h.
#include "quiver/engine/store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "quiver/storage/wal.h"

namespace quiver::engine {

bool valid_collection_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64 || name[0] == '-') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-';
        if (!ok) return false;
    }
    return true;
}

namespace {
Status check_name(const std::string& name) {
    if (valid_collection_name(name)) return ok_status();
    return invalid_argument("invalid collection name (1-64 of [A-Za-z0-9_-], not starting with '-')");
}
}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const CollectionOptions& options) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return io_error("creating data directory '" + dir + "': " + ec.message());
    std::unique_ptr<Store> store(new Store(dir, options));
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_directory()) continue;
        if (name.size() > 10 && name[0] == '.' && name.substr(name.size() - 9) == ".creating") {
            std::filesystem::remove_all(entry.path(), ec);  // an interrupted create
            continue;
        }
        if (name.size() > 9 && name[0] == '.' && name.substr(name.size() - 8) == ".dropped") {
            std::filesystem::remove_all(entry.path(), ec);  // an interrupted drop
            continue;
        }
        if (!valid_collection_name(name)) continue;
        auto c = Collection::open(entry.path().string(), options);
        if (!c) return std::move(c).error().with_context("opening collection '" + name + "'");
        store->collections_.emplace(name, std::move(c).value());
    }
    if (ec) return io_error("listing '" + dir + "': " + ec.message());
    return store;
}

Store::~Store() {
    std::lock_guard lock(mu_);
    for (auto& [name, c] : collections_) c->close();
}

Result<std::shared_ptr<Collection>> Store::create(const std::string& name, const Schema& schema) {
    QUIVER_TRY(check_name(name));
    QUIVER_TRY(schema.validate());
    std::lock_guard lock(mu_);
    if (collections_.count(name) != 0) return already_exists("collection '" + name + "' exists");
    const std::string tmp = dir_ + "/." + name + ".creating";
    const std::string final_dir = dir_ + "/" + name;
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    {
        CollectionOptions quiet = options_;
        quiet.background_merge = false;
        QUIVER_ASSIGN_OR_RETURN(auto created, Collection::create(tmp, schema, quiet));
        created->close();
    }
    if (std::rename(tmp.c_str(), final_dir.c_str()) != 0) return errno_error("renaming", tmp);
    QUIVER_TRY(storage::sync_directory(dir_));
    QUIVER_ASSIGN_OR_RETURN(auto c, Collection::open(final_dir, options_));
    collections_.emplace(name, c);
    return c;
}

Result<std::shared_ptr<Collection>> Store::get(const std::string& name) const {
    QUIVER_TRY(check_name(name));
    std::lock_guard lock(mu_);
    const auto it = collections_.find(name);
    if (it == collections_.end()) return not_found("collection '" + name + "' not found");
    return it->second;
}

Status Store::drop(const std::string& name) {
    QUIVER_TRY(check_name(name));
    std::shared_ptr<Collection> c;
    {
        std::lock_guard lock(mu_);
        const auto it = collections_.find(name);
        if (it == collections_.end()) return not_found("collection '" + name + "' not found");
        c = it->second;
        collections_.erase(it);
        c->close();
        // Rename first so a crash mid-removal never leaves a half collection under its name.
        const std::string gone = dir_ + "/." + name + ".dropped";
        std::error_code ec;
        std::filesystem::remove_all(gone, ec);
        if (std::rename((dir_ + "/" + name).c_str(), gone.c_str()) != 0) return errno_error("dropping", name);
        QUIVER_TRY(storage::sync_directory(dir_));
        std::filesystem::remove_all(gone, ec);
    }
    return ok_status();
}

std::vector<std::string> Store::list() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, c] : collections_) out.push_back(name);
    return out;
}

}  // namespace quiver::engine
