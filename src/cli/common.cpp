#include "cli/common.h"

#include <fmt/format.h>

#include <cstdio>

namespace quiver::cli {
namespace {
int g_exit_code = 0;
}

int exit_code(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::kInvalidArgument:
        case ErrorCode::kNotFound:
        case ErrorCode::kOutOfRange:
        case ErrorCode::kAlreadyExists:
        case ErrorCode::kFailedPrecondition: return 2;
        case ErrorCode::kInternal: return 70;
        default: return 1;
    }
}

int report(std::string_view command, const Error& error) {
    std::fprintf(stderr, "quiver %.*s: error: %s\n", static_cast<int>(command.size()), command.data(),
                 error.to_string().c_str());
    return exit_code(error.code());
}

void set_action(CLI::App* sub, std::function<int()> body) {
    sub->callback([body = std::move(body)] { g_exit_code = body(); });
}

int action_exit_code() noexcept { return g_exit_code; }

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

}  // namespace quiver::cli
