#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "quiver/core/check.h"
#include "quiver/core/result.h"

namespace quiver {

std::string_view to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::kInvalidArgument: return "invalid argument";
        case ErrorCode::kNotFound: return "not found";
        case ErrorCode::kAlreadyExists: return "already exists";
        case ErrorCode::kOutOfRange: return "out of range";
        case ErrorCode::kFailedPrecondition: return "failed precondition";
        case ErrorCode::kResourceExhausted: return "resource exhausted";
        case ErrorCode::kDataLoss: return "data loss";
        case ErrorCode::kIoError: return "io error";
        case ErrorCode::kUnimplemented: return "unimplemented";
        case ErrorCode::kUnavailable: return "unavailable";
        case ErrorCode::kInternal: return "internal";
    }
    return "unknown";
}

std::string Error::to_string() const {
    return fmt::format("{}: {}", quiver::to_string(code_), message_);
}

Error errno_error(std::string_view what, std::string_view path) {
    const int e = errno;
    const ErrorCode code = (e == ENOENT) ? ErrorCode::kNotFound
                           : (e == ENOSPC || e == ENOMEM) ? ErrorCode::kResourceExhausted
                                                          : ErrorCode::kIoError;
    return Error(code, fmt::format("{} '{}': {}", what, path, std::strerror(e)));
}

namespace detail {
void check_failed(const char* expr, const char* file, int line, const char* msg) noexcept {
    std::fprintf(stderr, "quiver: internal check failed at %s:%d: %s %s\n", file, line, expr, msg);
    std::abort();
}
}  // namespace detail

}  // namespace quiver
