// A data directory of collections. See store.h.
#include "quiver/engine/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "quiver/storage/fs.h"

namespace quiver::engine {

bool valid_collection_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64 || name[0] == '-') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

namespace {
// True when another open file description holds the collection's LOCK.
bool locked_elsewhere(const std::string& dir) {
    const int fd = ::open((dir + "/LOCK").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // releases the probe's lock, if it got one
    return held;
}

Status check_name(const std::string& name) {
    if (valid_collection_name(name)) return ok_status();
    return invalid_argument(
        "invalid collection name (1-64 of [A-Za-z0-9_-], not starting with '-')");
}
}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& dir,
                                           const CollectionOptions& options) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return io_error("creating data directory '" + dir + "': " + ec.message());
    std::unique_ptr<Store> store(new Store(dir, options));
    std::vector<std::filesystem::path> entries;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.is_directory()) entries.push_back(entry.path());
    }
    if (ec) return io_error("listing '" + dir + "': " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) {
        const std::string name = path.filename().string();
        if (name.size() > 10 && name[0] == '.' && name.substr(name.size() - 9) == ".creating") {
            std::filesystem::remove_all(path, ec);  // an interrupted create
            continue;
        }
        if (name.size() > 9 && name[0] == '.' && name.substr(name.size() - 8) == ".dropped") {
            std::filesystem::remove_all(path, ec);  // an interrupted drop
            continue;
        }
        if (!valid_collection_name(name)) continue;
        auto c = Collection::open(path.string(), options);
        if (!c) {
            // Another process holding a collection owns the data directory: refuse the whole store
            // rather than serve beside it.
            if (c.error().code() == ErrorCode::kFailedPrecondition &&
                locked_elsewhere(path.string())) {
                return std::move(c).error().with_context("opening collection '" + name + "'");
            }
            // One broken collection does not stop the others from being served.
            Error e = std::move(c).error();
            std::fprintf(stderr, "quiver: collection '%s' is unavailable: %s\n", name.c_str(),
                         e.to_string().c_str());
            store->broken_.emplace(name, std::move(e));
            continue;
        }
        store->collections_.emplace(name, std::move(c).value());
    }
    return store;
}

Store::~Store() {
    std::map<std::string, std::shared_ptr<Collection>> all;
    {
        std::lock_guard lock(mu_);
        all.swap(collections_);
    }
    for (auto& [name, c] : all) c->close();
}

Result<std::shared_ptr<Collection>> Store::create(const std::string& name, const Schema& schema) {
    QUIVER_TRY(check_name(name));
    QUIVER_TRY(schema.validate());
    {
        std::lock_guard lock(mu_);
        if (collections_.count(name) != 0 || broken_.count(name) != 0 || busy_.count(name) != 0) {
            return already_exists("collection '" + name + "' exists");
        }
        busy_.insert(name);
    }
    // Everything slow (encoder loading, writes, fsyncs) happens without the store lock.
    auto made = [&]() -> Result<std::shared_ptr<Collection>> {
        const std::string tmp = dir_ + "/." + name + ".creating";
        const std::string final_dir = dir_ + "/" + name;
        std::error_code ec;
        std::filesystem::remove_all(tmp, ec);
        if (std::filesystem::exists(final_dir, ec))
            return already_exists("collection directory '" + final_dir + "' exists");
        {
            CollectionOptions quiet = options_;
            quiet.background_merge = false;
            QUIVER_ASSIGN_OR_RETURN(auto created, Collection::create(tmp, schema, quiet));
            created->close();
        }
        QUIVER_TRY(storage::rename_file(tmp, final_dir));
        QUIVER_TRY(storage::sync_directory(dir_));
        return Collection::open(final_dir, options_);
    }();
    std::lock_guard lock(mu_);
    busy_.erase(name);
    if (!made) return std::move(made).error();
    collections_.emplace(name, *made);
    return made;
}

Result<std::shared_ptr<Collection>> Store::get(const std::string& name) const {
    QUIVER_TRY(check_name(name));
    std::lock_guard lock(mu_);
    const auto it = collections_.find(name);
    if (it != collections_.end()) return it->second;
    const auto b = broken_.find(name);
    if (b != broken_.end()) {
        return Error(ErrorCode::kUnavailable,
                     "collection '" + name + "' is unavailable: " + b->second.to_string());
    }
    return not_found("collection '" + name + "' not found");
}

Status Store::drop(const std::string& name) {
    QUIVER_TRY(check_name(name));
    std::shared_ptr<Collection> c;
    {
        std::lock_guard lock(mu_);
        if (busy_.count(name) != 0)
            return failed_precondition("collection '" + name + "' is being created or dropped");
        const auto it = collections_.find(name);
        if (it != collections_.end()) {
            c = it->second;
            collections_.erase(it);
        } else if (broken_.erase(name) == 0) {
            return not_found("collection '" + name + "' not found");
        }
        busy_.insert(name);
    }
    // Close (joins the merger), rename and remove outside the store lock.
    auto done = [&]() -> Status {
        if (c) c->close();
        // Rename first so a crash mid-removal never leaves a half collection under its name.
        const std::string gone = dir_ + "/." + name + ".dropped";
        std::error_code ec;
        std::filesystem::remove_all(gone, ec);
        QUIVER_TRY(storage::rename_file(dir_ + "/" + name, gone));
        QUIVER_TRY(storage::sync_directory(dir_));
        std::filesystem::remove_all(gone, ec);
        return ok_status();
    }();
    std::lock_guard lock(mu_);
    busy_.erase(name);
    return done;
}

std::vector<std::string> Store::list() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, c] : collections_) out.push_back(name);
    return out;
}

std::vector<UnavailableCollection> Store::unavailable() const {
    std::lock_guard lock(mu_);
    std::vector<UnavailableCollection> out;
    for (const auto& [name, e] : broken_) out.push_back({name, e});
    return out;
}

}  // namespace quiver::engine
