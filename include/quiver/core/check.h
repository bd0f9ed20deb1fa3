/// @file check.h
/// @brief Invariant checks for programmer errors. Never reachable from user input (use Result for that).
#pragma once

namespace quiver::detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* msg) noexcept;
}  // namespace quiver::detail

/// Always on: aborts with file:line when `cond` is false.
#define QUIVER_CHECK(cond)                                                      \
    do {                                                                        \
        if (!(cond)) ::quiver::detail::check_failed(#cond, __FILE__, __LINE__, ""); \
    } while (0)
#define QUIVER_CHECK_MSG(cond, msg)                                                \
    do {                                                                           \
        if (!(cond)) ::quiver::detail::check_failed(#cond, __FILE__, __LINE__, msg); \
    } while (0)
#ifdef NDEBUG
#define QUIVER_DCHECK(cond) \
    do {                    \
    } while (0)
#else
#define QUIVER_DCHECK(cond) QUIVER_CHECK(cond)
#endif
