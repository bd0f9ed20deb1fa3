/// @file result.h
/// @brief Error values for everything that can fail because of input, environment or data.
///
/// quiver's own code never throws. A function that can fail returns `Result<T>` (a value or an `Error`)
/// or `Status` (`Result<void>`). The shape follows `std::expected`, so a later move to C++23 is an alias.
/// Bugs are not errors: they are `QUIVER_CHECK` failures (see check.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace quiver {

/// Canonical error codes (abseil's set, trimmed). Transport layers map them to exit codes / HTTP statuses.
enum class ErrorCode : std::uint8_t {
    kInvalidArgument,     ///< bad input from the caller: dimension mismatch, NaN, malformed record
    kNotFound,            ///< a named file, id, field or collection does not exist
    kAlreadyExists,       ///< creating something that is there already
    kOutOfRange,          ///< an index or size beyond the valid range
    kFailedPrecondition,  ///< the system is not in a state for this call (wrong format version, ...)
    kResourceExhausted,   ///< memory, disk, capacity or a configured limit
    kDataLoss,            ///< corrupt or truncated bytes: checksum, magic or size mismatch
    kIoError,             ///< the operating system refused (open, read, write, fsync, mmap)
    kUnimplemented,       ///< a combination the build does not support (an ISA not compiled in, ...)
    kUnavailable,         ///< transient; may succeed if retried
    kInternal,            ///< an invariant failed inside a dependency
};

std::string_view to_string(ErrorCode code) noexcept;

/// A small movable error value: a code and a lower-case message that names the offending value.
class Error {
public:
    Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }

    /// Prefixes the message with what was being done: "loading 'x.qvr': " + message.
    Error with_context(std::string_view context) const& {
        return Error(code_, std::string(context) + ": " + message_);
    }
    Error&& with_context(std::string_view context) && {
        message_ = std::string(context) + ": " + message_;
        return std::move(*this);
    }

    /// "data loss: checksum mismatch in 'x.qvr'".
    std::string to_string() const;

private:
    ErrorCode code_;
    std::string message_;
};

template <class T>
class [[nodiscard]] Result {
public:
    using value_type = T;

    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }
    bool ok() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

    T value_or(T fallback) const& { return has_value() ? value() : std::move(fallback); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::in_place, std::move(error)) {}  // NOLINT

    bool has_value() const noexcept { return !error_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    bool ok() const noexcept { return has_value(); }
    const Error& error() const& { return *error_; }
    Error&& error() && { return std::move(*error_); }

private:
    struct Empty {};
    // std::optional would do; a variant keeps the header light and the layout obvious.
    class OptError {
    public:
        OptError() = default;
        OptError(std::in_place_t, Error e) : v_(std::move(e)) {}
        bool has_value() const noexcept { return v_.index() == 1; }
        Error& operator*() { return std::get<1>(v_); }
        const Error& operator*() const { return std::get<1>(v_); }

    private:
        std::variant<Empty, Error> v_;
    };
    OptError error_;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

/// Shorthands: `return invalid_argument(fmt::format(...));`
inline Error invalid_argument(std::string m) { return Error(ErrorCode::kInvalidArgument, std::move(m)); }
inline Error not_found(std::string m) { return Error(ErrorCode::kNotFound, std::move(m)); }
inline Error data_loss(std::string m) { return Error(ErrorCode::kDataLoss, std::move(m)); }
inline Error io_error(std::string m) { return Error(ErrorCode::kIoError, std::move(m)); }
inline Error failed_precondition(std::string m) {
    return Error(ErrorCode::kFailedPrecondition, std::move(m));
}
inline Error out_of_range(std::string m) { return Error(ErrorCode::kOutOfRange, std::move(m)); }
inline Error unimplemented(std::string m) { return Error(ErrorCode::kUnimplemented, std::move(m)); }
inline Error resource_exhausted(std::string m) {
    return Error(ErrorCode::kResourceExhausted, std::move(m));
}
inline Error already_exists(std::string m) { return Error(ErrorCode::kAlreadyExists, std::move(m)); }
inline Error internal_error(std::string m) { return Error(ErrorCode::kInternal, std::move(m)); }

/// "io error: open 'x': No such file or directory" built from errno.
Error errno_error(std::string_view what, std::string_view path);

}  // namespace quiver

#define QUIVER_CONCAT_INNER_(a, b) a##b
#define QUIVER_CONCAT_(a, b) QUIVER_CONCAT_INNER_(a, b)

/// Evaluates a Status/Result expression; returns its error from the enclosing function on failure.
#define QUIVER_TRY(expr)                                   \
    do {                                                   \
        auto&& quiver_try_tmp_ = (expr);                   \
        if (!quiver_try_tmp_) return std::move(quiver_try_tmp_).error(); \
    } while (0)

/// `QUIVER_ASSIGN_OR_RETURN(auto x, f());` : x = *f(), or return f()'s error.
#define QUIVER_ASSIGN_OR_RETURN(lhs, expr) \
    QUIVER_ASSIGN_OR_RETURN_IMPL_(QUIVER_CONCAT_(quiver_aor_, __LINE__), lhs, expr)
#define QUIVER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                                \
    if (!tmp) return std::move(tmp).error();          \
    lhs = std::move(tmp).value()
