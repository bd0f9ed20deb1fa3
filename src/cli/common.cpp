#include "cli/common.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "quiver/storage/file_format.h"

namespace quiver::cli {
namespace {
int g_exit_code = kExitOk;
}

int exit_code(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::kInvalidArgument:
        case ErrorCode::kNotFound:
        case ErrorCode::kOutOfRange:
        case ErrorCode::kAlreadyExists:
        case ErrorCode::kFailedPrecondition:
        case ErrorCode::kUnimplemented: return kExitUsage;
        default: return kExitRuntime;
    }
}

int report(std::string_view command, const Error& error) {
    std::fprintf(stderr, "quiver %.*s: error: %s\n", static_cast<int>(command.size()), command.data(),
                 error.to_string().c_str());
    return exit_code(error.code());
}

void warn(std::string_view command, std::string_view message) {
    std::fprintf(stderr, "quiver %.*s: warning: %.*s\n", static_cast<int>(command.size()), command.data(),
                 static_cast<int>(message.size()), message.data());
}

void set_action(CLI::App* sub, std::function<int()> body) {
    sub->callback([body = std::move(body)] { g_exit_code = body(); });
}

void set_status_action(CLI::App* sub, std::string command, std::function<Status()> body) {
    set_action(sub, [command = std::move(command), body = std::move(body)] {
        Status s = body();
        return s.ok() ? kExitOk : report(command, s.error());
    });
}

int action_exit_code() noexcept { return g_exit_code; }

int parse_error_exit(CLI::App& app, const CLI::ParseError& error) {
    const int cli11_code = app.exit(error);  // prints help, version or the error and "Run with --help"
    return cli11_code == 0 ? kExitOk : kExitUsage;
}

Status write_text(const std::string& path, const std::string& text) {
    if (path == "-") {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return {};
    }
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return errno_error("creating", path);
    std::fwrite(text.data(), 1, text.size(), f);
    const bool bad = std::ferror(f) != 0;
    if (std::fclose(f) != 0 || bad) return errno_error("writing", path);
    return {};
}

Status check_unique_ids(const std::vector<std::string>& ids, std::string_view source, std::string_view unit) {
    std::unordered_map<std::string_view, std::size_t> first;
    first.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto [it, inserted] = first.emplace(ids[i], i);
        if (!inserted) {
            return invalid_argument(fmt::format("'{}': duplicate id '{}' at {}s {} and {} (ids must be unique)",
                                                source, ids[i], unit, it->second + 1, i + 1));
        }
    }
    return {};
}

std::string ids_path_for(const std::string& vectors_path) {
    return std::filesystem::path(vectors_path).replace_extension(".ids").string();
}

Status write_ids_file(const std::string& vectors_path, const std::vector<std::string>& ids) {
    std::string text;
    for (const std::string& id : ids) {
        if (id.find_first_of("\r\n") != std::string::npos) {
            return invalid_argument(fmt::format("id '{}' contains a line break; it cannot be written to an ids file", id));
        }
        text += id;
        text += '\n';
    }
    return write_text(ids_path_for(vectors_path), text);
}

Result<storage::VectorSet> read_vectors_with_ids(const std::string& path, const storage::ReadOptions& options,
                                                 std::string* ids_from) {
    if (ids_from != nullptr) ids_from->clear();
    QUIVER_ASSIGN_OR_RETURN(storage::VectorSet set, storage::read_vectors(path, options));
    if (!set.ids.empty()) {
        QUIVER_TRY(check_unique_ids(set.ids, path, "row"));
        return set;
    }
    const std::string ids_path = ids_path_for(path);
    if (ids_path == path) return set;
    std::error_code ec;
    if (!std::filesystem::exists(ids_path, ec)) return set;
    QUIVER_ASSIGN_OR_RETURN(std::string text, storage::read_file(ids_path));
    std::vector<std::string> ids;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string id = text.substr(pos, end - pos);
        if (!id.empty() && id.back() == '\r') id.pop_back();
        if (id.empty()) {
            return invalid_argument(fmt::format("'{}' line {}: empty id", ids_path, ids.size() + 1));
        }
        ids.push_back(std::move(id));
        pos = end + 1;
    }
    const std::size_t rows = set.vectors.rows;
    const bool truncated = options.max_rows != 0 && rows == options.max_rows;
    if (ids.size() < rows || (!truncated && ids.size() != rows)) {
        return invalid_argument(fmt::format("'{}' has {} ids but '{}' has {} rows", ids_path, ids.size(), path,
                                            truncated ? fmt::format("at least {}", rows) : std::to_string(rows)));
    }
    QUIVER_TRY(check_unique_ids(ids, ids_path, "line"));
    ids.resize(rows);
    set.ids = std::move(ids);
    if (ids_from != nullptr) *ids_from = ids_path;
    return set;
}

}  // namespace quiver::cli
