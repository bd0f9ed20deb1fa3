// Private to src/eval: line iteration and small parsing helpers shared by the dataset readers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "quiver/core/result.h"

namespace quiver::eval::detail {

/// Calls fn(line_number, line) for every line (1-based; '\r' stripped); stops at the first error.
template <class Fn>
Status for_each_line(std::string_view text, Fn&& fn) {
    std::size_t pos = 0;
    std::size_t line_no = 0;
    while (pos < text.size()) {
        const std::size_t nl = std::min(text.find('\n', pos), text.size());
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        QUIVER_TRY(fn(line_no, line));
    }
    return ok_status();
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

/// Splits on runs of spaces/tabs into at most `max` fields; returns the count (max + 1 when more).
inline std::size_t split_ws(std::string_view line, std::string_view* out, std::size_t max) {
    std::size_t n = 0;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i >= line.size()) break;
        const std::size_t s = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (n == max) return max + 1;
        out[n++] = line.substr(s, i - s);
    }
    return n;
}

/// Parses a whole (optionally signed) decimal integer.
bool parse_int(std::string_view s, int& out);

/// The file name part of a path.
inline std::string_view base_name(std::string_view path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace quiver::eval::detail
