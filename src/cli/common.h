// Private to the CLI: shared helpers for subcommands (error reporting, exit codes, output, ids).
//
// The rules every subcommand follows (docs/cli.md states them for users):
//   Exit codes  0 ok; 1 runtime failure (I/O, corrupt data, internal); 2 bad usage or bad input.
//               Parse errors of CLI11 are 2 (main.cpp); errors from the work go through report().
//   Flags       --input/--queries/--base/... name what a file holds; where a word is both a kind and a
//               file, the path is --X-file and the kind --X-type (--index-file, --index-type);
//               --output (-o) is the file a command writes (--output-<what> when it writes several);
//               --json is always a flag: JSON on stdout instead of text; --trec FILE writes a TREC run;
//               index parameters take the collection schema's names, '_' written '-' (--m,
//               --ef-construction). Old spellings keep working with a warning: kRenamedFlags in main.cpp.
//   Ids         duplicate ids in an input are an error (check_unique_ids), never silently both kept.
//   Progress    long work uses quiver::ProgressBar: a bar on a terminal, a line every few seconds
//               on stderr otherwise.
// A new subcommand: one cmd_<name>.cpp with a CommandRegistrar (registry.h), options added with the
// rules above, and its body run through set_action / set_status_action so its exit code is one of
// 0, 1, 2.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/core/result.h"
#include "quiver/storage/vector_io.h"

namespace quiver::cli {

inline constexpr int kExitOk = 0;       ///< success
inline constexpr int kExitRuntime = 1;  ///< I/O error, corrupt data, internal failure
inline constexpr int kExitUsage = 2;    ///< bad usage (flags) or bad input (files, values)

/// Exit code for an error: 2 for bad usage or input (invalid argument, not found, out of range,
/// already exists, failed precondition, unimplemented), 1 for everything else.
int exit_code(ErrorCode code) noexcept;

/// Prints "quiver <command>: error: <message>" to stderr and returns the exit code for it.
int report(std::string_view command, const Error& error);

/// Prints "quiver <command>: warning: <message>" to stderr.
void warn(std::string_view command, std::string_view message);

/// Runs `body` as the action of subcommand `sub`; its exit code becomes the process's.
/// Each subcommand file calls this once from its add_*_command function.
void set_action(CLI::App* sub, std::function<int()> body);

/// set_action for a body returning Status: 0 when ok, else report(command, error).
void set_status_action(CLI::App* sub, std::string command, std::function<Status()> body);

/// The exit code chosen by the subcommand that ran (set by set_action).
int action_exit_code() noexcept;

/// Exit code of a CLI11 parse error, after printing it (help and version text to stdout, errors to
/// stderr): 0 for --help/--version, 2 for every other parse error.
int parse_error_exit(CLI::App& app, const CLI::ParseError& error);

/// Writes `text` to `path`, or to stdout when path is "-".
Status write_text(const std::string& path, const std::string& text);

/// An error naming the first id that occurs twice in `ids` and both of its 1-based positions
/// (`unit` names them: "row", "line"); ok when every id is unique.
Status check_unique_ids(const std::vector<std::string>& ids, std::string_view source, std::string_view unit = "row");

/// The ids file that goes with a vectors file: the same path with its extension replaced by ".ids"
/// (base.npy -> base.ids). One id per line, in row order.
std::string ids_path_for(const std::string& vectors_path);

/// Writes `ids` (one per line) to ids_path_for(vectors_path). Ids containing a newline are refused.
Status write_ids_file(const std::string& vectors_path, const std::vector<std::string>& ids);

/// storage::read_vectors, then: for formats without ids (.npy, .fvecs, .bvecs), the ids file beside
/// them when it exists (its line count must equal the file's rows); duplicate ids are an error.
/// `*ids_from` (if given) is set to the ids file read, or "" when none was.
Result<storage::VectorSet> read_vectors_with_ids(const std::string& path, const storage::ReadOptions& options = {},
                                                 std::string* ids_from = nullptr);

/// `quiver bench`: forwards to the quiver-bench driver (the only subcommand not self-registered,
/// since it needs argv[0]).
void add_bench_command(CLI::App& app, const std::string& argv0);

}  // namespace quiver::cli
