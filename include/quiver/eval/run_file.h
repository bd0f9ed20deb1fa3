/// @file run_file.h
/// @brief TREC run files: one line per retrieved document, `qid Q0 docid rank score tag`.
///
/// Writing sorts each query's entries as trec_eval ranks them (score descending, then document id
/// descending), numbers ranks from 1 and prints scores with enough digits to round-trip a float.
/// Reading accepts any whitespace between the six columns, ignores blank lines, and reports a
/// malformed line or a document repeated within a query as kInvalidArgument with file and line.
#pragma once

#include <string>
#include <string_view>

#include "quiver/core/result.h"
#include "quiver/eval/metrics.h"

namespace quiver::eval {

/// Serialises `run` (queries in id order) with run tag `tag` (no whitespace).
std::string format_run(const Run& run, std::string_view tag);
[[nodiscard]] Status write_run(const std::string& path, const Run& run, std::string_view tag);
/// Parses text in the format above; `name` is used in error messages.
[[nodiscard]] Result<Run> parse_run(std::string_view text, std::string_view name);
[[nodiscard]] Result<Run> read_run(const std::string& path);

}  // namespace quiver::eval
